//! The child process of the projection crash tests
//! (`tests/tests/projection_crash.rs`): `projection_child <db path> <batch>`
//! runs the exactly-once `totals` projection over the SQLite file;
//! `projection_child <db path> <batch> <log path>` runs the at-least-once
//! `sink` projection instead, whose sink appends `<id> <sequence>` to the
//! log for each event. Either prints `running` once it started, and runs
//! until killed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use dactor_persist::SqliteStorage;
use dactor_persist::projection::{HandlerError, Projection, ProjectionFailurePolicy};
use dactor_persist::query::EventEnvelope;
use dactor_persist_tests::projection::{ENTITY, NAME, SAVE_EVERY, SINK, apply};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(Ok(batch))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>()))
    else {
        eprintln!("usage: projection_child <db path> <batch size> [<log path>]");
        return ExitCode::from(2);
    };
    let log = args.get(3).cloned();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("projection_child: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match SqliteStorage::open(path).await {
            Ok(store) => Arc::new(store),
            Err(e) => {
                eprintln!("projection_child: {e}");
                return ExitCode::FAILURE;
            }
        };
        let handle = match log {
            None => Projection::by_entity_type(NAME, ENTITY)
                .batch(batch, Duration::from_millis(5))
                .check_interval(Duration::from_millis(50))
                .on_failure(ProjectionFailurePolicy::STOP)
                .run_in_sqlite(store, apply),
            Some(log) => {
                let mut file = match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                {
                    Ok(file) => file,
                    Err(e) => {
                        eprintln!("projection_child: {log}: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                Projection::by_entity_type(SINK, ENTITY)
                    .batch(batch, Duration::from_millis(5))
                    .save_every(SAVE_EVERY, Duration::from_secs(3600))
                    .check_interval(Duration::from_millis(50))
                    .on_failure(ProjectionFailurePolicy::STOP)
                    .run_at_least_once(store, move |event: EventEnvelope| {
                        // One write per event: a SIGKILL cannot split a line.
                        let line = format!("{} {}\n", event.persistence_id, event.sequence_id.0);
                        let written = file.write_all(line.as_bytes()).map_err(HandlerError::from);
                        std::future::ready(written)
                    })
            }
        };
        let handle = match handle {
            Ok(handle) => handle,
            Err(e) => {
                eprintln!("projection_child: {e}");
                return ExitCode::FAILURE;
            }
        };
        let _ = std::io::stdout().write_all(b"running\n");
        let _ = std::io::stdout().flush();
        // Until killed; a failure ends it with the reason.
        let status = handle.join().await;
        eprintln!("projection_child: ended: {:?}", status.state);
        ExitCode::FAILURE
    })
}
