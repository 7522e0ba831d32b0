//! The storage benchmark harness: the SQLite store against the raw engine,
//! measured in the same run, on the same disk. Results go to `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin storage
//! cargo run --release -p dactor-persist-benches --bin storage -- --runs 3 --dir /some/disk
//! cargo run -p dactor-persist-benches --bin storage -- --quick   # every scenario, small: does it run?
//! ```
//!
//! Every figure is the median of `--runs` runs (default 5; 3 for the 1M-event
//! replay). The files go to a temporary directory under `--dir` (default: the
//! current directory, so that they are on a real disk, not a tmpfs where
//! `fsync` costs nothing).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use dactor_persist::{
    Durability, EventSourced, JournalStorage, PersistError, PersistenceId, SequenceId,
    SqliteStorage, recover_event_sourced,
};
use dactor_persist_benches::stats::{self, per_second, thousands};
use dactor_persist_benches::{Counter, CounterEvent};
use rusqlite::{Connection, params};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// The store's first schema (a journal clustered by (persistence id,
/// sequence)), for the raw baseline of that layout.
const CLUSTERED_SCHEMA: &str = include_str!("../../dactor-persist/migrations/sqlite/0001_init.sql");

/// The store's layout since schema 3: a log in write order, ids as small
/// integers, a unique index (stream, sequence). The raw baseline writes the
/// same rows, without the store's bookkeeping.
const LOG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, stream INTEGER NOT NULL,
    sequence INTEGER NOT NULL, event_type TEXT NOT NULL, payload BLOB NOT NULL,
    written_at INTEGER NOT NULL, tags BLOB, metadata BLOB, checksum INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream, sequence);";

const INSERT_LOG: &str =
    "INSERT INTO events (stream, sequence, event_type, payload, written_at, checksum)
     VALUES (?1, ?2, ?3, ?4, 0, 0)";

/// A stream id like the store's (a 31-bit hash slot) for raw id `k`.
fn raw_stream(k: usize) -> i64 {
    1 + (k as i64).wrapping_mul(2_654_435_761) % 2_147_000_000
}

/// Rows per transaction of the raw grouped loops.
const RAW_GROUP: usize = 1_000;

/// How much each scenario does.
#[derive(Clone, Copy)]
struct Sizes {
    sequential_events: usize,
    raw_grouped_events: usize,
    actors: usize,
    events_per_actor: usize,
    replay_events: i64,
}

/// The measured run.
const FULL: Sizes = Sizes {
    sequential_events: 2_000,
    raw_grouped_events: 200_000,
    actors: 1_000,
    events_per_actor: 200,
    replay_events: 1_000_000,
};

/// `--quick`: every scenario, small, to show the harness still runs (CI);
/// its figures mean nothing.
const QUICK: Sizes = Sizes {
    sequential_events: 20,
    raw_grouped_events: 2 * RAW_GROUP,
    actors: 50,
    events_per_actor: 4,
    replay_events: 20_000,
};

// ---------------------------------------------------------------------------
// Harness.
// ---------------------------------------------------------------------------

struct Options {
    runs: usize,
    dir: PathBuf,
    sizes: Sizes,
    quick: bool,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--replay-child") {
        let path = args.get(2).ok_or("--replay-child needs a database path")?;
        return replay_child(Path::new(path));
    }
    if args.get(1).map(String::as_str) == Some("--profile-replay") {
        // For a profiler: recover the 1M-event actor five times (the file is
        // written first when missing).
        let path = PathBuf::from(
            args.get(2)
                .ok_or("--profile-replay needs a database path")?,
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        if !path.exists() {
            runtime.block_on(write_replay_journal(&path, FULL.replay_events))?;
        }
        for _ in 0..5 {
            println!(
                "{:.0} events/s",
                runtime.block_on(recover(&path, FULL.replay_events))?
            );
        }
        return Ok(());
    }
    let mut options = Options {
        runs: 5,
        dir: std::env::current_dir()?,
        sizes: FULL,
        quick: false,
    };
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--runs" => {
                options.runs = rest.next().ok_or("--runs needs a number")?.parse()?;
            }
            "--dir" => options.dir = PathBuf::from(rest.next().ok_or("--dir needs a path")?),
            "--quick" => {
                options.sizes = QUICK;
                options.runs = 1;
                options.quick = true;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix("dactor-bench-")
        .tempdir_in(&options.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let runs = options.runs.max(1);
    let sizes = options.sizes;
    let n = std::cell::Cell::new(0usize);
    let fresh = |name: &str| {
        n.set(n.get() + 1);
        scratch.path().join(format!("{name}-{}.db", n.get()))
    };

    // The raw loop and the store's sequential persists alternate, so that both
    // see the disk in the same state; each run's ratio is taken pairwise.
    eprintln!("raw 1 insert per transaction vs 1 actor persisting, FULL ...");
    let (raw_single, seq_full, seq_full_ratio) = paired(
        runs,
        || raw_one_per_tx(&fresh("raw1"), sizes.sequential_events, "FULL"),
        || {
            runtime.block_on(sequential(
                &fresh("seq"),
                sizes.sequential_events,
                Durability::Full,
            ))
        },
    )?;
    eprintln!("the disk: an fdatasync append loop ...");
    let disk = median(runs, || {
        fdatasync_loop(&fresh("disk"), sizes.sequential_events)
    })?;
    eprintln!("raw {RAW_GROUP} inserts per transaction, clustered layout and log layout ...");
    let raw_clustered = median(runs, || {
        raw_grouped(&fresh("rawc"), sizes.raw_grouped_events, Layout::Clustered)
    })?;
    let raw_grouped = median(runs, || {
        raw_grouped(&fresh("rawg"), sizes.raw_grouped_events, Layout::Log)
    })?;
    eprintln!("the same with synchronous=NORMAL ...");
    let (raw_single_normal, seq_relaxed, seq_relaxed_ratio) = paired(
        runs,
        || raw_one_per_tx(&fresh("raw1n"), sizes.sequential_events * 5, "NORMAL"),
        || {
            runtime.block_on(sequential(
                &fresh("seqn"),
                sizes.sequential_events * 5,
                Durability::Relaxed,
            ))
        },
    )?;
    eprintln!("store: {} actors concurrently ...", sizes.actors);
    let concurrent = median(runs, || {
        runtime.block_on(concurrent(
            &fresh("conc"),
            sizes.actors,
            sizes.events_per_actor,
        ))
    })?;

    let replay_events = sizes.replay_events;
    eprintln!("store: writing {replay_events} events of one id ...");
    let replay_db = fresh("replay");
    let own_bytes = runtime.block_on(write_replay_journal(&replay_db, replay_events))?;
    eprintln!("raw: reading them back ...");
    let raw_read = median(runs.min(3), || raw_read(&replay_db, replay_events))?;
    eprintln!("store: recovering the actor from them ...");
    let recovery = median(runs.min(3), || {
        runtime.block_on(recover(&replay_db, replay_events))
    })?;
    eprintln!("store: peak memory of the replay, in a fresh process ...");
    let (hwm_before, hwm_after) = replay_memory(&replay_db)?;

    let times = |a: f64, b: f64| format!("{:.2}x", a / b);
    println!();
    println!(
        "SQLite {}, {runs} runs each; ratios of paired runs as median (min-max).",
        rusqlite::version()
    );
    println!();
    println!("| measurement | events/s (median) | compared with | ratio | target | met |");
    println!("|---|---:|---|---:|---|---|");
    let quick = options.quick;
    if quick {
        println!(
            "--quick: every scenario ran, small; the figures mean nothing and no target is judged."
        );
        println!();
    }
    let row = |name: &str, value: f64, base: &str, r: String, target: &str, met: Option<bool>| {
        let met = if quick { None } else { met };
        println!(
            "| {name} | {} | {base} | {r} | {target} | {} |",
            thousands(value),
            met.map_or("", |m| if m { "yes" } else { "**no**" })
        );
    };
    let none = String::new;
    row(
        "the disk: append 64 bytes and fdatasync, in a loop (writes/s)",
        disk,
        "",
        none(),
        "",
        None,
    );
    row(
        "raw rusqlite, 1 insert per transaction, FULL",
        raw_single,
        "the disk's flushes",
        times(raw_single, disk),
        "",
        None,
    );
    row(
        &format!(
            "raw rusqlite, {RAW_GROUP} inserts per transaction ({RAW_GROUP} ids), FULL, clustered layout (schema 1-2)"
        ),
        raw_clustered,
        "",
        none(),
        "",
        None,
    );
    row(
        &format!(
            "raw rusqlite, {RAW_GROUP} inserts per transaction ({RAW_GROUP} ids), FULL, log layout (schema 3)"
        ),
        raw_grouped,
        "raw clustered",
        times(raw_grouped, raw_clustered),
        "",
        None,
    );
    row(
        "1 actor, sequential persists, Durability::Full",
        seq_full,
        "raw 1/tx FULL, paired runs",
        seq_full_ratio.to_string(),
        ">= 0.80x",
        Some(seq_full_ratio.median >= 0.8),
    );
    row(
        "1 actor, sequential persists, Durability::Full",
        seq_full,
        "the disk's flushes",
        times(seq_full, disk),
        "",
        None,
    );
    row(
        &format!("{} actors concurrently, Durability::Full", sizes.actors),
        concurrent,
        "raw 1/tx FULL",
        times(concurrent, raw_single),
        ">= 100,000/s and >= 20x",
        Some(concurrent >= 100_000.0 && concurrent / raw_single >= 20.0),
    );
    row(
        &format!("{} actors concurrently, Durability::Full", sizes.actors),
        concurrent,
        &format!("raw {RAW_GROUP}/tx FULL"),
        times(concurrent, raw_grouped),
        "",
        None,
    );
    row(
        "raw rusqlite, 1 insert per transaction, NORMAL",
        raw_single_normal,
        "",
        none(),
        "",
        None,
    );
    row(
        "1 actor, sequential persists, Durability::Relaxed",
        seq_relaxed,
        "raw 1/tx NORMAL, paired runs",
        seq_relaxed_ratio.to_string(),
        "",
        None,
    );
    row(
        &format!("raw rusqlite, read {replay_events} events of one id (no copy)"),
        raw_read,
        "",
        none(),
        "",
        None,
    );
    row(
        &format!("recover 1 actor from {replay_events} events (read, checksum, decode, apply)"),
        recovery,
        "raw read",
        times(recovery, raw_read),
        ">= 2,000,000/s",
        Some(recovery >= 2_000_000.0),
    );
    let peak = hwm_after.saturating_sub(hwm_before) * 1024;
    println!();
    println!(
        "Replay memory: the {replay_events} events' own size (payload + event type + 8-byte sequence) is {} MiB; \
         peak RSS grew by {} MiB during recovery ({} -> {} MiB): {:.2}x the events' size (target <= 2x).",
        mib(own_bytes),
        mib(peak),
        mib(hwm_before * 1024),
        mib(hwm_after * 1024),
        peak as f64 / own_bytes as f64
    );
    Ok(())
}

/// The median of the per-run ratios of two paired measurements, and their range.
#[derive(Clone, Copy)]
struct Ratio {
    median: f64,
    min: f64,
    max: f64,
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}x ({:.2}-{:.2})", self.median, self.min, self.max)
    }
}

/// Runs `a` then `b`, `runs` times; returns the median of each and the
/// per-run ratios `b / a`.
fn paired(
    runs: usize,
    mut a: impl FnMut() -> Result<f64>,
    mut b: impl FnMut() -> Result<f64>,
) -> Result<(f64, f64, Ratio)> {
    let (mut xs, mut ys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (x, y) = (a()?, b()?);
        xs.push(x);
        ys.push(y);
        ratios.push(y / x);
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(0.0, f64::max);
    Ok((
        mid(xs),
        mid(ys),
        Ratio {
            median: mid(ratios),
            min,
            max,
        },
    ))
}

/// Runs `f` `runs` times and returns the median of its results.
fn median(runs: usize, mut f: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut values = Vec::with_capacity(runs);
    for _ in 0..runs {
        values.push(f()?);
    }
    Ok(stats::median(values))
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------
// The raw engine.
// ---------------------------------------------------------------------------

fn raw_connection(path: &Path, synchronous: &str, schema: &str) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// A payload like the actor's: a postcard-encoded `Added(n)`.
fn event_payload(n: u64) -> Result<Vec<u8>> {
    Ok(postcard::to_allocvec(&CounterEvent::Added(n))?)
}

fn raw_one_per_tx(path: &Path, events: usize, synchronous: &str) -> Result<f64> {
    let conn = raw_connection(path, synchronous, LOG_SCHEMA)?;
    let started = Instant::now();
    for i in 0..events {
        let payload = event_payload(i as u64)?;
        conn.execute_batch("BEGIN")?;
        conn.prepare_cached(INSERT_LOG)?.execute(params![
            raw_stream(0),
            i as i64 + 1,
            "Added",
            payload
        ])?;
        conn.execute_batch("COMMIT")?;
    }
    Ok(per_second(events, started.elapsed()))
}

/// The disk's own limit: append 64 bytes to a file and `fdatasync` it,
/// `writes` times; writes/s. Every durable commit needs at least one such
/// flush.
fn fdatasync_loop(path: &Path, writes: usize) -> Result<f64> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let record = [0x5Au8; 64];
    let started = Instant::now();
    for _ in 0..writes {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    Ok(per_second(writes, started.elapsed()))
}

/// The layouts the raw grouped insert is measured on.
#[derive(Clone, Copy)]
enum Layout {
    /// Schema 1 and 2: clustered by (persistence id text, sequence).
    Clustered,
    /// Schema 3: a log, small integer ids.
    Log,
}

fn raw_grouped(path: &Path, events: usize, layout: Layout) -> Result<f64> {
    let schema = match layout {
        Layout::Clustered => CLUSTERED_SCHEMA,
        Layout::Log => LOG_SCHEMA,
    };
    let conn = raw_connection(path, "FULL", schema)?;
    let started = Instant::now();
    for group in 0..events / RAW_GROUP {
        conn.execute_batch("BEGIN")?;
        {
            let mut insert = conn.prepare_cached(match layout {
                Layout::Clustered => {
                    "INSERT INTO journal (persistence_id, sequence, event_type, payload, checksum) VALUES (?1, ?2, ?3, ?4, 0)"
                }
                Layout::Log => INSERT_LOG,
            })?;
            for k in 0..RAW_GROUP {
                // A thousand ids, as the concurrent actors have.
                let i = group * RAW_GROUP + k;
                let payload = event_payload(i as u64)?;
                match layout {
                    Layout::Clustered => insert.execute(params![
                        format!("Counter:{}", k),
                        group as i64 + 1,
                        "Added",
                        payload
                    ])?,
                    Layout::Log => insert.execute(params![
                        raw_stream(k),
                        group as i64 + 1,
                        "Added",
                        payload
                    ])?,
                };
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(per_second(events, started.elapsed()))
}

fn raw_read(path: &Path, events: i64) -> Result<f64> {
    let conn = Connection::open(path)?;
    let started = Instant::now();
    let stream: i64 = conn.query_row(
        "SELECT id FROM streams WHERE persistence_id = ?1",
        params!["Counter:replay"],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT sequence, event_type, payload, checksum FROM events WHERE stream = ?1 AND sequence >= 1 ORDER BY sequence",
    )?;
    let mut rows = stmt.query(params![stream])?;
    let (mut count, mut bytes) = (0usize, 0usize);
    while let Some(row) = rows.next()? {
        bytes += row.get_ref(1)?.as_str()?.len() + row.get_ref(2)?.as_blob()?.len();
        let _: i64 = row.get(0)?;
        let _: i64 = row.get(3)?;
        count += 1;
    }
    if count as i64 != events || bytes == 0 {
        return Err(format!("raw read found {count} events").into());
    }
    Ok(per_second(count, started.elapsed()))
}

// ---------------------------------------------------------------------------
// The store.
// ---------------------------------------------------------------------------

async fn sequential(path: &Path, events: usize, durability: Durability) -> Result<f64> {
    let store = SqliteStorage::builder(path)
        .durability(durability)
        .open()
        .await?;
    let mut counter = Counter::new("sequential");
    let started = Instant::now();
    for i in 0..events {
        counter
            .persist(CounterEvent::Added(i as u64), &store)
            .await?;
    }
    let result = per_second(events, started.elapsed());
    store.close().await;
    Ok(result)
}

async fn concurrent(path: &Path, actors: usize, events_per_actor: usize) -> Result<f64> {
    let store = Arc::new(SqliteStorage::open(path).await?);
    let started = Instant::now();
    let tasks: Vec<_> = (0..actors)
        .map(|a| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut counter = Counter::new(&format!("actor-{a}"));
                for i in 0..events_per_actor {
                    counter
                        .persist(CounterEvent::Added(i as u64), &*store)
                        .await?;
                }
                Ok::<_, PersistError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    eprintln!(
        "  {} events in {} commits ({:.0} per commit)",
        stats.requests,
        stats.commits,
        stats.requests as f64 / stats.commits.max(1) as f64
    );
    store.close().await;
    Ok(per_second(actors * events_per_actor, elapsed))
}

/// Writes the replay journal; returns the events' own size in bytes.
async fn write_replay_journal(path: &Path, events: i64) -> Result<u64> {
    let store = SqliteStorage::builder(path)
        .durability(Durability::Relaxed)
        .open()
        .await?;
    let pid = PersistenceId::new("Counter", "replay");
    let mut own = 0u64;
    let mut seq = 0i64;
    while seq < events {
        let payloads: Vec<Vec<u8>> = (seq + 1..=(seq + 10_000).min(events))
            .map(|n| event_payload(n as u64))
            .collect::<Result<_>>()?;
        let batch: Vec<(SequenceId, &str, &[u8])> = payloads
            .iter()
            .zip(seq + 1..)
            .map(|(p, s)| (SequenceId(s), "Added", p.as_slice()))
            .collect();
        own += payloads
            .iter()
            .map(|p| (p.len() + "Added".len() + 8) as u64)
            .sum::<u64>();
        store.write_event_batch(&pid, &batch).await?;
        seq += payloads.len() as i64;
    }
    store.close().await;
    Ok(own)
}

async fn recover(path: &Path, events: i64) -> Result<f64> {
    let store = SqliteStorage::open(path).await?;
    let mut counter = Counter::new("replay");
    let started = Instant::now();
    recover_event_sourced(&mut counter, &store, &store).await?;
    let elapsed = started.elapsed();
    let n = events as u64;
    if counter.seq != SequenceId(events) || counter.value != n * (n + 1) / 2 {
        return Err(format!("recovered {:?} / {}", counter.seq, counter.value).into());
    }
    store.close().await;
    Ok(per_second(events as usize, elapsed))
}

/// Runs the replay in a fresh process and returns its peak RSS (KiB) before
/// and after recovery.
fn replay_memory(path: &Path) -> Result<(u64, u64)> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--replay-child")
        .arg(path)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "replay child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(before)), Some(Ok(after))) => Ok((before, after)),
        _ => Err(format!("replay child printed {text:?}").into()),
    }
}

/// The peak resident set size of this process so far, in KiB.
fn vm_hwm() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmHWM")?
        .parse()?)
}

fn replay_child(path: &Path) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = SqliteStorage::open(path).await?;
        // Warm up the reader, so that its connection is counted before.
        store
            .read_highest_sequence(&PersistenceId::new("Counter", "replay"))
            .await?;
        let before = vm_hwm()?;
        let mut counter = Counter::new("replay");
        recover_event_sourced(&mut counter, &store, &store).await?;
        let after = vm_hwm()?;
        println!("{before} {after}");
        store.close().await;
        Ok(())
    })
}
