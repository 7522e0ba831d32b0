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

const ROUNDS: usize = 20;
const WRITERS: usize = 6;

/// xorshift64*: kill moments and batch sizes, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

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
