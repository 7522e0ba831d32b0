//! The child process of the crash test (`tests/tests/sqlite_crash.rs`).
//!
//! `crash_writer <db path> <ids>` opens the SQLite store, and for each of
//! `<ids>` persistence ids prints `start <id> <next sequence>`, then persists
//! events for all of them at once as fast as it can, forever: mostly single
//! events, every fourth write a batch of three. After each acknowledged write
//! it prints `ack <id> <sequence>` for every event of it, and flushes. The
//! test kills it with SIGKILL at a random moment and checks that every
//! acknowledged event is in the file.
//!
//! The payload of event `seq` of id `i` is [`payload`]`(i, seq)`, so the test
//! can tell a right event from a wrong one.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use dactor_persist::{JournalStorage, PersistError, PersistenceId, SequenceId, SqliteStorage};
use dactor_persist_tests::crash::{payload, persistence_id};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(Ok(ids))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: crash_writer <db path> <number of ids>");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("crash_writer: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(path, ids)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash_writer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one line and flushes it: a line on stdout is a promise the test checks.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // One write of a short line: the pipe takes it whole or not at all.
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

async fn run(path: &str, ids: usize) -> Result<(), PersistError> {
    let store = Arc::new(SqliteStorage::open(path).await?);
    let mut writers = Vec::new();
    for i in 0..ids {
        let pid = persistence_id(i);
        let next = store
            .read_highest_sequence(&pid)
            .await?
            .unwrap_or(SequenceId::ZERO)
            .next();
        say(&format!("start {i} {}\n", next.0));
        writers.push(tokio::spawn(write_forever(store.clone(), i, pid, next.0)));
    }
    for writer in writers {
        writer
            .await
            .map_err(|e| PersistError::StorageUnavailable(format!("writer task: {e}")))??;
    }
    Ok(())
}

async fn write_forever(
    store: Arc<SqliteStorage>,
    i: usize,
    pid: PersistenceId,
    mut next: i64,
) -> Result<(), PersistError> {
    for round in 0u64.. {
        if round % 4 == 3 {
            let payloads: Vec<Vec<u8>> = (next..next + 3).map(|s| payload(i, s)).collect();
            let batch: Vec<(SequenceId, &str, &[u8])> = payloads
                .iter()
                .zip(next..)
                .map(|(p, s)| (SequenceId(s), "Batched", p.as_slice()))
                .collect();
            store.write_event_batch(&pid, &batch).await?;
            let lines: String = (next..next + 3).map(|s| format!("ack {i} {s}\n")).collect();
            say(&lines);
            next += 3;
        } else {
            store
                .write_event(&pid, SequenceId(next), "Single", &payload(i, next))
                .await?;
            say(&format!("ack {i} {next}\n"));
            next += 1;
        }
    }
    Ok(())
}
