//! One process, two SQLite users: sqlx and dactor-persist's store, each on
//! its own file, both on the one linked SQLite library. Shared by the
//! `sqlx-0.8` and `sqlx-0.9` packages, which differ only in the sqlx they
//! depend on.

use dactor_persist::SqliteStorage;
use dactor_persist::prelude::*;
use sqlx::Connection;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("dactor-sqlx-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let url = format!("sqlite://{}?mode=rwc", dir.join("app.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let (version,): (String,) = sqlx::query_as("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?;

    let store = SqliteStorage::open(dir.join("journal.db")).await?;
    let pid = PersistenceId::new("Check", "1");
    store
        .write_event(&pid, SequenceId(1), "Checked", b"ok")
        .await?;
    let back = store.read_events(&pid, SequenceId(1)).await?;
    store.close().await;

    // The store keeps its whole contract on this SQLite, too.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let stores = dir.clone();
    dactor_persist::testkit::run_all(|| {
        let path = stores.join(format!("conformance-{}.db", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        async move { std::sync::Arc::new(SqliteStorage::open(path).await.expect("open a fresh store")) }
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();

    if back.len() != 1 || back[0].payload != b"ok" {
        return Err("the journal did not read back what it was given".into());
    }
    println!(
        "{}: sqlx and dactor-persist share SQLite {version}; the storage conformance suite passed",
        env!("CARGO_PKG_NAME")
    );
    Ok(())
}
