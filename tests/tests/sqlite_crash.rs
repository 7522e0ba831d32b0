//! Crash safety, proven: a child process persists events for many ids as fast
//! as it can and prints each acknowledged one; it is killed with SIGKILL at a
//! random moment, again and again, on the same file. After every kill, every
//! acknowledged event must be in the file, intact (its checksum verified by
//! the store's read), contiguous from 1 for its id, and the next run must
//! carry on at the next sequence.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dactor_persist::{JournalStorage, SequenceId, SqliteStorage};
use dactor_persist_tests::crash::{payload, persistence_id};
use dactor_persist_tests::rng::Rng;

const ROUNDS: usize = 24;
const IDS: usize = 32;

/// One child run: its `start` lines and its `ack` lines, read until it died.
#[derive(Default)]
struct Run {
    starts: HashMap<usize, i64>,
    acks: Vec<(usize, i64)>,
}

fn parse(line: &str, run: &mut Run) {
    let mut words = line.split(' ');
    let (Some(kind), Some(Ok(i)), Some(Ok(seq)), None) = (
        words.next(),
        words.next().map(str::parse::<usize>),
        words.next().map(str::parse::<i64>),
        words.next(),
    ) else {
        panic!("the child printed a line the test does not know: {line:?}");
    };
    match kind {
        "start" => {
            run.starts.insert(i, seq);
        }
        "ack" => run.acks.push((i, seq)),
        other => panic!("unknown line kind {other:?} in {line:?}"),
    }
}

/// Runs the child until `after`, kills it with SIGKILL, and returns what it printed.
fn run_and_kill(db: &Path, after: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(db)
        .arg(IDS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the crash_writer child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(line) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    std::thread::sleep(after);
    // On Unix, `kill` sends SIGKILL: no destructor, no flush, no clean close.
    let status_before = child.try_wait().expect("poll the child");
    if let Some(status) = status_before {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            std::io::Read::read_to_string(&mut stderr, &mut err).ok();
        }
        panic!("the child exited by itself ({status}) before it was killed: {err}");
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    // Every line the child wrote before dying is still in the pipe.
    reader.join().expect("stdout reader");
    let mut run = Run::default();
    for line in rx.try_iter() {
        parse(&line, &mut run);
    }
    run
}

#[test]
fn every_acknowledged_event_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("crash.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
        | 1;
    println!("crash test seed {seed:#x}");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let started = Instant::now();

    // The highest acknowledged sequence of each id, over all rounds.
    let mut acknowledged: HashMap<usize, i64> = HashMap::new();
    let mut total_acks = 0usize;
    let mut kills_while_writing = 0usize;
    for round in 0..ROUNDS {
        // Some kills land while the child opens the file, most while it writes.
        let after = Duration::from_millis(if round % 6 == 0 {
            rng.below(60)
        } else {
            150 + rng.below(350)
        });
        let run = run_and_kill(&db, after);
        if !run.acks.is_empty() {
            kills_while_writing += 1;
        }
        total_acks += run.acks.len();

        let store = runtime
            .block_on(SqliteStorage::open(&db))
            .unwrap_or_else(|e| panic!("round {round} (seed {seed:#x}): reopen failed: {e}"));
        let mut stored: HashMap<usize, i64> = HashMap::new();
        for i in 0..IDS {
            let pid = persistence_id(i);
            // The store verifies every checksum as it reads.
            let events = runtime
                .block_on(store.read_events(&pid, SequenceId(1)))
                .unwrap_or_else(|e| panic!("round {round} (seed {seed:#x}): {pid}: {e}"));
            for (k, event) in events.iter().enumerate() {
                assert_eq!(
                    event.sequence_id,
                    SequenceId(k as i64 + 1),
                    "round {round} (seed {seed:#x}): {pid} is not contiguous from 1"
                );
                assert!(
                    event.payload == payload(i, event.sequence_id.0),
                    "round {round} (seed {seed:#x}): {pid} at {:?} holds the wrong bytes",
                    event.sequence_id
                );
            }
            let highest = runtime
                .block_on(store.read_highest_sequence(&pid))
                .expect("highest")
                .map_or(0, |s| s.0);
            assert_eq!(
                highest,
                events.len() as i64,
                "round {round} (seed {seed:#x}): {pid}'s highest differs from its events"
            );
            stored.insert(i, highest);
        }
        drop(store);

        // This run started each id right after what was stored before it...
        for (i, start) in &run.starts {
            let before = acknowledged.get(i).copied().unwrap_or(0);
            assert!(
                *start > before,
                "round {round} (seed {seed:#x}): id {i} restarted at {start}, at or below the \
                 acknowledged {before}"
            );
        }
        // ...and every event it acknowledged is stored.
        for (i, seq) in &run.acks {
            let have = stored.get(i).copied().unwrap_or(0);
            assert!(
                *seq <= have,
                "round {round} (seed {seed:#x}): id {i} event {seq} was acknowledged but the \
                 file holds only up to {have}"
            );
            let best = acknowledged.entry(*i).or_insert(0);
            *best = (*best).max(*seq);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{ROUNDS} kills ({kills_while_writing} while writing), {total_acks} acknowledged events, {elapsed:?}"
    );
    assert!(
        kills_while_writing >= 15,
        "only {kills_while_writing} of {ROUNDS} kills landed while the child was writing"
    );
    assert!(
        total_acks >= 1000,
        "only {total_acks} events were acknowledged: the test did not exercise the store"
    );

    // Writing carries on at the next sequence, in this process too.
    let store = runtime.block_on(SqliteStorage::open(&db)).expect("reopen");
    let pid = persistence_id(0);
    let next = runtime
        .block_on(store.read_highest_sequence(&pid))
        .expect("highest")
        .unwrap_or(SequenceId::ZERO)
        .next();
    runtime
        .block_on(store.write_event(&pid, next, "Single", &payload(0, next.0)))
        .expect("write at the next sequence after the last kill");
}
