//! The restart benchmark: how fast a freshly opened SQLite store serves its
//! first recoveries, against the same recoveries once it is warm. Results
//! go to `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin restart -- --runs 5
//! cargo run -p dactor-persist-benches --bin restart -- --quick   # small: does it run?
//! ```
//!
//! 1. One actor of 20,000 events: open the file, recover it (first), recover
//!    it again (second), close; per run, each reported separately.
//! 2. 10,000 actors of 10 events each: open the file, spawn and recover all
//!    of them through the runtime (first), stop them, spawn and recover them
//!    again on the same store (second).
//!
//! The file was just written, so the operating system's page cache is warm
//! in both: the figures isolate what the store itself pays on first use
//! (connections, statements, schema checks), not a cold disk.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dactor_persist::prelude::*;
use dactor_persist::runtime::Runtime;
use dactor_persist::{SqliteStorage, SqliteStorageProvider};
use dactor_persist_benches::stats::median;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
struct Sizes {
    events: i64,
    actors: usize,
    events_each: i64,
}

const FULL: Sizes = Sizes {
    events: 20_000,
    actors: 10_000,
    events_each: 10,
};

const QUICK: Sizes = Sizes {
    events: 500,
    actors: 100,
    events_each: 10,
};

#[derive(Debug, PersistentEvent)]
enum Tick {
    Added(i64),
}

#[derive(Default, EventSourced)]
#[persist(entity = "Acct", event = Tick, apply = Self::on)]
struct Acct {
    #[persist(id)]
    id: String,
    total: i64,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Acct {
    fn new(id: String) -> Self {
        Acct {
            id,
            ..Default::default()
        }
    }
    fn on(&mut self, Tick::Added(n): &Tick) {
        self.total += n;
    }
}

/// Writes `events` events for each of `ids` ids, in batches.
async fn fill(path: &Path, ids: usize, events: i64) -> Result<()> {
    let store = SqliteStorage::open(path).await?;
    for i in 0..ids {
        let mut acct = Acct::new(format!("a{i}"));
        let mut left = events;
        while left > 0 {
            let n = left.min(1_000);
            acct.persist_batch((0..n).map(Tick::Added).collect(), &store)
                .await?;
            left -= n;
        }
    }
    store.close().await;
    Ok(())
}

async fn recover_one(store: &SqliteStorage, events: i64) -> Result<f64> {
    let mut acct = Acct::new("a0".into());
    let started = Instant::now();
    recover_event_sourced(&mut acct, store, store).await?;
    let took = started.elapsed().as_secs_f64();
    if acct.seq != SequenceId(events) {
        return Err(format!("recovered to {:?}, not {events}", acct.seq).into());
    }
    Ok(events as f64 / took)
}

/// Spawns `actors` actors and waits until every one has recovered.
async fn spawn_all(
    runtime: &Runtime,
    actors: usize,
) -> Result<(f64, Vec<dactor_persist::runtime::ActorRef<Acct>>)> {
    let started = Instant::now();
    let mut refs = Vec::with_capacity(actors);
    for i in 0..actors {
        refs.push(
            runtime
                .spawn_event_sourced(Acct::new(format!("a{i}")))
                .await?,
        );
    }
    for r in &refs {
        r.ready().await?;
    }
    Ok((started.elapsed().as_secs_f64() * 1e3, refs))
}

async fn bench(sizes: Sizes, runs: usize, dir: &Path) -> Result<()> {
    let one = dir.join("one.db");
    fill(&one, 1, sizes.events).await?;
    let (mut first, mut second, mut opens) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let store = SqliteStorage::open(&one).await?;
        opens.push(started.elapsed().as_secs_f64() * 1e3);
        first.push(recover_one(&store, sizes.events).await?);
        second.push(recover_one(&store, sizes.events).await?);
        store.close().await;
    }

    let many = dir.join("many.db");
    fill(&many, sizes.actors, sizes.events_each).await?;
    let (mut spawn_first, mut spawn_second) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let store = Arc::new(SqliteStorage::open(&many).await?);
        let runtime = Runtime::builder()
            .storage(SqliteStorageProvider::from_storage(store.clone()))
            .build();
        let (ms, refs) = spawn_all(&runtime, sizes.actors).await?;
        spawn_first.push(ms);
        for r in &refs {
            r.stop().await;
        }
        drop(refs);
        let (ms, _refs) = spawn_all(&runtime, sizes.actors).await?;
        spawn_second.push(ms);
        runtime.shutdown().await;
        store.close().await;
    }

    let (f, s) = (median(first), median(second));
    let (sf, ss) = (median(spawn_first), median(spawn_second));
    println!("SQLite, a file just written (warm page cache), medians of {runs} runs\n");
    println!("| measurement | result | compared with | ratio | target | met |");
    println!("|---|---:|---|---:|---|---|");
    println!(
        "| open the store (file, schema check, connections) | {:.2} ms |  |  |  |  |",
        median(opens)
    );
    println!(
        "| first recovery after open, 1 actor of {} events | {f:.0} events/s | the second recovery | {:.2}x slower | within 1.2x | {} |",
        sizes.events,
        s / f,
        if s / f <= 1.2 { "yes" } else { "**no**" }
    );
    println!("| second recovery, same store | {s:.0} events/s |  |  |  |  |");
    println!(
        "| {} actors of {} events spawned and recovered right after open | {sf:.0} ms | the same again, warm | {:.2}x |  |  |",
        sizes.actors,
        sizes.events_each,
        sf / ss
    );
    println!("| the same again on the warm store | {ss:.0} ms |  |  |  |  |");
    Ok(())
}

fn main() -> Result<()> {
    let (runs, sizes) = dactor_persist_benches::runs_and_sizes(FULL, QUICK, 5)?;
    let dir = tempfile::tempdir()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(sizes, runs, dir.path()))
}
