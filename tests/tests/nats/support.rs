//! What every NATS test shares: the servers' addresses, streams of its own
//! (deleted afterwards), a raw client to look behind the store's back, and
//! the three-node cluster's controls.

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dactor_persist::{NatsStorage, NatsStorageBuilder};
use libtest_mimic::{Failed, Trial};

/// The single server the store's own tests run against.
pub const URL_VAR: &str = "DACTOR_PERSIST_NATS_URL";
/// The state directory of a cluster started with `tests/nats-cluster/cluster.sh start DIR`.
pub const CLUSTER_VAR: &str = "DACTOR_PERSIST_NATS_CLUSTER";
/// The cluster's client addresses (from `tests/nats-cluster/n*.conf`).
pub const NODES: [&str; 3] = [
    "nats://127.0.0.1:14221",
    "nats://127.0.0.1:14222",
    "nats://127.0.0.1:14223",
];

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The single server's URL, when the variable is set.
pub fn url() -> Option<String> {
    var(URL_VAR)
}

/// The cluster's state directory, when the variable is set.
pub fn cluster_dir() -> Option<PathBuf> {
    var(CLUSTER_VAR).map(PathBuf::from)
}

/// The single server's URL; only called by tests that run.
pub fn server() -> String {
    url().unwrap_or_else(|| panic!("{URL_VAR} is not set"))
}

/// Every node's URL, comma-separated.
pub fn cluster_urls() -> String {
    NODES.join(",")
}

/// A test named `name` running `body` on a two-worker tokio runtime.
pub fn trial<F, Fut>(name: &str, body: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    Trial::test(name, move || block_on(body()))
}

/// How a test uses the cluster.
#[derive(Clone, Copy)]
pub enum Use {
    /// Without hurting it: such tests run together.
    Shared,
    /// Killing or stopping nodes: alone, and every node runs again after.
    Exclusive,
}

/// A test on the cluster: `trial`, holding the cluster as `use_` says.
pub fn cluster_trial<F, Fut>(name: &str, use_: Use, body: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    Trial::test(name, move || match use_ {
        Use::Shared => {
            let _shared = CLUSTER.read().unwrap_or_else(|p| p.into_inner());
            block_on(body())
        }
        Use::Exclusive => {
            let _alone = Exclusive {
                _guard: CLUSTER.write().unwrap_or_else(|p| p.into_inner()),
            };
            block_on(body())
        }
    })
}

fn block_on(body: impl Future<Output = ()>) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("cannot build a tokio runtime: {e}")))?;
    runtime.block_on(body);
    Ok(())
}

/// Stream and subject prefixes no other test (or run) uses.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "T{}_{}_{}",
        std::process::id() % 100_000,
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The streams of one test's store, deleted when this is dropped.
pub struct Streams {
    pub urls: String,
    pub names: Vec<String>,
}

impl Drop for Streams {
    fn drop(&mut self) {
        let urls = self.urls.clone();
        let names = std::mem::take(&mut self.names);
        // Dropped inside a runtime: delete from a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(client) = raw_client(&urls).await {
                        let js = async_nats::jetstream::new(client);
                        for name in names {
                            let _ = js.delete_stream(&name).await;
                        }
                    }
                });
            }
        })
        .join();
    }
}

/// A builder on `urls` with this test's prefixes.
pub fn builder(urls: &str, prefix: &str) -> NatsStorageBuilder {
    NatsStorage::builder(urls)
        .stream_prefix(prefix)
        .subject_prefix(prefix.to_lowercase())
}

/// A store on the single server, with streams of its own.
pub async fn fresh() -> (Arc<NatsStorage>, Streams) {
    fresh_with(&server(), |b| b).await
}

/// A store on `urls` with streams of its own, after `options`.
pub async fn fresh_with(
    urls: &str,
    options: impl FnOnce(NatsStorageBuilder) -> NatsStorageBuilder,
) -> (Arc<NatsStorage>, Streams) {
    let prefix = unique_prefix();
    let store = options(builder(urls, &prefix))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to NATS at {urls}: {e}"));
    let streams = Streams {
        urls: urls.to_owned(),
        names: store.stream_names(),
    };
    (Arc::new(store), streams)
}

/// A plain client, for looking behind the store's back.
pub async fn raw_client(urls: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let addrs: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .filter_map(|u| u.trim().parse().ok())
        .collect();
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(addrs)
        .await
}

/// Runs `tests/nats-cluster/cluster.sh <cmd> <dir> [node]`.
pub fn cluster(cmd: &str, node: Option<usize>) {
    let dir = cluster_dir().unwrap_or_else(|| panic!("{CLUSTER_VAR} is not set"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nats-cluster/cluster.sh");
    let mut command = Command::new("bash");
    command.arg(&script).arg(cmd).arg(&dir);
    if let Some(n) = node {
        command.arg(n.to_string());
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "cluster.sh {cmd} {node:?} failed: {status}"
    );
}

/// The node (1-3) leading `stream`, from the monitoring ports.
pub async fn leader_of(stream: &str) -> Option<usize> {
    let client = raw_client(&cluster_urls()).await.ok()?;
    let js = async_nats::jetstream::new(client);
    let mut handle = js.get_stream(stream).await.ok()?;
    let info = handle.info().await.ok()?;
    let leader = info.cluster.as_ref()?.leader.clone()?;
    leader.strip_prefix('n')?.parse().ok()
}

/// A second store on the streams of `prefix` (made by another store).
pub async fn fresh_view(urls: &str, prefix: &str) -> NatsStorage {
    builder(urls, prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to NATS at {urls}: {e}"))
}

/// The cluster's tests share it: the conformance checks and races may run
/// together, a fault test (which kills nodes) runs alone.
static CLUSTER: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by a fault test: nothing else runs on the cluster meanwhile, and
/// when it is dropped (even after a panic) every node runs again.
struct Exclusive {
    _guard: std::sync::RwLockWriteGuard<'static, ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        for n in 1..=3 {
            cluster("resume", Some(n));
        }
        cluster("start", None);
    }
}
