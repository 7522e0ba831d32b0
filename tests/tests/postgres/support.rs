//! What every PostgreSQL test shares: the server's URL, a schema of its own,
//! and a raw connection for looking behind the store's back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dactor_persist::{PostgresStorage, PostgresStorageBuilder};
use libtest_mimic::{Failed, Trial};

/// The one environment variable naming the test server.
pub const URL_VAR: &str = "DACTOR_PERSIST_PG_URL";

/// The server's URL, when the variable is set (and not empty).
pub fn url() -> Option<String> {
    std::env::var(URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// The server's URL; only called by tests that run, which only run when it is set.
pub fn server() -> String {
    url().unwrap_or_else(|| panic!("{URL_VAR} is not set"))
}

/// A test named `name` running `body` on a two-worker tokio runtime.
pub fn trial<F, Fut>(name: &str, body: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    Trial::test(name, move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failed::from(format!("cannot build a tokio runtime: {e}")))?;
        runtime.block_on(body());
        Ok(())
    })
}

/// A schema name no other test (or run) uses.
pub fn unique_schema(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "dactor_test_{tag}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A short schema name no other test uses, to leave room for a suffix
/// within PostgreSQL's 63 bytes.
pub fn short_unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "dt{}_{}_{}_",
        std::process::id() % 100_000,
        nanos % 1_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A schema that is dropped (with everything in it) when this is dropped,
/// even when the test panicked.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new(tag: &str) -> Self {
        Self {
            name: unique_schema(tag),
        }
    }

    /// The builder for a store in this schema, with a short operation bound.
    pub fn builder(&self) -> PostgresStorageBuilder {
        PostgresStorage::builder(server())
            .schema(&self.name)
            .operation_timeout(Duration::from_secs(20))
    }

    /// A store in this schema.
    pub async fn store(&self) -> Arc<PostgresStorage> {
        let store = self
            .builder()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
        Arc::new(store)
    }

    /// The schema's name quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.name.replace('"', "\"\""))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.quoted());
        // Drop runs inside the test's runtime: do the work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = raw().await;
                client.batch_execute(&sql).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test schema {}", self.name);
        }
    }
}

/// A fresh store in a fresh schema, for the conformance suite: the schema is
/// dropped after the check, the store first.
pub async fn fresh() -> (Arc<PostgresStorage>, Schema) {
    let schema = Schema::new("c");
    let store = schema.store().await;
    (store, schema)
}

/// A plain connection to the test server, outside the store.
pub async fn raw() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
