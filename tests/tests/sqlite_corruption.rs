//! Seeded corruption of a SQLite file: bytes flipped in its header, in
//! middle pages and in its last pages, trial after trial. For every trial
//! and every actor, recovery yields the true state or an error: never a
//! wrong state, never a panic, never longer than a fixed bound. `verify`
//! runs on every damaged file too, under the same rules.
//!
//! Run with `--nocapture` to see the outcome counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dactor_persist::SqliteStorage;
use dactor_persist::prelude::*;
use dactor_persist_tests::ledger::{Ledger, SnapshottingLedger, events, seed};

const IDS: usize = 100;
const EVENTS: usize = 100;
/// Ids from here on snapshot at 60 and delete the events it covers.
const SNAPSHOTTING_FROM: usize = 70;
const PROFILES: usize = 20;
const TRIALS_PER_REGION: u64 = 12;
const BOUND: Duration = Duration::from_secs(20);

#[derive(Debug, Default, Clone, PartialEq, DurableState)]
#[persist(entity = "Profile")]
struct Profile {
    #[persist(id)]
    id: String,
    name: String,
    logins: u64,
}

fn profile(i: usize) -> Profile {
    Profile {
        id: format!("u{i}"),
        name: format!("user number {i}"),
        logins: i as u64 * 7,
    }
}

fn ledger_id(i: usize) -> String {
    format!("l{i:03}")
}

/// splitmix64: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

async fn pristine(path: &Path) {
    let store = SqliteStorage::open(path).await.unwrap();
    for i in 0..IDS {
        let evs = events(EVENTS, i as u64);
        if i < SNAPSHOTTING_FROM {
            seed(&store, &ledger_id(i), &evs).await;
        } else {
            let mut ledger = SnapshottingLedger {
                id: ledger_id(i),
                ..Default::default()
            };
            for (n, event) in evs.iter().enumerate() {
                ledger.persist(event.clone(), &store).await.unwrap();
                if n + 1 == 60 {
                    ledger.snapshot(&store).await.unwrap();
                    store
                        .delete_events_to(&ledger.persistence_id(), SequenceId(60))
                        .await
                        .unwrap();
                }
            }
        }
    }
    for i in 0..PROFILES {
        profile(i).save_state(&store).await.unwrap();
    }
    store.close().await;
    let wal = path.with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the closed store left a WAL file"
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    TrueState,
    Refused,
    RefusedAtOpen,
    WrongState,
    Panicked,
    TimedOut,
}

/// Recovers ledger `i` in its own task, to catch a panic, within the bound.
async fn recover_ledger(store: Arc<SqliteStorage>, i: usize) -> Outcome {
    let truth = Ledger::after(&ledger_id(i), &events(EVENTS, i as u64));
    let task = tokio::spawn(async move {
        if i < SNAPSHOTTING_FROM {
            let mut ledger = Ledger::new(&ledger_id(i));
            recover_event_sourced(&mut ledger, &*store, &*store)
                .await
                .map(|()| (ledger.count, ledger.digest, ledger.seq))
        } else {
            let mut ledger = SnapshottingLedger {
                id: ledger_id(i),
                ..Default::default()
            };
            recover_event_sourced(&mut ledger, &*store, &*store)
                .await
                .map(|()| (ledger.count, ledger.digest, ledger.seq))
        }
    });
    match tokio::time::timeout(BOUND, task).await {
        Err(_) => Outcome::TimedOut,
        Ok(Err(_panic)) => Outcome::Panicked,
        Ok(Ok(Err(_))) => Outcome::Refused,
        Ok(Ok(Ok(state))) if state == (truth.count, truth.digest, truth.seq) => Outcome::TrueState,
        Ok(Ok(Ok(state))) => {
            eprintln!(
                "WRONG STATE for {}: {state:?}, truth {truth:?}",
                ledger_id(i)
            );
            Outcome::WrongState
        }
    }
}

async fn recover_profile(store: Arc<SqliteStorage>, i: usize) -> Outcome {
    let task = tokio::spawn(async move {
        let mut p = Profile {
            id: format!("u{i}"),
            ..Default::default()
        };
        recover_durable_state(&mut p, &*store).await.map(|()| p)
    });
    match tokio::time::timeout(BOUND, task).await {
        Err(_) => Outcome::TimedOut,
        Ok(Err(_)) => Outcome::Panicked,
        Ok(Ok(Err(_))) => Outcome::Refused,
        Ok(Ok(Ok(p))) if p == profile(i) => Outcome::TrueState,
        Ok(Ok(Ok(p))) => {
            eprintln!("WRONG STATE for profile {i}: {p:?}");
            Outcome::WrongState
        }
    }
}

#[derive(Default)]
struct Tally {
    actors: BTreeMap<Outcome, u64>,
    trials: u64,
    trials_with_a_refusal: u64,
    verify_flagged: u64,
    verify_failed: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_never_yield_a_wrong_state() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.db");
    pristine(&clean).await;
    let bytes = std::fs::read(&clean).unwrap();
    let page = 4096u64;
    let pages = bytes.len() as u64 / page;
    assert!(pages > 40, "the file has {pages} pages");

    let mut rng = Rng(0x5EED_DAC7_0900_0001);
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for region in ["header", "middle", "last pages"] {
        for trial in 0..TRIALS_PER_REGION {
            let mut damaged = bytes.clone();
            let (first, span) = match region {
                // Page 1: the file header and the schema.
                "header" => (0, page),
                "middle" => (pages / 4 * page, pages / 2 * page),
                _ => ((pages - 3) * page, 3 * page),
            };
            let flips = 1 + rng.below(16);
            for _ in 0..flips {
                let at = (first + rng.below(span)) as usize;
                damaged[at] ^= 1 + rng.below(255) as u8;
            }
            let path = dir
                .path()
                .join(format!("{region}-{trial}.db").replace(' ', "-"));
            std::fs::write(&path, &damaged).unwrap();

            let tally = tallies.entry(region).or_default();
            tally.trials += 1;
            let opened = tokio::time::timeout(BOUND, SqliteStorage::open(&path)).await;
            let store = match opened {
                Err(_) => panic!("{region} trial {trial}: opening did not end"),
                Ok(Err(_)) => {
                    *tally.actors.entry(Outcome::RefusedAtOpen).or_default() +=
                        (IDS + PROFILES) as u64;
                    tally.trials_with_a_refusal += 1;
                    continue;
                }
                Ok(Ok(store)) => Arc::new(store),
            };
            let mut refused = false;
            for i in 0..IDS {
                let outcome = recover_ledger(store.clone(), i).await;
                refused |= outcome == Outcome::Refused;
                *tally.actors.entry(outcome).or_default() += 1;
            }
            for i in 0..PROFILES {
                let outcome = recover_profile(store.clone(), i).await;
                refused |= outcome == Outcome::Refused;
                *tally.actors.entry(outcome).or_default() += 1;
            }
            tally.trials_with_a_refusal += u64::from(refused);
            let verify = {
                let store = store.clone();
                tokio::time::timeout(BOUND, tokio::spawn(async move { store.verify().await })).await
            };
            match verify {
                Err(_) => panic!("{region} trial {trial}: verify did not end"),
                Ok(Err(panic)) => panic!("{region} trial {trial}: verify panicked: {panic}"),
                Ok(Ok(Ok(report))) => tally.verify_flagged += u64::from(!report.is_intact()),
                Ok(Ok(Err(_))) => tally.verify_failed += 1,
            }
            store.close().await;
        }
    }

    println!(
        "seeded corruption of a SQLite file of {IDS} ids x {EVENTS} events and {PROFILES} states:"
    );
    println!(
        "{:<11} {:>6} {:>10} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9} {:>10}",
        "region",
        "trials",
        "true",
        "refused",
        "at open",
        "wrong",
        "panics",
        "timeouts",
        "verify!",
        "refusing"
    );
    let mut wrong = 0;
    for (region, t) in &tallies {
        let n = |o: Outcome| t.actors.get(&o).copied().unwrap_or(0);
        wrong += n(Outcome::WrongState) + n(Outcome::Panicked) + n(Outcome::TimedOut);
        println!(
            "{region:<11} {:>6} {:>10} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9} {:>10}",
            t.trials,
            n(Outcome::TrueState),
            n(Outcome::Refused),
            n(Outcome::RefusedAtOpen),
            n(Outcome::WrongState),
            n(Outcome::Panicked),
            n(Outcome::TimedOut),
            t.verify_flagged,
            t.trials_with_a_refusal,
        );
    }
    assert_eq!(wrong, 0, "wrong states, panics or timeouts (see above)");
    // The damage must have been seen somewhere, or the test damaged nothing.
    let refusals: u64 = tallies.values().map(|t| t.trials_with_a_refusal).sum();
    assert!(
        refusals > 0,
        "no trial was refused: the flips changed nothing read"
    );
}
