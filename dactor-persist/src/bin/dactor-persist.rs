//! `dactor-persist`: operator commands for dactor-persist stores.
//!
//! ```text
//! dactor-persist verify <sqlite-file>
//! dactor-persist verify --postgres <url> [--schema <name>]
//! ```
//!
//! `verify` checks every row of a store and repairs nothing (see
//! `SqliteStorage::verify` and `PostgresStorage::verify`). It prints a report
//! and exits with 0 when the store is intact, 1 when it found damage, 2 when
//! it could not check (bad arguments, a store that cannot be opened).
//!
//! Install it with `cargo install dactor-persist --features cli` (add
//! `postgres` for PostgreSQL).

use std::process::ExitCode;

use dactor_persist::storage::VerifyReport;
use dactor_persist::{PersistError, SqliteStorage};

const USAGE: &str = "usage:
  dactor-persist verify <sqlite-file>
  dactor-persist verify --postgres <url> [--schema <name>]

verify: checks every event, snapshot, state and journal of a store (checksums,
complete journals, the engine's own integrity check) and repairs nothing.
An older schema is migrated first, as the application would on open.
Exit status: 0 intact, 1 damaged, 2 could not check.";

/// What to check.
enum Target {
    Sqlite(String),
    Postgres { url: String, schema: Option<String> },
}

fn parse(args: &[String]) -> Result<Target, String> {
    match args {
        [cmd, rest @ ..] if cmd == "verify" => match rest {
            [flag, url, more @ ..] if flag == "--postgres" => match more {
                [] => Ok(Target::Postgres {
                    url: url.clone(),
                    schema: None,
                }),
                [s, name] if s == "--schema" => Ok(Target::Postgres {
                    url: url.clone(),
                    schema: Some(name.clone()),
                }),
                _ => Err(format!(
                    "unexpected arguments after the URL: {}",
                    more.join(" ")
                )),
            },
            [path] if !path.starts_with('-') => Ok(Target::Sqlite(path.clone())),
            [] => Err("verify needs a SQLite file or --postgres <url>".into()),
            other => Err(format!("unexpected arguments: {}", other.join(" "))),
        },
        [] => Err("no command given".into()),
        [cmd, ..] => Err(format!("unknown command `{cmd}`")),
    }
}

async fn verify(target: Target) -> Result<VerifyReport, PersistError> {
    match target {
        Target::Sqlite(path) => {
            if !std::path::Path::new(&path).is_file() {
                return Err(PersistError::StorageUnavailable(format!(
                    "{path} is not a file (verify does not create one)"
                )));
            }
            let store = SqliteStorage::open(&path).await?;
            let report = store.verify().await;
            store.close().await;
            report
        }
        #[cfg(feature = "postgres")]
        Target::Postgres { url, schema } => {
            let mut builder = dactor_persist::PostgresStorage::builder(url);
            if let Some(schema) = schema {
                builder = builder.schema(schema);
            }
            let store = builder.connect().await?;
            let report = store.verify().await;
            store.close().await;
            report
        }
        #[cfg(not(feature = "postgres"))]
        Target::Postgres { url, schema } => {
            // Refused in `main` before getting here.
            let _ = (url, schema);
            Err(PersistError::NotConfigured)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let target = match parse(&args) {
        Ok(target) => target,
        Err(problem) => {
            eprintln!("error: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if matches!(target, Target::Postgres { .. }) && !cfg!(feature = "postgres") {
        eprintln!("error: this dactor-persist was built without the `postgres` feature");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(verify(target)) {
        Ok(report) => {
            print!("{report}");
            if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: cannot check the store: {e}");
            ExitCode::from(2)
        }
    }
}
