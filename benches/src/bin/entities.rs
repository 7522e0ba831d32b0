//! The entities benchmark: the memory bound of passivation and the cost of
//! a passivate + recover cycle. Results go to `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin entities
//! cargo run -p dactor-persist-benches --bin entities -- --quick   # small: does it run?
//! ```
//!
//! 1. One message to each of 1,000,000 distinct ids (64 senders at a time)
//!    through `Entities` capped at 10,000 live, on a SQLite file: the
//!    process's resident memory at checkpoints, which must stay flat once
//!    the cap is reached (the same run without a cap, stopped early, shows
//!    the slope it avoids).
//! 2. Two ids, one live at a time, messages alternating: every message
//!    passivates one entity (a graceful stop with its final save) and
//!    recovers the other; against messages to a live entity.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Entities, EntityConfig, Handler, Message, Runtime};
use dactor_persist::{SqliteStorage, SqliteStorageProvider};
use dactor_persist_benches::stats::median;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
struct Sizes {
    ids: usize,
    cap: usize,
    /// Ids sent to without a cap (the slope to compare with).
    uncapped_ids: usize,
    cycles: usize,
}

const FULL: Sizes = Sizes {
    ids: 1_000_000,
    cap: 10_000,
    uncapped_ids: 100_000,
    cycles: 2_000,
};

const QUICK: Sizes = Sizes {
    ids: 20_000,
    cap: 1_000,
    uncapped_ids: 5_000,
    cycles: 100,
};

/// A small durable-state entity: a visit counter.
#[derive(Default, DurableState)]
#[persist(entity = "Page")]
struct Page {
    #[persist(id)]
    id: String,
    visits: u64,
    referrer: String,
}

struct Visit;
impl Message for Visit {
    type Reply = u64;
}

#[async_trait]
impl Handler<Visit> for Page {
    async fn handle(&mut self, _: Visit, _: &mut Context<Self>) -> u64 {
        self.visits += 1;
        self.referrer = "bench".into();
        self.visits
    }
}

fn page(id: &str) -> Page {
    Page {
        id: id.to_owned(),
        ..Default::default()
    }
}

/// A memory figure of this process from `/proc/self/status`, in MiB:
/// `VmRSS` (resident now) or `VmHWM` (the peak resident so far).
fn status_mib(field: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("malformed {field}"))?
        .parse()?;
    Ok(kib / 1024.0)
}

/// The resident set size now, in MiB.
fn rss_mib() -> Result<f64> {
    status_mib("VmRSS:")
}

/// The peak resident set size so far, in MiB: nothing between two
/// checkpoints escapes it.
fn peak_mib() -> Result<f64> {
    status_mib("VmHWM:")
}

/// Sends one `Visit` to each id in `ids`, 64 at a time; calls `checkpoint`
/// after each tenth.
async fn visit_all(
    pages: &Entities<Page>,
    ids: usize,
    mut checkpoint: impl FnMut(usize) -> Result<()>,
) -> Result<f64> {
    const SENDERS: usize = 64;
    let started = Instant::now();
    let step = (ids / 10).max(SENDERS);
    let mut done = 0;
    while done < ids {
        let end = (done + step).min(ids);
        let chunk: Vec<_> = (0..SENDERS)
            .map(|s| {
                let pages = pages.clone();
                tokio::spawn(async move {
                    let mut i = done + s;
                    while i < end {
                        pages.ask(&format!("p{i}"), Visit).await?;
                        i += SENDERS;
                    }
                    Ok::<(), PersistError>(())
                })
            })
            .collect();
        for c in chunk {
            c.await??;
        }
        done = end;
        checkpoint(done)?;
    }
    Ok(ids as f64 / started.elapsed().as_secs_f64())
}

async fn bound(sizes: Sizes, dir: &std::path::Path) -> Result<()> {
    println!(
        "1. one message to each of {} ids, at most {} live (SQLite file)",
        sizes.ids, sizes.cap
    );
    let store = Arc::new(SqliteStorage::open(dir.join("entities.db")).await?);
    let provider = SqliteStorageProvider::from_storage(store.clone());
    let runtime = Runtime::builder().storage(provider).build();
    let pages = runtime.durable_state_entities(EntityConfig::new(page).max_live(sizes.cap));
    let base = rss_mib()?;
    let mut rows = Vec::new();
    let rate = visit_all(&pages, sizes.ids, |done| {
        rows.push((done, rss_mib()?, peak_mib()?, pages.live()));
        Ok(())
    })
    .await?;
    let stats = pages.stats();
    println!(
        "\n| ids sent to | live entities | RSS (MiB) | peak RSS so far (MiB) | RSS above start (MiB) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (done, rss, peak, live) in &rows {
        println!(
            "| {done} | {live} | {rss:.1} | {peak:.1} | {:.1} |",
            rss - base
        );
    }
    // Flat once the cap is reached: the peak at the end against the peak
    // half way through the ids (the cap was reached at 1% of them).
    let peak_at = |share: usize| {
        rows.iter()
            .find(|(done, ..)| *done * 100 >= sizes.ids * share)
            .map_or(0.0, |row| row.2)
    };
    let (half, end) = (peak_at(50), peak_at(100));
    let growth = end / half.max(1.0);
    println!(
        "\n{rate:.0} messages/s; {} spawned, {} passivated; peak RSS {half:.1} MiB half way, \
         {end:.1} MiB at the end: {growth:.3}x over the second {} ids (target: within 1.10x){}",
        stats.spawned,
        stats.passivated,
        sizes.ids / 2,
        match (sizes.ids >= FULL.ids, growth <= 1.10) {
            (false, _) => "",
            (true, true) => ", met",
            (true, false) => ", **not met**",
        }
    );
    runtime.shutdown().await;

    // The slope a cap avoids: the same without one, on fewer ids.
    let runtime = Runtime::builder()
        .storage(SqliteStorageProvider::from_storage(store.clone()))
        .build();
    let uncapped = runtime.durable_state_entities(EntityConfig::new(page));
    let before = rss_mib()?;
    visit_all(&uncapped, sizes.uncapped_ids, |_| Ok(())).await?;
    let grown = rss_mib()? - before;
    println!(
        "without a cap: {} live entities grew RSS by {grown:.1} MiB ({:.2} KiB each)\n",
        uncapped.live(),
        grown * 1024.0 / sizes.uncapped_ids as f64
    );
    runtime.shutdown().await;
    store.close().await;
    Ok(())
}

async fn cycle(sizes: Sizes, runs: usize, dir: &std::path::Path) -> Result<()> {
    println!(
        "2. passivate + recover: two ids, one live, {} alternating messages",
        sizes.cycles
    );
    let mut cycled = Vec::with_capacity(runs);
    let mut live = Vec::with_capacity(runs);
    for run in 0..runs {
        let store = Arc::new(SqliteStorage::open(dir.join(format!("cycle-{run}.db"))).await?);
        let runtime = Runtime::builder()
            .storage(SqliteStorageProvider::from_storage(store.clone()))
            .build();
        let one = runtime.durable_state_entities(EntityConfig::new(page).max_live(1));
        one.ask("a", Visit).await?;
        one.ask("b", Visit).await?;
        let started = Instant::now();
        for i in 0..sizes.cycles {
            let id = if i % 2 == 0 { "a" } else { "b" };
            one.ask(id, Visit).await?;
        }
        cycled.push(started.elapsed().as_secs_f64() * 1e6 / sizes.cycles as f64);

        let both = runtime
            .durable_state_entities(EntityConfig::new(|id: &str| page(&format!("{id}-live"))));
        both.ask("a", Visit).await?;
        both.ask("b", Visit).await?;
        let started = Instant::now();
        for i in 0..sizes.cycles {
            let id = if i % 2 == 0 { "a" } else { "b" };
            both.ask(id, Visit).await?;
        }
        live.push(started.elapsed().as_secs_f64() * 1e6 / sizes.cycles as f64);
        runtime.shutdown().await;
        store.close().await;
    }
    let (c, l) = (median(cycled), median(live));
    println!("\n| measurement | µs per message (median of {runs}) | compared with | ratio |");
    println!("|---|---:|---|---:|");
    println!("| message to a live entity (ask) | {l:.1} |  |  |");
    println!(
        "| message that passivates one entity (stop, final save) and recovers the other (load, restore) | {c:.1} | a live entity | {:.1}x |",
        c / l
    );
    Ok(())
}

fn main() -> Result<()> {
    let (runs, sizes) = dactor_persist_benches::runs_and_sizes(FULL, QUICK, 3)?;
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        bound(sizes, dir.path()).await?;
        cycle(sizes, runs, dir.path()).await
    })
}
