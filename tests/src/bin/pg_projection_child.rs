//! The child process of the two-process projection test
//! (`tests/tests/postgres/projections.rs`): `pg_projection_child <url>
//! <schema> <node>` runs the exactly-once `applied` projection against the
//! PostgreSQL store, prints `running`, and runs until killed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use dactor_persist::PostgresStorage;
use dactor_persist::projection::{Projection, ProjectionFailurePolicy};
use dactor_persist_tests::projection::{Applied, PG_ENTITY, PG_NAME};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, schema, node] = args.as_slice() else {
        eprintln!("usage: pg_projection_child <url> <schema> <node>");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pg_projection_child: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match PostgresStorage::builder(url.as_str())
            .schema(schema)
            .poll_interval(Duration::from_millis(20))
            .connect()
            .await
        {
            Ok(store) => Arc::new(store),
            Err(e) => {
                eprintln!("pg_projection_child: {e}");
                return ExitCode::FAILURE;
            }
        };
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        let handler = Applied {
            schema: quoted,
            node: node.clone(),
        };
        let handle = match Projection::by_entity_type(PG_NAME, PG_ENTITY)
            .batch(25, Duration::from_millis(5))
            .check_interval(Duration::from_millis(50))
            .on_failure(ProjectionFailurePolicy::STOP)
            .run_in_postgres(store, handler)
        {
            Ok(handle) => handle,
            Err(e) => {
                eprintln!("pg_projection_child: {e}");
                return ExitCode::FAILURE;
            }
        };
        let _ = std::io::stdout().write_all(b"running\n");
        let _ = std::io::stdout().flush();
        let status = handle.join().await;
        eprintln!("pg_projection_child: ended: {:?}", status.state);
        ExitCode::FAILURE
    })
}
