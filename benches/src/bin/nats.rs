//! The NATS JetStream benchmark: the store against raw async-nats, measured
//! in the same run against the same server, on one server (one replica) and,
//! when a three-node cluster is named, on three replicas. Results go to
//! `BENCHMARKS.md`.
//!
//! ```sh
//! tests/nats-cluster/cluster.sh start /tmp/nats-cluster
//! DACTOR_PERSIST_NATS_URL=nats://127.0.0.1:4222 DACTOR_PERSIST_NATS_CLUSTER=/tmp/nats-cluster \
//!     cargo run --release -p dactor-persist-benches --bin nats [-- --runs 3]
//! ```
//!
//! Every figure is the median of `--runs` runs (default 3). Each run writes
//! streams of its own, deleted afterwards. The raw baselines publish the
//! same payloads to a stream of the same configuration and wait for each
//! acknowledgement as the store does; the raw read is an ordered consumer
//! over the same subject.

use std::error::Error;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, consumer, stream};
use dactor_persist::{
    EventSourced, JournalStorage, NatsStorage, PersistError, PersistentActor, SequenceId,
    recover_event_sourced,
};
use dactor_persist_benches::stats::{Table, median, thousands};
use dactor_persist_benches::{Counter, CounterEvent, counter_payload, runs_and_sizes};
use futures_util::StreamExt;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// How much each scenario does.
#[derive(Clone, Copy)]
struct Sizes {
    sequential_events: usize,
    actors: usize,
    events_per_actor: usize,
    replay_events: i64,
    replay_batch: i64,
    /// Ids written once each, for the server's memory per id.
    ids: usize,
}

const FULL: Sizes = Sizes {
    sequential_events: 2_000,
    actors: 1_000,
    events_per_actor: 100,
    replay_events: 1_000_000,
    replay_batch: 10_000,
    ids: 200_000,
};

/// `--quick`: every scenario, small (CI); its figures mean nothing.
const QUICK: Sizes = Sizes {
    sequential_events: 20,
    actors: 20,
    events_per_actor: 5,
    replay_events: 2_000,
    replay_batch: 500,
    ids: 1_000,
};

/// The cluster's client ports (`tests/nats-cluster/n*.conf`).
const CLUSTER: &str = "nats://127.0.0.1:14221,nats://127.0.0.1:14222,nats://127.0.0.1:14223";

fn main() -> Result<()> {
    let (runs, sizes) = runs_and_sizes(FULL, QUICK, 3)?;
    let single = std::env::var("DACTOR_PERSIST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let cluster = std::env::var("DACTOR_PERSIST_NATS_CLUSTER")
        .ok()
        .filter(|v| !v.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut table = Table::default();
        let version = run(&single, 1, runs, sizes, &mut table).await?;
        subject_memory(sizes.ids, &mut table).await?;
        let mut header = format!("NATS {version}: one server (127.0.0.1:4222), one replica");
        if cluster.is_some() {
            run(CLUSTER, 3, runs, sizes, &mut table).await?;
            header.push_str("; three nodes on loopback, three replicas");
        } else {
            header.push_str(" (DACTOR_PERSIST_NATS_CLUSTER not set: no three-replica figures)");
        }
        println!("\n{header}");
        table.print(runs);
        Ok(())
    })
}

/// The resident memory of process `pid`, from `/proc`.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A server of its own (`nats-server` on the PATH, JetStream in a temporary
/// directory, port 14299), killed when dropped: memory is measured on a
/// fresh process, not on one that earlier scenarios grew.
struct OwnServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl OwnServer {
    const URL: &'static str = "nats://127.0.0.1:14299";

    async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "14299", "-js", "-sd"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nats-server for the memory scenario: {e}"))?;
        let server = Self { child, _dir: dir };
        for _ in 0..100 {
            if async_nats::connect(Self::URL).await.is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err("the memory scenario's nats-server did not start".into())
    }

    fn rss(&self) -> Option<u64> {
        rss_of(self.child.id())
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's memory per id: `ids` ids written once each through the
/// store, on one stream and on eight, each on a fresh server process; its
/// resident memory after the store connected and after the writes (the
/// subject index holds an entry per id, in whichever stream).
async fn subject_memory(ids: usize, table: &mut Table) -> Result<()> {
    for shards in [1u32, 8] {
        eprintln!("R1: {ids} ids written once each, {shards} stream(s), on a fresh server ...");
        let server = OwnServer::start().await?;
        let store = Arc::new(
            NatsStorage::builder(OwnServer::URL)
                .shards(shards)
                .connect()
                .await?,
        );
        let before = server.rss();
        let started = Instant::now();
        let tasks = 500usize;
        let mut handles = Vec::new();
        for t in 0..tasks {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut i = t;
                while i < ids {
                    let pid = dactor_persist::PersistenceId::new("Account", &i.to_string());
                    store
                        .write_event(&pid, SequenceId(1), "Opened", &counter_payload(i as u64))
                        .await?;
                    i += tasks;
                }
                Ok::<_, PersistError>(())
            }));
        }
        for handle in handles {
            handle.await??;
        }
        let rate = ids as f64 / started.elapsed().as_secs_f64();
        let after = server.rss();
        let per_id = match (before, after) {
            (Some(b), Some(a)) => format!(
                "{:.0} bytes ({} MiB to {} MiB)",
                a.saturating_sub(b) as f64 / ids as f64,
                b >> 20,
                a >> 20
            ),
            _ => "n/a (no /proc)".to_owned(),
        };
        table.row(
            &format!(
                "R1 store: {ids} ids, one event each, on {shards} stream(s): server memory per id"
            ),
            per_id,
            &format!("written at {} events/s", thousands(rate)),
            String::new(),
        );
        store.close().await;
    }
    Ok(())
}

/// Every scenario on `urls` with `replicas`; returns the server's version.
async fn run(
    urls: &str,
    replicas: usize,
    runs: usize,
    sizes: Sizes,
    table: &mut Table,
) -> Result<String> {
    let bench = Bench::new(urls, replicas).await?;
    let r = format!("R{replicas}");
    eprintln!("{r}: raw publish loop vs 1 actor persisting sequentially ...");
    let (mut raw_seq, mut store_seq, mut seq_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_read1, mut store_read1, mut read1_ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (raw, raw_read) = bench.raw_sequential(sizes.sequential_events).await?;
        let (store, recovery) = bench.store_sequential(sizes.sequential_events).await?;
        raw_seq.push(raw);
        store_seq.push(store);
        seq_ratio.push(store / raw);
        raw_read1.push(raw_read);
        store_read1.push(recovery);
        read1_ratio.push(recovery / raw_read);
    }
    eprintln!(
        "{r}: {} tasks publishing vs {} actors persisting ...",
        sizes.actors, sizes.actors
    );
    let (mut raw_conc, mut store_conc, mut conc_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fenced_conc, mut fenced_ratio) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let raw = bench
            .raw_concurrent(sizes.actors, sizes.events_per_actor)
            .await?;
        let fenced = bench
            .raw_concurrent_fenced(sizes.actors, sizes.events_per_actor)
            .await?;
        let store = bench
            .store_concurrent(sizes.actors, sizes.events_per_actor)
            .await?;
        raw_conc.push(raw);
        store_conc.push(store);
        conc_ratio.push(store / raw);
        fenced_conc.push(fenced);
        fenced_ratio.push(store / fenced);
    }
    eprintln!(
        "{r}: {} events of one id in batches of {}, recovered ...",
        sizes.replay_events, sizes.replay_batch
    );
    let (mut raw_replay, mut store_replay, mut replay_ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (raw, store) = bench
            .replay(sizes.replay_events, sizes.replay_batch)
            .await?;
        raw_replay.push(raw);
        store_replay.push(store);
        replay_ratio.push(store / raw);
    }
    let rate = |v: Vec<f64>| format!("{} events/s", thousands(median(v)));
    let ratio = |v: Vec<f64>| format!("{:.2}", median(v));
    let n = sizes.sequential_events;
    table.row(
        &format!("{r} raw: publish, await the ack, {n} times"),
        rate(raw_seq),
        "",
        String::new(),
    );
    table.row(
        &format!("{r} store: 1 actor, {n} sequential `persist`"),
        rate(store_seq),
        "raw publish loop",
        ratio(seq_ratio),
    );
    table.row(
        &format!("{r} raw: ordered consumer reads those {n} messages"),
        rate(raw_read1),
        "",
        String::new(),
    );
    table.row(
        &format!("{r} store: recover that actor ({n} one-event records)"),
        rate(store_read1),
        "raw ordered consumer",
        ratio(read1_ratio),
    );
    let (a, e) = (sizes.actors, sizes.events_per_actor);
    table.row(
        &format!("{r} raw: {a} tasks, {e} publishes each, acks awaited"),
        rate(raw_conc),
        "",
        String::new(),
    );
    table.row(
        &format!(
            "{r} raw: the same with the store's fence (expected last subject sequence, message id)"
        ),
        rate(fenced_conc),
        "",
        String::new(),
    );
    table.row(
        &format!("{r} store: {a} actors, {e} sequential `persist` each, concurrently"),
        rate(store_conc),
        "raw tasks",
        ratio(conc_ratio),
    );
    table.row(
        &format!("{r} store: the same"),
        String::new(),
        "raw tasks with the fence",
        ratio(fenced_ratio),
    );
    let (events, batch) = (sizes.replay_events, sizes.replay_batch);
    table.row(
        &format!("{r} raw: ordered consumer reads {events} events ({batch} per message)"),
        rate(raw_replay),
        "",
        String::new(),
    );
    table.row(
        &format!("{r} store: recover 1 actor from them (read, checksum, decode, apply)"),
        rate(store_replay),
        "raw ordered consumer",
        ratio(replay_ratio),
    );
    Ok(bench.version)
}

struct Bench {
    urls: String,
    replicas: usize,
    js: jetstream::Context,
    version: String,
}

impl Bench {
    async fn new(urls: &str, replicas: usize) -> Result<Self> {
        let client = client(urls).await?;
        let version = client.server_info().version;
        Ok(Self {
            urls: urls.to_owned(),
            replicas,
            js: jetstream::new(client),
            version,
        })
    }

    fn prefix(&self, name: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000)
            .unwrap_or_default();
        format!("B{name}{}_{nanos}", std::process::id() % 100_000)
    }

    async fn store(&self, prefix: &str) -> Result<NatsStorage> {
        Ok(NatsStorage::builder(self.urls.clone())
            .stream_prefix(prefix)
            .subject_prefix(prefix.to_lowercase())
            .replicas(self.replicas)
            .connect()
            .await?)
    }

    async fn drop_store(&self, store: NatsStorage) {
        for name in store.stream_names() {
            let _ = self.js.delete_stream(&name).await;
        }
        store.close().await;
    }

    /// A stream configured as the store's (file storage, the same replicas).
    async fn raw_stream(&self, name: &str) -> Result<stream::Stream> {
        Ok(self
            .js
            .create_stream(stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{}.>", name.to_lowercase())],
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                allow_rollup: true,
                ..Default::default()
            })
            .await?)
    }

    /// Raw: `n` publishes to one subject, each awaiting its ack; then an
    /// ordered consumer reading them back. Both events/s.
    async fn raw_sequential(&self, n: usize) -> Result<(f64, f64)> {
        let name = self.prefix("raw1");
        let stream = self.raw_stream(&name).await?;
        let subject = format!("{}.one", name.to_lowercase());
        let started = Instant::now();
        for i in 0..n {
            self.js
                .publish(subject.clone(), counter_payload(i as u64).into())
                .await?
                .await?;
        }
        let write = n as f64 / started.elapsed().as_secs_f64();
        let read = read_all(&stream, &subject, n).await?;
        self.js.delete_stream(&name).await?;
        Ok((write, read))
    }

    /// The store: one counter persisting `n` events, then recovered.
    async fn store_sequential(&self, n: usize) -> Result<(f64, f64)> {
        let prefix = self.prefix("seq");
        let store = self.store(&prefix).await?;
        let mut counter = Counter::new("seq");
        let started = Instant::now();
        for i in 0..n as u64 {
            counter.persist(CounterEvent::Added(i), &store).await?;
        }
        let write = n as f64 / started.elapsed().as_secs_f64();
        let read = recover(&store, "seq", n as i64).await?;
        self.drop_store(store).await;
        Ok((write, read))
    }

    /// Raw: `tasks` tasks, each publishing `each` messages to its own
    /// subject, one ack awaited before the next publish.
    async fn raw_concurrent(&self, tasks: usize, each: usize) -> Result<f64> {
        let name = self.prefix("rawc");
        let _stream = self.raw_stream(&name).await?;
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let js = self.js.clone();
            let subject = format!("{}.t{t}", name.to_lowercase());
            handles.push(tokio::spawn(async move {
                for i in 0..each {
                    js.publish(subject.clone(), counter_payload(i as u64).into())
                        .await?
                        .await?;
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(())
            }));
        }
        for handle in handles {
            handle.await?.map_err(|e| e.to_string())?;
        }
        let rate = (tasks * each) as f64 / started.elapsed().as_secs_f64();
        self.js.delete_stream(&name).await?;
        Ok(rate)
    }

    /// Raw with the store's fence: as `raw_concurrent`, each publish naming
    /// the subject's expected last sequence and a message id of it.
    async fn raw_concurrent_fenced(&self, tasks: usize, each: usize) -> Result<f64> {
        let name = self.prefix("rawf");
        let _stream = self.raw_stream(&name).await?;
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let js = self.js.clone();
            let subject = format!("{}.t{t}", name.to_lowercase());
            handles.push(tokio::spawn(async move {
                let mut last = 0;
                for i in 0..each {
                    let message = PublishMessage::build()
                        .payload(counter_payload(i as u64).into())
                        .message_id(format!("j.t{t}.{last}"))
                        .expected_last_subject_sequence(last);
                    last = js
                        .send_publish(subject.clone(), message)
                        .await?
                        .await?
                        .sequence;
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(())
            }));
        }
        for handle in handles {
            handle.await?.map_err(|e| e.to_string())?;
        }
        let rate = (tasks * each) as f64 / started.elapsed().as_secs_f64();
        self.js.delete_stream(&name).await?;
        Ok(rate)
    }

    /// The store: `actors` counters persisting `each` events concurrently.
    async fn store_concurrent(&self, actors: usize, each: usize) -> Result<f64> {
        let prefix = self.prefix("conc");
        let store = Arc::new(self.store(&prefix).await?);
        let started = Instant::now();
        let mut handles = Vec::new();
        for a in 0..actors {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut counter = Counter::new(&a.to_string());
                for i in 0..each as u64 {
                    counter.persist(CounterEvent::Added(i), &*store).await?;
                }
                Ok::<_, PersistError>(())
            }));
        }
        for handle in handles {
            handle.await??;
        }
        let rate = (actors * each) as f64 / started.elapsed().as_secs_f64();
        let store = Arc::try_unwrap(store).map_err(|_| "store still shared")?;
        self.drop_store(store).await;
        Ok(rate)
    }

    /// `events` events of one id written through the store in batches;
    /// then read raw (an ordered consumer over the journal subject, nothing
    /// decoded) and recovered by the store. Both events/s.
    async fn replay(&self, events: i64, batch: i64) -> Result<(f64, f64)> {
        let prefix = self.prefix("replay");
        let store = self.store(&prefix).await?;
        let pid = Counter::new("replay").persistence_id();
        let mut seq = 0i64;
        while seq < events {
            let payloads: Vec<Vec<u8>> = (seq + 1..=(seq + batch).min(events))
                .map(|s| counter_payload(s as u64))
                .collect();
            let entries: Vec<(SequenceId, &str, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| (SequenceId(seq + 1 + i as i64), "Added", p.as_slice()))
                .collect();
            store.write_event_batch(&pid, &entries).await?;
            seq += entries.len() as i64;
        }
        let stream = self.js.get_stream(store.stream_of(&pid)).await?;
        let records = ((events + batch - 1) / batch) as usize;
        let subject = store.journal_subject(&pid);
        let read = read_all(&stream, &subject, records).await?;
        let raw = read * events as f64 / records as f64;
        let recovered = recover(&store, "replay", events).await?;
        self.drop_store(store).await;
        Ok((raw, recovered))
    }
}

/// An ordered consumer reads the `n` messages of `subject`; messages/s.
async fn read_all(stream: &stream::Stream, subject: &str, n: usize) -> Result<f64> {
    let started = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut got = 0;
    while got < n {
        match messages.next().await {
            Some(Ok(message)) => {
                std::hint::black_box(message.payload.len());
                got += 1;
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the consumer ended early".into()),
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Recovery of counter `id` of `events` events, end to end; events/s.
async fn recover(store: &NatsStorage, id: &str, events: i64) -> Result<f64> {
    let mut counter = Counter::new(id);
    let started = Instant::now();
    recover_event_sourced(&mut counter, store, store).await?;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    if counter.last_sequence_id() != SequenceId(events) {
        return Err(format!("recovered to {:?}", counter.last_sequence_id()).into());
    }
    Ok(rate)
}

async fn client(urls: &str) -> Result<async_nats::Client> {
    let addrs: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| u.trim().parse())
        .collect::<Result<_, _>>()?;
    Ok(async_nats::connect(addrs).await?)
}
