//! The read side's benchmark: reading events in global order against a raw
//! query, live delivery latency from commit to reader (in one process and
//! across processes), and replaying a small actor among many; on SQLite,
//! and on PostgreSQL when `DACTOR_PERSIST_PG_URL` is set.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin queries -- --runs 5
//! DACTOR_PERSIST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p dactor-persist-benches --bin queries -- --runs 5
//! cargo run --release -p dactor-persist-benches --bin queries -- --quick   # small, checks it runs
//! ```

use std::error::Error;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dactor_persist::query::{EventQueries, Offset, ReadJournal};
use dactor_persist::{
    Durability, JournalStorage, PersistenceId, PostgresStorage, SequenceId, SqliteStorage,
    recover_event_sourced,
};
use dactor_persist_benches::Counter;
use dactor_persist_benches::stats::{Table, median, per_second, percentile, thousands};
use dactor_persist_benches::{counter_payload as payload, fill};
use tokio::io::AsyncBufReadExt;

type Result<T, E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

/// Sizes of one run.
#[derive(Clone, Copy)]
struct Sizes {
    /// Events read in global order.
    global: usize,
    /// Ids they are spread over.
    ids: usize,
    /// Live events timed.
    live: usize,
    /// Small actors, and the events of each.
    small_actors: usize,
    small_events: usize,
    /// Recoveries of small actors timed.
    small_recoveries: usize,
}

const FULL: Sizes = Sizes {
    global: 1_000_000,
    ids: 1_000,
    live: 300,
    small_actors: 1_000,
    small_events: 100,
    small_recoveries: 300,
};

const QUICK: Sizes = Sizes {
    global: 5_000,
    ids: 50,
    live: 10,
    small_actors: 50,
    small_events: 10,
    small_recoveries: 10,
};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--live-child") {
        return live_child(&args[1..]);
    }
    let mut runs = 3usize;
    let mut sizes = FULL;
    let mut only: Option<String> = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--runs" => runs = rest.next().ok_or("--runs needs a number")?.parse()?,
            "--only" => {
                only = Some(
                    rest.next()
                        .ok_or("--only needs sqlite or postgres")?
                        .clone(),
                )
            }
            "--quick" => {
                sizes = QUICK;
                runs = 1;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("dactor-queries-")
        .tempdir_in(std::env::current_dir()?)?;
    let mut table = Table::default();
    if only.as_deref() != Some("postgres") {
        runtime.block_on(sqlite(dir.path(), sizes, runs, &mut table))?;
    }
    if only.as_deref() != Some("sqlite") {
        match std::env::var("DACTOR_PERSIST_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(url) => runtime.block_on(postgres(&url, sizes, runs, &mut table))?,
            None => eprintln!("DACTOR_PERSIST_PG_URL is not set: PostgreSQL is not measured"),
        }
    }
    table.print(runs);
    Ok(())
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Drains every event in global order through the read side; events/s.
async fn read_all<S: EventQueries>(store: Arc<S>, expected: usize) -> Result<f64> {
    let journal = ReadJournal::new(store).page_size(4096);
    let started = Instant::now();
    let mut stream = journal.current_all_events(Offset::START);
    let mut n = 0;
    while let Some(e) = stream.next().await {
        e?;
        n += 1;
    }
    if n != expected {
        return Err(format!("read {n} events, expected {expected}").into());
    }
    Ok(per_second(n, started.elapsed()))
}

/// Times `live` events from the write call's return (the commit
/// acknowledged) to their delivery to a live query of `reader`, in this
/// process; microseconds.
async fn live_here<W: JournalStorage, R: EventQueries>(
    writer: &W,
    reader: Arc<R>,
    entity: &str,
    live: usize,
) -> Result<Live> {
    // From the head: a reader resumes from its stored offset, not from the
    // start of a log of a million other events.
    let head = reader.event_head().await?;
    let journal = ReadJournal::new(reader);
    let mut stream = journal.events_by_entity_type(entity, head);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let entity_owned = entity.to_owned();
    let reader = tokio::spawn(async move {
        while let Some(e) = stream.next().await {
            let Ok(e) = e else { break };
            let _ = tx.send((e.sequence_id.0, Instant::now()));
            if e.sequence_id.0 as usize >= live {
                break;
            }
        }
        drop(entity_owned);
    });
    let pid = PersistenceId::new(entity, "live");
    let mut issued = Vec::with_capacity(live);
    let mut writes = Vec::with_capacity(live);
    for seq in 1..=live as i64 {
        let started = Instant::now();
        writer
            .write_event(&pid, SequenceId(seq), "Added", &payload(seq as u64))
            .await?;
        issued.push(started);
        writes.push(started.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reader.await?;
    let mut latencies = Vec::with_capacity(live);
    while let Ok((seq, at)) = rx.try_recv() {
        let started = issued[(seq - 1) as usize];
        latencies.push(at.duration_since(started).as_secs_f64() * 1e6);
    }
    if latencies.len() != live {
        return Err(format!("delivered {} of {live} live events", latencies.len()).into());
    }
    Ok(Live { latencies, writes })
}

/// Live delivery figures, in microseconds: from the write call to the
/// reader (the commit itself included: its instant lies somewhere inside
/// the write call), and the write calls alone.
#[derive(Default)]
struct Live {
    latencies: Vec<f64>,
    writes: Vec<f64>,
}

impl Live {
    fn extend(&mut self, other: Live) {
        self.latencies.extend(other.latencies);
        self.writes.extend(other.writes);
    }
}

/// The same across processes: a child process reads live and prints when
/// each event reached it; the payload carries the time the write was
/// acknowledged. Microseconds.
async fn live_across<W: JournalStorage>(
    writer: &W,
    child_args: &[&str],
    entity: &str,
    live: usize,
) -> Result<Live> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--live-child")
        .args(child_args)
        .arg(entity)
        .arg(live.to_string())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    // The child says when it listens.
    let ready = lines.next_line().await?;
    if ready.as_deref() != Some("ready") {
        return Err(format!("the child said {ready:?}").into());
    }
    let pid = PersistenceId::new(entity, "live");
    let mut issued = Vec::with_capacity(live);
    let mut writes = Vec::with_capacity(live);
    for seq in 1..=live as i64 {
        let (at, started) = (micros_now(), Instant::now());
        writer
            .write_event(&pid, SequenceId(seq), "Added", &payload(seq as u64))
            .await?;
        issued.push(at);
        writes.push(started.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = Vec::with_capacity(live);
    while let Some(line) = lines.next_line().await? {
        let mut parts = line.split(' ');
        let (Some(seq), Some(at)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (seq, at): (usize, i64) = (seq.parse()?, at.parse()?);
        latencies.push((at - issued[seq - 1]) as f64);
    }
    child.wait().await?;
    if latencies.len() != live {
        return Err(format!("the child got {} of {live} live events", latencies.len()).into());
    }
    Ok(Live { latencies, writes })
}

/// The child process of [`live_across`]: `sqlite <path> <entity> <n>` or
/// `postgres <url> <schema> <entity> <n>`.
fn live_child(args: &[String]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args {
            [kind, path, entity, n] if kind == "sqlite" => {
                let store = Arc::new(
                    SqliteStorage::builder(path)
                        .change_poll_interval(Duration::from_millis(5))
                        .open()
                        .await?,
                );
                child_read(store.clone(), entity, n.parse()?).await?;
                store.close().await;
            }
            [kind, url, schema, entity, n] if kind == "postgres" => {
                let store = Arc::new(
                    PostgresStorage::builder(url)
                        .schema(schema)
                        .connect()
                        .await?,
                );
                child_read(store.clone(), entity, n.parse()?).await?;
                store.close().await;
            }
            other => return Err(format!("bad child arguments {other:?}").into()),
        }
        Ok(())
    })
}

async fn child_read<S: EventQueries>(store: Arc<S>, entity: &str, n: usize) -> Result<()> {
    let head = store.event_head().await?;
    let journal = ReadJournal::new(store.clone());
    let mut stream = journal.events_by_entity_type(entity, head);
    // Let the listener come up before the writes start.
    let mut commits = store.watch_commits();
    let _ = tokio::time::timeout(Duration::from_secs(2), commits.changed()).await;
    println!("ready");
    while let Some(e) = stream.next().await {
        let e = e?;
        println!("{} {}", e.sequence_id.0, micros_now());
        if e.sequence_id.0 as usize >= n {
            break;
        }
    }
    Ok(())
}

fn latency_row(table: &mut Table, what: &str, live: Live) {
    let Live {
        mut latencies,
        mut writes,
    } = live;
    let p50 = percentile(&mut latencies, 0.5);
    let p99 = percentile(&mut latencies, 0.99);
    table.row(
        what,
        format!("p50 {:.2} ms, p99 {:.2} ms", p50 / 1000.0, p99 / 1000.0),
        "the write call alone",
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            percentile(&mut writes, 0.5) / 1000.0,
            percentile(&mut writes, 0.99) / 1000.0
        ),
    );
}

async fn sqlite(dir: &Path, sizes: Sizes, runs: usize, table: &mut Table) -> Result<()> {
    eprintln!("SQLite: {} events over {} ids ...", sizes.global, sizes.ids);
    let path = dir.join("global.db");
    {
        let store = SqliteStorage::builder(&path)
            .durability(Durability::Relaxed)
            .open()
            .await?;
        fill(&store, sizes.global, sizes.ids).await?;
        store.close().await;
    }
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        raw.push(raw_sqlite_read(&path, sizes.global)?);
        let store = Arc::new(SqliteStorage::open(&path).await?);
        ours.push(read_all(store.clone(), sizes.global).await?);
        store.close().await;
    }
    let (raw, ours) = (median(raw), median(ours));
    table.row(
        &format!(
            "SQLite: raw query, {} events in position order (join for the id, no copy)",
            sizes.global
        ),
        format!("{} events/s", thousands(raw)),
        "",
        String::new(),
    );
    table.row(
        &format!(
            "SQLite: ReadJournal::current_all_events, {} events (checksum, envelope)",
            sizes.global
        ),
        format!("{} events/s", thousands(ours)),
        "raw query",
        format!("{:.2}x", ours / raw),
    );

    eprintln!("SQLite: live delivery ...");
    let live_path = dir.join("live.db");
    let writer = Arc::new(SqliteStorage::open(&live_path).await?);
    let mut here = Live::default();
    let mut across = Live::default();
    for run in 0..runs {
        here.extend(live_here(&*writer, writer.clone(), &format!("Here{run}"), sizes.live).await?);
        let path = live_path.to_string_lossy().into_owned();
        across.extend(
            live_across(
                &*writer,
                &["sqlite", &path],
                &format!("There{run}"),
                sizes.live,
            )
            .await?,
        );
    }
    latency_row(
        table,
        "SQLite: live delivery, from the write call to a reader of the same store (commit watch)",
        here,
    );
    latency_row(
        table,
        "SQLite: live delivery, from the write call to another process on the file (change counter polled every 5 ms)",
        across,
    );
    writer.close().await;

    eprintln!("SQLite: small actors among many ...");
    let small = dir.join("small.db");
    {
        let store = SqliteStorage::builder(&small)
            .durability(Durability::Relaxed)
            .open()
            .await?;
        // Rounds of one event per actor: each actor's events interleave with
        // everyone's, as when all of them live together.
        for round in 1..=sizes.small_events as i64 {
            let mut writes = Vec::with_capacity(sizes.small_actors);
            for a in 0..sizes.small_actors {
                let store = &store;
                writes.push(async move {
                    let pid = PersistenceId::new("Counter", &format!("s{a}"));
                    store
                        .write_event(&pid, SequenceId(round), "Added", &payload(round as u64))
                        .await
                });
            }
            for w in writes {
                w.await?;
            }
        }
        store.close().await;
    }
    let mut recoveries = Vec::new();
    for _ in 0..runs {
        let store = SqliteStorage::open(&small).await?;
        let mut times = Vec::with_capacity(sizes.small_recoveries);
        for k in 0..sizes.small_recoveries {
            let mut counter = Counter::new(&format!("s{}", (k * 7919) % sizes.small_actors));
            let started = Instant::now();
            recover_event_sourced(&mut counter, &store, &store).await?;
            times.push(started.elapsed().as_secs_f64() * 1e6);
            if counter.seq != SequenceId(sizes.small_events as i64) {
                return Err("a small actor recovered wrong".into());
            }
        }
        recoveries.push(median(times));
        store.close().await;
    }
    table.row(
        &format!(
            "SQLite: recover one actor of {} events among {} (interleaved), median time",
            sizes.small_events, sizes.small_actors
        ),
        format!("{:.0} us", median(recoveries)),
        "",
        String::new(),
    );
    Ok(())
}

/// The raw engine reading the log in position order with each event's id.
fn raw_sqlite_read(path: &Path, expected: usize) -> Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    let started = Instant::now();
    let mut stmt = conn.prepare(
        "SELECT e.position, e.sequence, e.event_type, e.payload, e.checksum, s.persistence_id
         FROM events e JOIN streams s ON s.id = e.stream ORDER BY e.position",
    )?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    let mut bytes = 0;
    while let Some(row) = rows.next()? {
        bytes += row.get_ref(3)?.as_blob()?.len() + row.get_ref(5)?.as_str()?.len();
        n += 1;
    }
    if n != expected || bytes == 0 {
        return Err(format!("raw read {n} events").into());
    }
    Ok(per_second(n, started.elapsed()))
}

async fn postgres(url: &str, sizes: Sizes, runs: usize, table: &mut Table) -> Result<()> {
    let schema = format!("dactor_bench_queries_{}", std::process::id());
    let connect = || PostgresStorage::builder(url).schema(&schema).connect();
    eprintln!(
        "PostgreSQL: {} events over {} ids ...",
        sizes.global, sizes.ids
    );
    let store = Arc::new(connect().await?);
    fill(&*store, sizes.global, sizes.ids).await?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let rows = client
            .query(
                &format!(
                    "SELECT persistence_id, sequence, event_type, payload, checksum, tx_id, position
                     FROM \"{schema}\".journal ORDER BY tx_id, position"
                ),
                &[],
            )
            .await?;
        if rows.len() != sizes.global {
            return Err(format!("raw read {} events", rows.len()).into());
        }
        raw.push(per_second(rows.len(), started.elapsed()));
        drop(rows);
        ours.push(read_all(store.clone(), sizes.global).await?);
    }
    let (raw, ours) = (median(raw), median(ours));
    table.row(
        &format!(
            "PostgreSQL: raw query, {} events in (tx_id, position) order, one statement",
            sizes.global
        ),
        format!("{} events/s", thousands(raw)),
        "",
        String::new(),
    );
    table.row(
        &format!(
            "PostgreSQL: ReadJournal::current_all_events, {} events (pages below the horizon)",
            sizes.global
        ),
        format!("{} events/s", thousands(ours)),
        "raw query",
        format!("{:.2}x", ours / raw),
    );

    eprintln!("PostgreSQL: live delivery ...");
    let mut here = Live::default();
    let mut across = Live::default();
    for run in 0..runs {
        here.extend(live_here(&*store, store.clone(), &format!("Here{run}"), sizes.live).await?);
        across.extend(
            live_across(
                &*store,
                &["postgres", url, &schema],
                &format!("There{run}"),
                sizes.live,
            )
            .await?,
        );
    }
    latency_row(
        table,
        "PostgreSQL: live delivery, from the write call to a reader of the same store (commit watch)",
        here,
    );
    latency_row(
        table,
        "PostgreSQL: live delivery, from the write call to another process (LISTEN/NOTIFY)",
        across,
    );
    store.close().await;
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await?;
    Ok(())
}
