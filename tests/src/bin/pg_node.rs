//! The child process of the several-nodes test (`tests/tests/postgres/nodes.rs`).
//!
//! `pg_node <url> <schema> <persistence id> <node name> <target>` connects to
//! the PostgreSQL store, prints `ready`, waits for a line on stdin, then hosts
//! the actor `<persistence id>` in the runtime and persists events through it
//! as fast as it can until the journal holds `<target>` events. For each
//! acknowledged event it prints `ack <sequence>`. When a write is refused as a
//! conflict (the other node took the sequence) it prints `conflict <sequence>
//! <actor status>`, and starts the actor again, which recovers from the
//! journal and carries on. It ends with `done`.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use dactor_persist::runtime::{ActorStatus, Runtime};
use dactor_persist::{
    PersistError, PersistFailurePolicy, PersistenceId, PostgresStorage, PostgresStorageProvider,
};
use dactor_persist_tests::journaled::{Append, Journaled};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, schema, id, node, target] = args.as_slice() else {
        eprintln!("usage: pg_node <url> <schema> <persistence id> <node name> <target>");
        return ExitCode::from(2);
    };
    let Ok(target) = target.parse::<i64>() else {
        eprintln!("pg_node: the target must be a number");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pg_node: cannot build a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(url, schema, PersistenceId(id.clone()), node, target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pg_node {node}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    url: &str,
    schema: &str,
    id: PersistenceId,
    node: &str,
    target: i64,
) -> Result<(), PersistError> {
    let store = PostgresStorage::builder(url)
        .schema(schema)
        .operation_timeout(Duration::from_secs(20))
        .connect()
        .await?;
    let store = Arc::new(store);
    let host = Runtime::builder()
        .storage(PostgresStorageProvider::from_storage(store.clone()))
        .build();
    let mut out = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(&mut out, "ready".into());
    let mut go = String::new();
    let _ = std::io::stdin().lock().read_line(&mut go);

    'hosting: loop {
        let actor = Journaled::new(id.clone(), node, PersistFailurePolicy::Stop);
        let actor = host.spawn_event_sourced(actor).await?;
        actor.ready().await?;
        loop {
            match actor.ask(Append).await {
                Ok(Ok(seq)) => {
                    say(&mut out, format!("ack {}", seq.0));
                    if seq.0 >= target {
                        break 'hosting;
                    }
                }
                Ok(Err(PersistError::SequenceConflict { sequence_id, .. }))
                | Err(PersistError::SequenceConflict { sequence_id, .. }) => {
                    // The runtime stops an actor that lost its sequence: it
                    // is no longer the single writer.
                    let reason = actor.stopped().await;
                    let status = match actor.status() {
                        ActorStatus::Stopped(_) => "stopped",
                        _ => "running",
                    };
                    say(
                        &mut out,
                        format!(
                            "conflict {} {status} {}",
                            sequence_id.0,
                            reason.replace('\n', " ")
                        ),
                    );
                    // Another node wrote at most up to the target: once the
                    // journal holds it, this node is done too.
                    let highest =
                        dactor_persist::JournalStorage::read_highest_sequence(&*store, &id)
                            .await?
                            .map_or(0, |s| s.0);
                    if highest >= target {
                        break 'hosting;
                    }
                    continue 'hosting;
                }
                Ok(Err(e)) | Err(e) => return Err(e),
            }
        }
    }
    host.shutdown().await;
    store.close().await;
    say(&mut out, "done".into());
    Ok(())
}
