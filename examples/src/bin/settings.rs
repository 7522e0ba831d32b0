//! A durable-state actor: user preferences saved whole, every 5 changes and
//! always on graceful stop, in a SQLite file.
//!
//! ```sh
//! cargo run -p dactor-persist-examples --bin settings            # ./settings.db
//! ```

use std::process::ExitCode;

use dactor_persist::SqliteStorageProvider;
use dactor_persist::runtime::Runtime;
use dactor_persist_examples::cli;
use dactor_persist_examples::settings::{Bigger, Prefs, SetTheme, Show};

const USAGE: &str = "\
usage: settings [DATABASE]

A durable-state actor (a user's preferences) saved whole in a SQLite file
(default ./settings.db): changed, stopped, and recovered.";

#[tokio::main]
async fn main() -> ExitCode {
    cli::main_with_database("settings.db", USAGE, |path| async move { run(&path).await }).await
}

async fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let storage = SqliteStorageProvider::open(path).await?;
    let runtime = Runtime::builder().storage(storage.clone()).build();
    let prefs = runtime
        .spawn_durable_state(Prefs {
            user: "ada".into(),
            ..Default::default()
        })
        .await?;
    println!("recovered  {}", prefs.ask(Show).await?);
    prefs.tell(SetTheme("dark")).await?;
    for _ in 0..3 {
        prefs.ask(Bigger).await?;
    }
    println!("changed    {}", prefs.ask(Show).await?);
    // Stopping saves the state, whatever `save_every` says.
    runtime.shutdown().await;

    let runtime = Runtime::builder().storage(storage.clone()).build();
    let prefs = runtime
        .spawn_durable_state(Prefs {
            user: "ada".into(),
            ..Default::default()
        })
        .await?;
    println!("restarted  {}", prefs.ask(Show).await?);
    runtime.shutdown().await;
    storage.storage().close().await;
    Ok(())
}
