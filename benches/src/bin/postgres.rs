//! The PostgreSQL benchmark: the store against raw tokio-postgres, measured
//! in the same run against the same server. Results go to `BENCHMARKS.md`.
//!
//! ```sh
//! DACTOR_PERSIST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p dactor-persist-benches --bin postgres [-- --runs 5]
//! ```
//!
//! Every figure is the median of `--runs` runs (default 5; 3 for the 1M-event
//! recovery). Each run works in a fresh schema, dropped afterwards. The raw
//! baselines write the store's own table (created from the same migration),
//! one prepared statement, with the same payloads.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dactor_persist::query::{Offset, ReadJournal};
use dactor_persist::{
    EventSourced, JournalStorage, PersistError, PersistenceId, PersistentActor, PostgresStorage,
    SequenceId, StateStorage, recover_event_sourced,
};
use dactor_persist_benches::stats::{median, percentile};
use dactor_persist_benches::{Counter, CounterEvent};
use futures_util::TryStreamExt;
use tokio_postgres::{Client, NoTls};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// The store's schema, so that the raw baselines write the same table.
const MIGRATION: &str = include_str!("../../../dactor-persist/migrations/postgres/0001_init.sql");

const RAW_CONNECTIONS: usize = 64;
/// The actor recovered right after connecting.
const FRESH_EVENTS: i64 = 20_000;
const RAW_GROUP: usize = 1_000;

/// How much each scenario does.
#[derive(Clone, Copy)]
struct Sizes {
    sequential_events: usize,
    raw_parallel_events: usize,
    raw_grouped_events: usize,
    actors: usize,
    events_per_actor: usize,
    replay_events: i64,
}

/// The measured run.
const FULL: Sizes = Sizes {
    sequential_events: 2_000,
    raw_parallel_events: 20_000,
    raw_grouped_events: 200_000,
    actors: 1_000,
    events_per_actor: 100,
    replay_events: 1_000_000,
};

/// `--quick`: every scenario, small, to show the harness still runs (CI);
/// its figures mean nothing.
const QUICK: Sizes = Sizes {
    sequential_events: 20,
    raw_parallel_events: 2 * RAW_CONNECTIONS,
    raw_grouped_events: 2 * RAW_GROUP,
    actors: 20,
    events_per_actor: 5,
    replay_events: 20_000,
};

fn event_payload(n: u64) -> Vec<u8> {
    postcard::to_allocvec(&CounterEvent::Added(n)).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Harness.
// ---------------------------------------------------------------------------

fn main() -> Result<()> {
    let url = std::env::var("DACTOR_PERSIST_PG_URL")
        .map_err(|_| "set DACTOR_PERSIST_PG_URL, e.g. postgres://postgres@127.0.0.1:5432/test")?;
    let mut runs = 5usize;
    let mut only_sequential = false;
    let mut only_reads = false;
    let mut sizes = FULL;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            // A quick look at the one-actor figure alone.
            "--sequential" => only_sequential = true,
            // The reads alone: raw read, recovery, recovery right after connecting.
            "--recovery" => only_reads = true,
            "--quick" => {
                sizes = QUICK;
                runs = 1;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let runs = runs.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(&url, runs, sizes, only_sequential, only_reads))
}

async fn run(
    url: &str,
    runs: usize,
    sizes: Sizes,
    only_sequential: bool,
    only_reads: bool,
) -> Result<()> {
    let quick = sizes.replay_events != FULL.replay_events;
    let bench = Bench::new(url, sizes).await?;
    let version: String = bench
        .admin
        .query_one("SHOW server_version", &[])
        .await?
        .get(0);
    let met = |ok: bool| match (quick, ok) {
        (true, _) => "",
        (false, true) => "yes",
        (false, false) => "**no**",
    };
    let writes = if only_reads {
        None
    } else {
        let Some(writes) = Writes::measure(&bench, runs, only_sequential).await? else {
            return Ok(());
        };
        Some(writes)
    };
    let reads = Reads::measure(&bench, runs).await?;
    if quick {
        println!();
        println!(
            "--quick: every scenario ran, small; the figures mean nothing and no target is judged."
        );
    }
    println!();
    println!("PostgreSQL {version}, 127.0.0.1, medians of {runs} runs");
    println!();
    println!("| measurement | events/s | compared with | ratio | target | met |");
    println!("|---|---:|---|---:|---|---|");
    if let Some(writes) = writes {
        writes.print(sizes, &met);
    }
    reads.print(sizes, &met);
    Ok(())
}

/// The write scenarios' medians.
struct Writes {
    raw_seq: f64,
    store_seq: f64,
    seq_ratio: f64,
    raw_par: f64,
    raw_grouped: f64,
    raw_ordered: f64,
    ordering_ratio: f64,
    concurrent: f64,
    states: f64,
    lag_p50: f64,
    lag_p99: f64,
}

impl Writes {
    /// `None` when only the sequential pair was asked for (and printed).
    async fn measure(bench: &Bench, runs: usize, only_sequential: bool) -> Result<Option<Self>> {
        let Sizes { actors, .. } = bench.sizes;

        // The raw loop and the store's sequential persists alternate, so that
        // both see the server in the same state; each run's ratio is pairwise.
        eprintln!("raw autocommit insert loop vs 1 actor persisting sequentially ...");
        let mut raw_seq = Vec::new();
        let mut store_seq = Vec::new();
        let mut seq_ratio = Vec::new();
        for _ in 0..runs {
            let raw = bench.raw_sequential().await?;
            let store = bench.store_sequential().await?;
            raw_seq.push(raw);
            store_seq.push(store);
            seq_ratio.push(store / raw);
        }
        if only_sequential {
            println!(
                "raw {:.0}/s, store {:.0}/s, ratio {:.2}",
                median(raw_seq),
                median(store_seq),
                median(seq_ratio)
            );
            return Ok(None);
        }
        eprintln!("raw: {RAW_CONNECTIONS} tasks on {RAW_CONNECTIONS} connections ...");
        let mut raw_par = Vec::new();
        for _ in 0..runs {
            raw_par.push(bench.raw_parallel().await?);
        }
        // Alternating, so that each pair sees the server in the same state.
        eprintln!("raw: {RAW_GROUP}-row inserts, without and with the global order ...");
        let mut raw_grouped = Vec::new();
        let mut raw_ordered = Vec::new();
        let mut ordering_ratio = Vec::new();
        for _ in 0..runs {
            let plain = bench.raw_grouped().await?;
            let ordered = bench.raw_grouped_ordered().await?;
            raw_grouped.push(plain);
            raw_ordered.push(ordered);
            ordering_ratio.push(ordered / plain);
        }
        eprintln!("store: {actors} actors persisting concurrently ...");
        let mut concurrent = Vec::new();
        for _ in 0..runs {
            concurrent.push(bench.store_concurrent().await?);
        }
        eprintln!("store: {actors} actors saving states concurrently ...");
        let mut states = Vec::new();
        for _ in 0..runs {
            states.push(bench.states_concurrent().await?);
        }
        eprintln!("store: {actors} actors with a live reader on another store ...");
        let mut lags = Vec::new();
        for _ in 0..runs.min(3) {
            lags.extend(bench.read_lag().await?);
        }
        Ok(Some(Self {
            raw_seq: median(raw_seq),
            store_seq: median(store_seq),
            seq_ratio: median(seq_ratio),
            raw_par: median(raw_par),
            raw_grouped: median(raw_grouped),
            raw_ordered: median(raw_ordered),
            ordering_ratio: median(ordering_ratio),
            concurrent: median(concurrent),
            states: median(states),
            lag_p50: percentile(&mut lags, 0.5) / 1000.0,
            lag_p99: percentile(&mut lags, 0.99) / 1000.0,
        }))
    }

    fn print(&self, sizes: Sizes, met: &dyn Fn(bool) -> &'static str) {
        let Self {
            raw_seq,
            store_seq,
            seq_ratio,
            raw_par,
            raw_grouped,
            raw_ordered,
            ordering_ratio,
            concurrent,
            states,
            lag_p50,
            lag_p99,
        } = self;
        let Sizes {
            actors,
            events_per_actor,
            ..
        } = sizes;
        println!("| raw: autocommit `INSERT` per event, 1 connection | {raw_seq:.0} | | | | |");
        println!(
            "| store: 1 actor, sequential `persist` | {store_seq:.0} | raw autocommit loop | {seq_ratio:.2} | >= 0.70 | {} |",
            met(*seq_ratio >= 0.70)
        );
        println!(
            "| raw: autocommit `INSERT`, {RAW_CONNECTIONS} tasks on {RAW_CONNECTIONS} connections | {raw_par:.0} | | | | |"
        );
        println!(
            "| raw: {RAW_GROUP}-row `INSERT` per statement, journal of schema 1 (no global order) | {raw_grouped:.0} | | | | |"
        );
        println!(
            "| raw: {RAW_GROUP}-row `INSERT` per statement, journal of today's schema (tx_id, position, written_at, order index) | {raw_ordered:.0} | raw, no global order, paired runs | {ordering_ratio:.2} | | |"
        );
        println!(
            "| store: {actors} actors, {events_per_actor} sequential persists each, concurrently | {concurrent:.0} | raw {RAW_CONNECTIONS} connections | {:.1} | >= 100,000/s | {} |",
            concurrent / raw_par,
            met(*concurrent >= 100_000.0)
        );
        println!(
            "| store: {actors} durable-state actors, 20 saves of 64 bytes each, concurrently (saves/s) | {states:.0} | raw {RAW_CONNECTIONS} connections | {:.1} | | |",
            states / raw_par
        );
        println!(
            "| read lag while {actors} actors write: transaction start to delivery to a live reader of all events on another store | p50 {lag_p50:.1} ms, p99 {lag_p99:.1} ms | | | | |"
        );
    }
}

/// The read scenarios' medians.
struct Reads {
    raw_read: f64,
    raw_stream: f64,
    recovery: f64,
    to_collected: f64,
    to_streamed: f64,
    first: f64,
    second: f64,
    fresh_ratio: f64,
}

impl Reads {
    async fn measure(bench: &Bench, runs: usize) -> Result<Self> {
        let replay_events = bench.sizes.replay_events;
        eprintln!("store: writing {replay_events} events of one id ...");
        let (replay_schema, replay_store) = bench.replay_journal().await?;
        eprintln!("raw: reading them back in one query ...");
        // Each run reads with the raw driver both ways, then recovers through
        // the store: each ratio is taken within its run.
        eprintln!("raw reads and the store's recovery, alternating ...");
        let (mut raw_read, mut raw_stream, mut recovery) = (Vec::new(), Vec::new(), Vec::new());
        let (mut to_collected, mut to_streamed) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let collected = bench.raw_read(&replay_schema, false).await?;
            let streamed = bench.raw_read(&replay_schema, true).await?;
            let store = recover(&replay_store, replay_events).await?;
            raw_read.push(collected);
            raw_stream.push(streamed);
            recovery.push(store);
            to_collected.push(store / collected);
            to_streamed.push(store / streamed);
        }
        // A restart: a fresh store handle, then one actor recovered, then the
        // same actor again, each timed.
        eprintln!("store: recovering an actor of {FRESH_EVENTS} events right after connecting ...");
        bench
            .write_counter(&replay_store, "fresh", FRESH_EVENTS)
            .await?;
        replay_store.close().await;
        let (mut first, mut second, mut fresh_ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let store = bench.store(&replay_schema).await?;
            let a = recover_id(&store, "fresh", FRESH_EVENTS).await?;
            let b = recover_id(&store, "fresh", FRESH_EVENTS).await?;
            store.close().await;
            first.push(a);
            second.push(b);
            fresh_ratio.push(b / a);
        }
        bench.drop_schema(&replay_schema).await?;
        Ok(Self {
            raw_read: median(raw_read),
            raw_stream: median(raw_stream),
            recovery: median(recovery),
            to_collected: median(to_collected),
            to_streamed: median(to_streamed),
            first: median(first),
            second: median(second),
            fresh_ratio: median(fresh_ratio),
        })
    }

    fn print(&self, sizes: Sizes, met: &dyn Fn(bool) -> &'static str) {
        let Self {
            raw_read,
            raw_stream,
            recovery,
            to_collected,
            to_streamed,
            first,
            second,
            fresh_ratio,
        } = self;
        let replay_events = sizes.replay_events;
        println!(
            "| raw: read {replay_events} events in one query, rows collected (`query`) | {raw_read:.0} | | | | |"
        );
        println!(
            "| raw: the same, rows handled as they arrive (`query_raw`), the store's 6 columns | {raw_stream:.0} | | | | |"
        );
        println!(
            "| store: recover 1 actor from {replay_events} events (read, checksum, decode, apply) | {recovery:.0} | raw read, rows collected / streamed, paired runs | {to_collected:.2} / {to_streamed:.2} | >= 2,000,000/s | {} |",
            met(*recovery >= 2_000_000.0)
        );
        println!(
            "| store: right after connecting, recover 1 actor of {FRESH_EVENTS} events | {first:.0} | | | | |"
        );
        println!(
            "| store: the same actor again, same handle | {second:.0} | first recovery, paired runs | {fresh_ratio:.2} | first within 1.2x | {} |",
            met(*fresh_ratio <= 1.2)
        );
    }
}

struct Bench {
    url: String,
    sizes: Sizes,
    admin: Client,
    counter: std::cell::Cell<usize>,
}

impl Bench {
    async fn new(url: &str, sizes: Sizes) -> Result<Self> {
        Ok(Self {
            url: url.to_owned(),
            sizes,
            admin: connect(url).await?,
            counter: std::cell::Cell::new(0),
        })
    }

    /// A fresh schema name for one run.
    fn schema(&self, name: &str) -> String {
        self.counter.set(self.counter.get() + 1);
        format!(
            "dactor_bench_{name}_{}_{}",
            std::process::id(),
            self.counter.get()
        )
    }

    /// A fresh schema holding the store's tables, for a raw baseline.
    async fn raw_schema(&self, name: &str) -> Result<String> {
        let schema = self.schema(name);
        self.admin
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .await?;
        self.admin
            .batch_execute(&MIGRATION.replace("{schema}", &format!("\"{schema}\"")))
            .await?;
        Ok(schema)
    }

    async fn drop_schema(&self, schema: &str) -> Result<()> {
        self.admin
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await?;
        Ok(())
    }

    async fn store(&self, schema: &str) -> Result<PostgresStorage> {
        Ok(PostgresStorage::builder(self.url.clone())
            .schema(schema)
            .connect()
            .await?)
    }

    /// One autocommit INSERT per event, the next sent when the last returns.
    async fn raw_sequential(&self) -> Result<f64> {
        let schema = self.raw_schema("raw1").await?;
        let client = connect(&self.url).await?;
        let stmt = client.prepare(&insert_one(&schema)).await?;
        let started = Instant::now();
        for seq in 1..=self.sizes.sequential_events as i64 {
            let payload = event_payload(seq as u64);
            client
                .execute(
                    &stmt,
                    &[&"Counter:raw", &seq, &"Added", &payload, &0i64, &0i64],
                )
                .await?;
        }
        let rate = self.sizes.sequential_events as f64 / started.elapsed().as_secs_f64();
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// One actor persisting sequentially through the store.
    async fn store_sequential(&self) -> Result<f64> {
        let schema = self.schema("seq");
        let store = self.store(&schema).await?;
        let mut counter = Counter::new("seq");
        let started = Instant::now();
        for n in 0..self.sizes.sequential_events as u64 {
            counter.persist(CounterEvent::Added(n), &store).await?;
        }
        let rate = self.sizes.sequential_events as f64 / started.elapsed().as_secs_f64();
        store.close().await;
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// Autocommit INSERTs from many tasks, each on its own connection.
    async fn raw_parallel(&self) -> Result<f64> {
        let schema = self.raw_schema("rawp").await?;
        let mut clients = Vec::new();
        for _ in 0..RAW_CONNECTIONS {
            let client = connect(&self.url).await?;
            let stmt = client.prepare(&insert_one(&schema)).await?;
            clients.push((client, stmt));
        }
        let per_task = self.sizes.raw_parallel_events / RAW_CONNECTIONS;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (task, (client, stmt)) in clients.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let pid = format!("Counter:p{task}");
                for seq in 1..=per_task as i64 {
                    let payload = event_payload(seq as u64);
                    client
                        .execute(&stmt, &[&pid, &seq, &"Added", &payload, &0i64, &0i64])
                        .await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let rate = (per_task * RAW_CONNECTIONS) as f64 / started.elapsed().as_secs_f64();
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// Multi-row INSERTs of `RAW_GROUP` rows each (arrays through unnest), one
    /// connection, the statement the store's group commit uses.
    async fn raw_grouped(&self) -> Result<f64> {
        let schema = self.raw_schema("rawg").await?;
        let rate = self.grouped_into(&schema).await?;
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// `RAW_GROUPED_EVENTS` events in `RAW_GROUP`-row INSERTs into the
    /// journal of `schema`; events/s.
    async fn grouped_into(&self, schema: &str) -> Result<f64> {
        let client = connect(&self.url).await?;
        let stmt = client
            .prepare(&format!(
                "INSERT INTO \"{schema}\".journal \
                 (persistence_id, sequence, event_type, payload, checksum, write_id) \
                 SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[], \
                 $5::BIGINT[], $6::BIGINT[])"
            ))
            .await?;
        let started = Instant::now();
        for group in 0..(self.sizes.raw_grouped_events / RAW_GROUP) as i64 {
            let seqs: Vec<i64> = (0..RAW_GROUP as i64)
                .map(|i| group * RAW_GROUP as i64 + i + 1)
                .collect();
            let pids = vec!["Counter:g"; RAW_GROUP];
            let types = vec!["Added"; RAW_GROUP];
            let payloads: Vec<Vec<u8>> = seqs.iter().map(|s| event_payload(*s as u64)).collect();
            let zeros = vec![0i64; RAW_GROUP];
            client
                .execute(&stmt, &[&pids, &seqs, &types, &payloads, &zeros, &zeros])
                .await?;
        }
        Ok(self.sizes.raw_grouped_events as f64 / started.elapsed().as_secs_f64())
    }

    /// As [`raw_grouped`](Bench::raw_grouped), into the journal as the
    /// store has it now: each row also takes its place in the global order
    /// (transaction id, a position from a sequence, the write time) and the
    /// index on that order. The difference is the write cost of ordering.
    async fn raw_grouped_ordered(&self) -> Result<f64> {
        let schema = self.schema("rawo");
        // The store creates its current schema; the raw loop writes it.
        self.store(&schema).await?.close().await;
        let rate = self.grouped_into(&schema).await?;
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// Many actors persisting sequentially each, all at once, through one store.
    async fn store_concurrent(&self) -> Result<f64> {
        let schema = self.schema("conc");
        let store = Arc::new(self.store(&schema).await?);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for actor in 0..self.sizes.actors {
            let store = store.clone();
            let events = self.sizes.events_per_actor as u64;
            tasks.push(tokio::spawn(async move {
                let mut counter = Counter::new(&actor.to_string());
                for n in 0..events {
                    counter.persist(CounterEvent::Added(n), &*store).await?;
                }
                Ok::<_, PersistError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let rate = (self.sizes.actors * self.sizes.events_per_actor) as f64
            / started.elapsed().as_secs_f64();
        store.close().await;
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// The same number of actors saving durable states (64 bytes, 20 saves
    /// each) concurrently: saves of different ids share commits.
    async fn states_concurrent(&self) -> Result<f64> {
        const SAVES: usize = 20;
        let schema = self.schema("states");
        let store = Arc::new(self.store(&schema).await?);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for actor in 0..self.sizes.actors {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let pid = PersistenceId::new("State", &actor.to_string());
                for n in 0..SAVES {
                    store.save_state(&pid, &[n as u8; 64]).await?;
                }
                Ok::<_, PersistError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let rate = (self.sizes.actors * SAVES) as f64 / started.elapsed().as_secs_f64();
        store.close().await;
        self.drop_schema(&schema).await?;
        Ok(rate)
    }

    /// The 1,000 actors again, with a live reader of the global order on a
    /// store of its own (as another node would read): for every event, the
    /// time from its transaction's start (`written_at`, the server's
    /// `now()`) to its delivery, in microseconds. Server and client share
    /// this machine's clock.
    async fn read_lag(&self) -> Result<Vec<f64>> {
        let schema = self.schema("lag");
        let store = Arc::new(self.store(&schema).await?);
        let reader = Arc::new(self.store(&schema).await?);
        let total = self.sizes.actors * self.sizes.events_per_actor;
        let journal = ReadJournal::new(reader.clone());
        let mut live = journal.all_events(Offset::START);
        let reading = tokio::spawn(async move {
            let mut lags = Vec::with_capacity(total);
            while lags.len() < total {
                let Some(event) = live.next().await else {
                    break;
                };
                let event = event?;
                let lag = SystemTime::now()
                    .duration_since(event.timestamp)
                    .unwrap_or_default();
                lags.push(lag.as_secs_f64() * 1e6);
            }
            Ok::<_, PersistError>(lags)
        });
        let mut tasks = Vec::new();
        for actor in 0..self.sizes.actors {
            let store = store.clone();
            let events = self.sizes.events_per_actor as u64;
            tasks.push(tokio::spawn(async move {
                let mut counter = Counter::new(&actor.to_string());
                for n in 0..events {
                    counter.persist(CounterEvent::Added(n), &*store).await?;
                }
                Ok::<_, PersistError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let lags = tokio::time::timeout(Duration::from_secs(60), reading)
            .await
            .map_err(|_| "the live reader did not read every event within 60 s")???;
        if lags.len() != total {
            return Err(format!("the live reader read {} of {total} events", lags.len()).into());
        }
        store.close().await;
        reader.close().await;
        self.drop_schema(&schema).await?;
        Ok(lags)
    }

    /// `events` events of counter `id`, written through `store` in batches.
    async fn write_counter(&self, store: &PostgresStorage, id: &str, events: i64) -> Result<()> {
        let pid = Counter::new(id).persistence_id();
        let mut seq = 0i64;
        while seq < events {
            let payloads: Vec<Vec<u8>> = (seq + 1..=(seq + 10_000).min(events))
                .map(|s| event_payload(s as u64))
                .collect();
            let entries: Vec<(SequenceId, &str, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| (SequenceId(seq + 1 + i as i64), "Added", p.as_slice()))
                .collect();
            store.write_event_batch(&pid, &entries).await?;
            seq += entries.len() as i64;
        }
        Ok(())
    }

    /// 1M events of one id, written through the store in batches.
    async fn replay_journal(&self) -> Result<(String, PostgresStorage)> {
        let schema = self.schema("replay");
        let store = self.store(&schema).await?;
        let pid = Counter::new("replay").persistence_id();
        let mut seq = 0i64;
        while seq < self.sizes.replay_events {
            let payloads: Vec<Vec<u8>> = (seq + 1..=(seq + 10_000).min(self.sizes.replay_events))
                .map(|s| event_payload(s as u64))
                .collect();
            let entries: Vec<(SequenceId, &str, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| (SequenceId(seq + 1 + i as i64), "Added", p.as_slice()))
                .collect();
            store.write_event_batch(&pid, &entries).await?;
            seq += entries.len() as i64;
        }
        self.admin
            .batch_execute(&format!("VACUUM ANALYZE \"{schema}\".journal"))
            .await?;
        // The writes flushed now, so that the checkpointer does not compete
        // with the reads measured next.
        self.admin.batch_execute("CHECKPOINT").await?;
        Ok((schema, store))
    }

    /// The raw driver reading every event of the replay id in one query:
    /// the rows collected first (`query`), or handled as they arrive
    /// (`query_raw`, reading the columns the store reads).
    async fn raw_read(&self, schema: &str, streamed: bool) -> Result<f64> {
        let client = connect(&self.url).await?;
        let columns = if streamed {
            "sequence, event_type, payload, checksum, tags, metadata"
        } else {
            "sequence, event_type, payload, checksum"
        };
        let stmt = client
            .prepare(&format!(
                "SELECT {columns} FROM \"{schema}\".journal \
                 WHERE persistence_id = $1 AND sequence >= $2 ORDER BY sequence"
            ))
            .await?;
        let started = Instant::now();
        let (mut count, mut bytes) = (0i64, 0usize);
        if streamed {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&"Counter:replay", &1i64];
            let rows = client.query_raw(&stmt, params).await?;
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.try_next().await? {
                let payload: &[u8] = row.try_get(2)?;
                bytes += payload.len();
                count += 1;
            }
        } else {
            let rows = client.query(&stmt, &[&"Counter:replay", &1i64]).await?;
            for row in &rows {
                let payload: &[u8] = row.try_get(2)?;
                bytes += payload.len();
                count += 1;
            }
        }
        let rate = count as f64 / started.elapsed().as_secs_f64();
        if count != self.sizes.replay_events || bytes == 0 {
            return Err(format!("read {count} events").into());
        }
        Ok(rate)
    }
}

async fn recover(store: &PostgresStorage, events: i64) -> Result<f64> {
    recover_id(store, "replay", events).await
}

/// Recovery of counter `id` of `events` events, end to end; events/s.
async fn recover_id(store: &PostgresStorage, id: &str, events: i64) -> Result<f64> {
    let mut counter = Counter::new(id);
    let started = Instant::now();
    recover_event_sourced(&mut counter, store, store).await?;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    if counter.seq != SequenceId(events) {
        return Err(format!("recovered to {:?}", counter.seq).into());
    }
    Ok(rate)
}

fn insert_one(schema: &str) -> String {
    format!(
        "INSERT INTO \"{schema}\".journal \
         (persistence_id, sequence, event_type, payload, checksum, write_id) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )
}

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
