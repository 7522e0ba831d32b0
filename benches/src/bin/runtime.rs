//! The runtime benchmark: the hosting overhead against bare tokio and direct
//! trait calls, measured in the same run. Results go to `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin runtime
//! cargo run --release -p dactor-persist-benches --bin runtime -- --runs 7
//! ```
//!
//! Every figure is the median of `--runs` runs (default 5).

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dactor_persist::runtime::{Context, Handler, Message, Runtime};
use dactor_persist::{
    Actor, EventSourced, InMemoryStorage, InMemoryStorageProvider, JournalStorage, PersistError,
    PersistenceId, PersistentActor, SequenceId, SqliteStorage, SqliteStorageProvider, async_trait,
};
use dactor_persist_benches::stats::median;
use tokio::sync::{mpsc, oneshot};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// How much each scenario does.
#[derive(Clone, Copy)]
struct Sizes {
    round_trips: usize,
    spawned: usize,
    events_each: i64,
    memory_persists: usize,
    sqlite_persists: usize,
}

/// The measured run.
const FULL: Sizes = Sizes {
    round_trips: 200_000,
    spawned: 10_000,
    events_each: 10,
    memory_persists: 200_000,
    sqlite_persists: 2_000,
};

/// `--quick`: every scenario, small, to show the harness still runs (CI);
/// its figures mean nothing.
const QUICK: Sizes = Sizes {
    round_trips: 1_000,
    spawned: 100,
    events_each: 10,
    memory_persists: 1_000,
    sqlite_persists: 20,
};

/// A counter with 8-byte events, written by hand so the bench measures the
/// runtime, not a codec.
struct Counter {
    id: String,
    value: i64,
    seq: SequenceId,
}

impl Counter {
    fn new(id: String) -> Self {
        Counter {
            id,
            value: 0,
            seq: SequenceId(0),
        }
    }
}

impl Actor for Counter {
    type Args = String;
    type Deps = ();
    fn create(id: String, _: ()) -> Self {
        Counter::new(id)
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Counter", &self.id)
    }
}

fn decode(p: &[u8]) -> Result<i64, PersistError> {
    let b: [u8; 8] = p
        .try_into()
        .map_err(|_| PersistError::SerializationFailed("expected 8 bytes".into()))?;
    Ok(i64::from_le_bytes(b))
}

impl EventSourced for Counter {
    type Event = i64;
    fn apply(&mut self, e: &i64) {
        self.value += e;
    }
    fn deserialize_event(&self, p: &[u8]) -> Result<i64, PersistError> {
        decode(p)
    }
    fn serialize_event(&self, e: &i64) -> Result<Vec<u8>, PersistError> {
        Ok(e.to_le_bytes().to_vec())
    }
    fn event_type(&self, _: &i64) -> &'static str {
        "Added"
    }
    fn restore_snapshot(&mut self, p: Vec<u8>) -> Result<(), PersistError> {
        self.value = decode(&p)?;
        Ok(())
    }
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        Ok(self.value.to_le_bytes().to_vec())
    }
    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }
    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}

/// Answers the value: no persistence.
struct Get;
impl Message for Get {
    type Reply = i64;
}

#[async_trait]
impl Handler<Get> for Counter {
    async fn handle(&mut self, _: Get, _: &mut Context<Self>) -> i64 {
        self.value
    }
}

/// Persists one event through the context.
struct Add(i64);
impl Message for Add {
    type Reply = Result<SequenceId, PersistError>;
}

#[async_trait]
impl Handler<Add> for Counter {
    async fn handle(
        &mut self,
        Add(n): Add,
        ctx: &mut Context<Self>,
    ) -> Result<SequenceId, PersistError> {
        ctx.persist(self, n).await
    }
}

/// Persists `n` events, one `ctx.persist` each, inside one handler.
struct AddMany(usize);
impl Message for AddMany {
    type Reply = Result<SequenceId, PersistError>;
}

#[async_trait]
impl Handler<AddMany> for Counter {
    async fn handle(
        &mut self,
        AddMany(n): AddMany,
        ctx: &mut Context<Self>,
    ) -> Result<SequenceId, PersistError> {
        let mut seq = self.seq;
        for _ in 0..n {
            seq = ctx.persist(self, 1).await?;
        }
        Ok(seq)
    }
}

async fn bare_round_trips(n: usize) -> Duration {
    let (tx, mut rx) = mpsc::channel::<(i64, oneshot::Sender<i64>)>(1024);
    tokio::spawn(async move {
        let mut value = 0;
        while let Some((n, reply)) = rx.recv().await {
            value += n;
            let _ = reply.send(value);
        }
    });
    let start = Instant::now();
    for _ in 0..n {
        let (reply, answer) = oneshot::channel();
        let _ = tx.send((0, reply)).await;
        let _ = answer.await;
    }
    start.elapsed()
}

async fn ask_round_trips(n: usize) -> Result<Duration> {
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::new())
        .build();
    let counter = runtime
        .spawn_event_sourced(Counter::new("rt".into()))
        .await?;
    counter.ready().await?;
    let start = Instant::now();
    for _ in 0..n {
        counter.ask(Get).await?;
    }
    let elapsed = start.elapsed();
    runtime.shutdown().await;
    Ok(elapsed)
}

async fn spawn_and_recover(store: Arc<InMemoryStorage>, sizes: Sizes) -> Result<Duration> {
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::from_storage(store))
        .build();
    let start = Instant::now();
    let mut refs = Vec::with_capacity(sizes.spawned);
    for i in 0..sizes.spawned {
        refs.push(
            runtime
                .spawn_event_sourced(Counter::new(format!("a{i}")))
                .await?,
        );
    }
    for r in &refs {
        r.ready().await?;
    }
    let elapsed = start.elapsed();
    for r in refs.iter().step_by(997) {
        assert_eq!(
            r.ask(Get).await?,
            sizes.events_each,
            "recovered all its events"
        );
    }
    runtime.shutdown().await;
    Ok(elapsed)
}

async fn direct_persists(journal: &dyn JournalStorage, id: &str, n: usize) -> Result<Duration> {
    let mut c = Counter::new(id.to_owned());
    let start = Instant::now();
    for _ in 0..n {
        c.persist(1, journal).await?;
    }
    Ok(start.elapsed())
}

async fn runtime_persists(
    provider: impl dactor_persist::StorageProvider,
    id: &str,
    n: usize,
    one_ask_each: bool,
) -> Result<Duration> {
    let runtime = Runtime::builder().storage(provider).build();
    let counter = runtime
        .spawn_event_sourced(Counter::new(id.to_owned()))
        .await?;
    counter.ready().await?;
    let start = Instant::now();
    if one_ask_each {
        for _ in 0..n {
            counter.ask(Add(1)).await??;
        }
    } else {
        counter.ask(AddMany(n)).await??;
    }
    let elapsed = start.elapsed();
    runtime.shutdown().await;
    Ok(elapsed)
}

fn per_op_ns(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn row(name: &str, value: f64, unit: &str, baseline: Option<(f64, &str)>) {
    match baseline {
        Some((b, what)) => println!(
            "| {name} | {value:.0} {unit} | {b:.0} {unit} ({what}) | {:.2}x |",
            value / b
        ),
        None => println!("| {name} | {value:.0} {unit} | | |"),
    }
}

async fn bench(runs: usize, sizes: Sizes) -> Result<()> {
    println!("runs per figure: {runs} (medians)\n");
    println!("| measurement | dactor-persist | baseline (same run) | ratio |");
    println!("|---|---|---|---|");

    // 1. ask round trip vs bare mpsc + oneshot.
    let (mut bare, mut ask) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        bare.push(per_op_ns(
            bare_round_trips(sizes.round_trips).await,
            sizes.round_trips,
        ));
        ask.push(per_op_ns(
            ask_round_trips(sizes.round_trips).await?,
            sizes.round_trips,
        ));
    }
    row(
        "ask round trip, handler without persistence (multi-thread runtime)",
        median(ask),
        "ns",
        Some((median(bare), "tokio mpsc + oneshot")),
    );

    // 2. 10,000 actors spawned and recovered (10 events each).
    let store = Arc::new(InMemoryStorage::new());
    for i in 0..sizes.spawned {
        let pid = PersistenceId::new("Counter", &format!("a{i}"));
        let one = 1i64.to_le_bytes();
        let batch: Vec<(SequenceId, &str, &[u8])> = (1..=sizes.events_each)
            .map(|s| (SequenceId(s), "Added", &one[..]))
            .collect();
        store.write_event_batch(&pid, &batch).await?;
    }
    let mut spawn = Vec::new();
    for _ in 0..runs {
        spawn.push(spawn_and_recover(store.clone(), sizes).await?.as_secs_f64() * 1000.0);
    }
    row(
        &format!(
            "{} actors spawned + recovered ({} events each, in memory)",
            sizes.spawned, sizes.events_each
        ),
        median(spawn),
        "ms",
        None,
    );

    // 3. persisting through the runtime vs EventSourced::persist directly,
    // both on a worker thread of the same runtime, in alternating order.
    let (mut direct, mut inside, mut asks) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let store = Arc::new(InMemoryStorage::new());
        let provider = InMemoryStorageProvider::from_storage(store.clone());
        let measure_direct = async {
            let store = store.clone();
            let id = format!("d{run}");
            tokio::spawn(async move {
                direct_persists(&*store, &id, sizes.memory_persists)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?
            .map_err(|e| -> Box<dyn Error> { e.into() })
        };
        let inside_id = format!("h{run}");
        let measure_inside =
            runtime_persists(provider.clone(), &inside_id, sizes.memory_persists, false);
        let (d, i) = if run % 2 == 0 {
            let d = measure_direct.await?;
            (d, measure_inside.await?)
        } else {
            let i = measure_inside.await?;
            (measure_direct.await?, i)
        };
        direct.push(per_op_ns(d, sizes.memory_persists));
        inside.push(per_op_ns(i, sizes.memory_persists));
        asks.push(per_op_ns(
            runtime_persists(
                provider,
                &format!("a{run}"),
                sizes.memory_persists / 4,
                true,
            )
            .await?,
            sizes.memory_persists / 4,
        ));
    }
    let d = median(direct);
    row(
        "in memory: ctx.persist in a handler",
        median(inside),
        "ns",
        Some((d, "EventSourced::persist")),
    );
    row(
        "in memory: one ask + ctx.persist per event",
        median(asks),
        "ns",
        Some((d, "EventSourced::persist")),
    );

    let dir = tempfile::tempdir_in(".")?;
    let (mut direct, mut inside, mut asks) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let store = Arc::new(SqliteStorage::open(dir.path().join(format!("rt{run}.db"))).await?);
        direct.push(
            per_op_ns(
                direct_persists(&*store, "d", sizes.sqlite_persists).await?,
                sizes.sqlite_persists,
            ) / 1000.0,
        );
        let provider = SqliteStorageProvider::from_storage(store.clone());
        inside.push(
            per_op_ns(
                runtime_persists(provider.clone(), "h", sizes.sqlite_persists, false).await?,
                sizes.sqlite_persists,
            ) / 1000.0,
        );
        asks.push(
            per_op_ns(
                runtime_persists(provider, "a", sizes.sqlite_persists, true).await?,
                sizes.sqlite_persists,
            ) / 1000.0,
        );
        store.close().await;
    }
    let d = median(direct);
    row(
        "SQLite (durable): ctx.persist in a handler",
        median(inside),
        "µs",
        Some((d, "EventSourced::persist")),
    );
    row(
        "SQLite (durable): one ask + ctx.persist per event",
        median(asks),
        "µs",
        Some((d, "EventSourced::persist")),
    );
    Ok(())
}

/// The same round-trip comparison on a current-thread runtime, where no
/// cross-thread wake-up blurs the per-message cost.
fn round_trips_current_thread(runs: usize, sizes: Sizes) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut bare, mut ask) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        bare.push(per_op_ns(
            rt.block_on(bare_round_trips(sizes.round_trips)),
            sizes.round_trips,
        ));
        ask.push(per_op_ns(
            rt.block_on(ask_round_trips(sizes.round_trips))?,
            sizes.round_trips,
        ));
    }
    row(
        "ask round trip, handler without persistence (current-thread runtime)",
        median(ask),
        "ns",
        Some((median(bare), "tokio mpsc + oneshot")),
    );
    Ok(())
}

fn main() -> Result<()> {
    let (runs, sizes) = dactor_persist_benches::runs_and_sizes(FULL, QUICK, 5)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(runs, sizes))?;
    round_trips_current_thread(runs, sizes)
}
