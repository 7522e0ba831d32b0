//! Exactly once, proven: a child process runs the `totals` projection over
//! a SQLite file while this process keeps persisting events into it, and is
//! killed with SIGKILL at a random moment, again and again. After every
//! kill the read model must be the fold of exactly the events up to the
//! stored offset, each applied once; at the end, a projection run to the
//! head must hold every event, once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dactor_persist::projection::{Projection, ProjectionStore};
use dactor_persist::query::{EventQueries, Offset, ReadJournal};
use dactor_persist::{JournalStorage, PersistenceId, SequenceId, SqliteStorage};
use dactor_persist_tests::projection::{ENTITY, NAME, apply, value_of};
use dactor_persist_tests::rng::Rng;

const ROUNDS: usize = 20;
const WRITERS: usize = 6;

/// Per id: (sum, count, last sequence).
type Totals = BTreeMap<String, (i64, i64, i64)>;

/// The read model as the file holds it.
fn read_model(db: &Path) -> Totals {
    let conn = rusqlite::Connection::open(db).expect("open the file");
    let exists: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'totals'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .expect("look for the table")
        > 0;
    if !exists {
        return Totals::new();
    }
    let mut stmt = conn
        .prepare("SELECT id, sum, count, last FROM totals")
        .expect("read the totals");
    stmt.query_map([], |row| {
        Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?)))
    })
    .expect("read the totals")
    .collect::<Result<_, _>>()
    .expect("read the totals")
}

/// The fold of every event of the projection's source up to `upto`.
async fn fold(store: &Arc<SqliteStorage>, upto: Option<Offset>) -> Totals {
    let mut totals = Totals::new();
    let Some(upto) = upto else { return totals };
    let journal = ReadJournal::new(store.clone()).page_size(512);
    let mut events = journal.current_events_by_entity_type(ENTITY, Offset::START);
    while let Some(event) = events.next().await {
        let event = event.expect("read the events");
        if event.offset > upto {
            break;
        }
        let entry = totals
            .entry(event.persistence_id.0.clone())
            .or_insert((0, 0, 0));
        entry.0 += value_of(&event.payload).expect("a value");
        entry.1 += 1;
        entry.2 = event.sequence_id.0;
    }
    totals
}

/// Persists events for `WRITERS` ids until `stop`.
async fn write_until(store: Arc<SqliteStorage>, stop: Arc<AtomicBool>, seed: u64) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let pid = PersistenceId::new(ENTITY, &format!("m{w}"));
            let mut seq = store
                .read_highest_sequence(&pid)
                .await
                .expect("highest")
                .map_or(0, |s| s.0);
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let value = ((seed ^ (seq as u64 * 31 + w as u64)) % 1000) as i64 - 300;
                store
                    .write_event(&pid, SequenceId(seq), "Read", &value.to_le_bytes())
                    .await
                    .expect("persist");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

/// Starts the child, waits until it runs, lets it work for `after`, and
/// kills it with SIGKILL.
fn run_and_kill(db: &Path, batch: u64, after: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_projection_child"))
        .arg(db)
        .arg(batch.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the projection child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read the child");
    if first.trim() != "running" {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            std::io::Read::read_to_string(&mut stderr, &mut err).ok();
        }
        let _ = child.kill();
        panic!("the child did not start: {first:?} {err}");
    }
    std::thread::sleep(after);
    if let Some(status) = child.try_wait().expect("poll the child") {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            std::io::Read::read_to_string(&mut stderr, &mut err).ok();
        }
        panic!("the projection child ended by itself ({status}): {err}");
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
}

#[test]
fn a_projection_killed_at_random_applies_every_event_exactly_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("projection.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
        | 1;
    println!("projection crash test seed {seed:#x}");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(
        runtime
            .block_on(SqliteStorage::open(&db))
            .expect("open the store"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writers = runtime.spawn(write_until(store.clone(), stop.clone(), seed));

    let mut advanced = 0;
    let mut last_offset: Option<Offset> = None;
    for round in 0..ROUNDS {
        let batch = 1 + rng.below(40);
        let after = Duration::from_millis(40 + rng.below(260));
        run_and_kill(&db, batch, after);
        let record = runtime
            .block_on(store.load_projection(NAME))
            .unwrap_or_else(|e| panic!("round {round} (seed {seed:#x}): {e}"));
        assert!(
            record.offset >= last_offset,
            "round {round} (seed {seed:#x}): the offset went back from {last_offset:?} to {:?}",
            record.offset
        );
        if record.offset > last_offset {
            advanced += 1;
        }
        last_offset = record.offset;
        let expected = runtime.block_on(fold(&store, record.offset));
        let found = read_model(&db);
        assert_eq!(
            found, expected,
            "round {round} (seed {seed:#x}, batch {batch}, killed after {after:?}): the read \
             model is not the fold of the events up to the stored offset {:?}",
            record.offset
        );
    }
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(writers).expect("writers");

    // Caught up by a projection that runs to the head and stops cleanly.
    let head = runtime.block_on(store.event_head()).expect("head");
    let handle = {
        let _guard = runtime.enter();
        Projection::by_entity_type(NAME, ENTITY)
            .batch(100, Duration::from_millis(5))
            .run_in_sqlite(store.clone(), apply)
            .expect("run the projection")
    };
    runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), handle.wait_for(head)).await
        })
        .expect("caught up within 60 s")
        .expect("caught up");
    runtime.block_on(handle.stop());
    let everything = runtime.block_on(fold(&store, Some(head)));
    let events: i64 = everything.values().map(|t| t.1).sum();
    assert_eq!(
        read_model(&db),
        everything,
        "seed {seed:#x}: the final read model"
    );
    println!("{ROUNDS} kills, {advanced} with progress, {events} events applied once each");
    assert!(
        advanced >= ROUNDS / 2,
        "only {advanced} of {ROUNDS} kills came after the projection made progress"
    );
    runtime.block_on(store.close());
}

/// The log's lines, as (id, sequence).
fn log_lines(path: &Path) -> Vec<(String, i64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| {
            let (id, seq) = line.rsplit_once(' ').expect("a log line");
            (id.to_owned(), seq.parse().expect("a sequence"))
        })
        .collect()
}

/// Runs the at-least-once child on `db` with `log` for `after`, then kills
/// it with SIGKILL.
fn run_sink_and_kill(db: &Path, log: &Path, after: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_projection_child"))
        .arg(db)
        .arg("4")
        .arg(log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the projection child");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read the child");
    assert_eq!(first.trim(), "running", "the child did not start");
    std::thread::sleep(after);
    assert!(
        child.try_wait().expect("poll").is_none(),
        "the at-least-once child ended by itself"
    );
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
}

#[test]
fn an_at_least_once_projection_killed_repeats_only_what_it_had_not_saved() {
    use dactor_persist_tests::projection::{SAVE_EVERY, SINK};

    let dir = tempfile::tempdir().expect("temporary directory");
    let (db, log) = (dir.path().join("sink.db"), dir.path().join("sink.log"));
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
        | 1;
    println!("at-least-once crash test seed {seed:#x}");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(runtime.block_on(SqliteStorage::open(&db)).expect("open"));
    // The events, written first; the sink is slow enough (a write per
    // event to a file) that kills land mid-way.
    runtime.block_on(async {
        for w in 0..4 {
            let pid = PersistenceId::new(ENTITY, &format!("s{w}"));
            let batch: Vec<(SequenceId, &str, &[u8])> = (1..=1500)
                .map(|s| (SequenceId(s), "Read", &b"\x01\0\0\0\0\0\0\0"[..]))
                .collect();
            for chunk in batch.chunks(500) {
                store.write_event_batch(&pid, chunk).await.expect("write");
            }
        }
    });
    let events = runtime.block_on(async {
        let journal = ReadJournal::new(store.clone()).page_size(1000);
        let mut all = journal.current_events_by_entity_type(ENTITY, Offset::START);
        let mut events = Vec::new();
        while let Some(e) = all.next().await {
            let e = e.expect("read");
            events.push(((e.persistence_id.0.clone(), e.sequence_id.0), e.offset));
        }
        events
    });
    let offset_of: std::collections::HashMap<(String, i64), Offset> =
        events.iter().cloned().collect();
    let head = events.last().expect("events").1;

    let mut crashes = 0;
    let mut repeated_total = 0usize;
    for round in 0..8 {
        let before = log_lines(&log).len();
        let saved_before = runtime
            .block_on(store.load_projection(SINK))
            .expect("load")
            .offset;
        run_sink_and_kill(&db, &log, Duration::from_millis(20 + rng.below(120)));
        let lines = log_lines(&log);
        let this_run = &lines[before..];
        let saved = runtime
            .block_on(store.load_projection(SINK))
            .expect("load")
            .offset;
        // This run resumed right after the offset saved before it...
        if let Some(first) = this_run.first() {
            let expected = events
                .iter()
                .find(|(_, o)| saved_before.is_none_or(|s| *o > s))
                .map(|(k, _)| k.clone());
            assert_eq!(
                Some(first.clone()),
                expected,
                "round {round} (seed {seed:#x}): the run did not resume right after {saved_before:?}"
            );
        }
        // ...and what it handled beyond its last save, the next run
        // handles again: at most SAVE_EVERY events.
        let unsaved = this_run
            .iter()
            .filter(|k| saved.is_none_or(|s| offset_of[*k] > s))
            .count();
        assert!(
            unsaved <= SAVE_EVERY,
            "round {round} (seed {seed:#x}): {unsaved} events handled beyond the saved offset"
        );
        repeated_total += unsaved;
        if saved < Some(head) {
            crashes += 1;
        }
    }
    // A last run to the head.
    let mut child = Command::new(env!("CARGO_BIN_EXE_projection_child"))
        .arg(&db)
        .arg("4")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the projection child");
    let mut caught_up = false;
    for _ in 0..600 {
        if runtime
            .block_on(store.load_projection(SINK))
            .expect("load")
            .offset
            >= Some(head)
        {
            caught_up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(caught_up, "seed {seed:#x}: the sink never caught up");
    let lines = log_lines(&log);
    let mut counts: std::collections::HashMap<(String, i64), usize> = Default::default();
    for line in &lines {
        *counts.entry(line.clone()).or_default() += 1;
    }
    for (key, _) in &events {
        assert!(
            counts.contains_key(key),
            "seed {seed:#x}: {key:?} was never handled"
        );
    }
    let duplicates = lines.len() - events.len();
    assert!(
        duplicates <= repeated_total,
        "seed {seed:#x}: {duplicates} repeats, more than the {repeated_total} unsaved at the kills"
    );
    println!(
        "{crashes} kills before the head, {} events, {duplicates} handled twice (at most {SAVE_EVERY} per kill)",
        events.len()
    );
    assert!(
        crashes >= 4,
        "only {crashes} kills landed before the sink caught up"
    );
    runtime.block_on(store.close());
}
