//! Recovery over a journal that answers damaged pages
//! (`testkit::DamagedJournal`): the true state, or an error naming the
//! persistence id and the first sequence out of place; never a wrong state,
//! never a panic, never a loop.

use std::time::Duration;

use dactor_persist::testkit::{Damage, DamagedJournal};
use dactor_persist::*;
use proptest::prelude::*;

use dactor_persist_tests::ledger::{Ledger, events, seed};

/// What one recovery ended as.
#[derive(Debug, PartialEq)]
enum Outcome {
    True,
    Refused(PersistError),
}

/// Recovers `id` from `journal`, within a bound; panics on a wrong state,
/// on partial state left by a refused recovery, and on a loop.
async fn recover(journal: &DamagedJournal<InMemoryStorage>, id: &str, truth: &Ledger) -> Outcome {
    let mut ledger = Ledger::new(id);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        recover_event_sourced(&mut ledger, journal, journal),
    )
    .await
    .expect("recovery did not end within 10 s: a loop over damaged pages");
    match result {
        Ok(()) => {
            assert_eq!(&ledger, truth, "recovery answered Ok with a wrong state");
            Outcome::True
        }
        Err(err) => {
            assert_eq!(
                ledger,
                Ledger::new(id),
                "a refused recovery changed the actor"
            );
            Outcome::Refused(err)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes `n` events for "p" behind `page`-sized pages, then damages them.
async fn journal(n: usize, page: usize) -> (DamagedJournal<InMemoryStorage>, Ledger) {
    let journal = DamagedJournal::new(InMemoryStorage::new()).page_limit(page);
    let evs = events(n, 7);
    seed(&journal, "p", &evs).await;
    (journal, Ledger::after("p", &evs))
}

fn first_wrong(outcome: Outcome) -> (SequenceId, String) {
    match outcome {
        Outcome::Refused(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => (sequence_id, detail),
        other => panic!("expected a corrupt entry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hole_is_refused_naming_the_id_and_the_first_missing_sequence() {
    let (journal, truth) = journal(20, 3).await;
    journal.set_damage(Damage::Hole(SequenceId(8)));
    let (seq, detail) = first_wrong(recover(&journal, "p", &truth).await);
    assert_eq!(seq, SequenceId(8));
    assert!(
        detail.contains("Ledger:p") && detail.contains("missing"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_lost_last_event_is_refused_against_the_highest_sequence() {
    let (journal, truth) = journal(20, 3).await;
    journal.set_damage(Damage::Hole(SequenceId(20)));
    let (seq, _) = first_wrong(recover(&journal, "p", &truth).await);
    assert_eq!(seq, SequenceId(20));
}

#[tokio::test]
async fn repeats_disorder_and_pages_going_backwards_are_refused() {
    for damage in [
        Damage::Repeat(SequenceId(5)),
        Damage::Swap(SequenceId(5)),
        Damage::Renumber(SequenceId(10), SequenceId(1)),
        Damage::BelowStart,
        Damage::Stuck,
    ] {
        let (journal, truth) = journal(20, 4).await;
        journal.set_damage(damage.clone());
        let (seq, detail) = first_wrong(recover(&journal, "p", &truth).await);
        assert!(seq.0 >= 0 && seq.0 <= 20, "{damage:?}: {seq:?} {detail}");
        assert!(detail.contains("Ledger:p"), "{damage:?}: {detail}");
    }
}

#[tokio::test]
async fn an_event_beyond_the_highest_is_refused() {
    let (journal, truth) = journal(20, 4).await;
    journal.set_damage(Damage::BeyondHighest);
    let (seq, detail) = first_wrong(recover(&journal, "p", &truth).await);
    assert_eq!(seq, SequenceId(21), "{detail}");
}

#[tokio::test]
async fn a_highest_sequence_that_disagrees_with_the_events_is_refused() {
    for (highest, first_wrong_at) in [(25, 21), (15, 16)] {
        let (journal, truth) = journal(20, 4).await;
        journal.set_damage(Damage::Highest(SequenceId(highest)));
        let (seq, detail) = first_wrong(recover(&journal, "p", &truth).await);
        assert_eq!(
            seq,
            SequenceId(first_wrong_at),
            "highest {highest}: {detail}"
        );
    }
}

#[tokio::test]
async fn unbounded_pages_are_not_damage() {
    let (journal, truth) = journal(50, 4).await;
    journal.set_damage(Damage::Unbounded);
    assert_eq!(recover(&journal, "p", &truth).await, Outcome::True);
}

fn damage() -> impl Strategy<Value = Damage> {
    let seq = (1i64..70).prop_map(SequenceId);
    prop_oneof![
        Just(Damage::None),
        Just(Damage::Unbounded),
        Just(Damage::BeyondHighest),
        Just(Damage::BelowStart),
        Just(Damage::Stuck),
        seq.clone().prop_map(Damage::Hole),
        seq.clone().prop_map(Damage::Repeat),
        seq.clone().prop_map(Damage::Swap),
        (
            seq.clone(),
            prop_oneof![
                Just(SequenceId(i64::MAX)),
                Just(SequenceId(i64::MIN)),
                Just(SequenceId(0)),
                Just(SequenceId(1)),
                (1i64..80).prop_map(SequenceId),
            ]
        )
            .prop_map(|(at, to)| Damage::Renumber(at, to)),
        prop_oneof![
            Just(SequenceId(i64::MAX)),
            Just(SequenceId(i64::MAX - 1)),
            Just(SequenceId(-1)),
            (0i64..80).prop_map(SequenceId),
        ]
        .prop_map(Damage::Highest),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// For any journal, page size, optional snapshot and damage: the true
    /// state or an error (the actor untouched), never a wrong state, within
    /// a bound. Damage that changes nothing read (a hole past the end, say)
    /// must leave recovery working.
    #[test]
    fn damaged_pages_never_yield_a_wrong_state(
        n in 0usize..60,
        page in 1usize..9,
        snapshot_at in proptest::option::of(1usize..60),
        damage in damage(),
    ) {
        runtime().block_on(async {
            let journal = DamagedJournal::new(InMemoryStorage::new()).page_limit(page);
            let evs = events(n, n as u64);
            seed(&journal, "p", &evs).await;
            if let Some(at) = snapshot_at.filter(|at| *at <= n) {
                let snap = Ledger::after("p", &evs[..at]);
                snap.snapshot(&journal).await.unwrap();
            }
            let truth = Ledger::after("p", &evs);
            journal.set_damage(damage.clone());
            let outcome = recover(&journal, "p", &truth).await;
            if matches!(damage, Damage::None | Damage::Unbounded) {
                prop_assert_eq!(outcome, Outcome::True);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn events_deleted_past_the_snapshot_that_covers_them_are_refused() {
    use dactor_persist_tests::ledger::SnapshottingLedger;
    let store = InMemoryStorage::new();
    let evs = events(20, 1);
    seed(&store, "g", &evs).await;
    let pid = Ledger::new("g").persistence_id();
    store.delete_events_to(&pid, SequenceId(10)).await.unwrap();

    // An actor that deletes events only once a snapshot covers them finds
    // no snapshot: the one that covered them was lost.
    let mut lost = SnapshottingLedger {
        id: "g".into(),
        ..Default::default()
    };
    match recover_event_sourced(&mut lost, &store, &store).await {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => {
            assert_eq!(sequence_id, SequenceId(1));
            assert!(detail.contains("no snapshot"), "{detail}");
        }
        other => panic!("expected a corrupt entry, got {other:?}"),
    }

    // An actor without that setting deleted them on purpose (dactor's
    // semantics): it starts after them.
    let mut plain = Ledger::new("g");
    recover_event_sourced(&mut plain, &store, &store)
        .await
        .unwrap();
    assert_eq!((plain.count, plain.seq), (10, SequenceId(20)));

    // A snapshot older than the deletion leaves a hole after it.
    Ledger::after("g", &evs[..5])
        .snapshot(&store)
        .await
        .unwrap();
    let mut ledger = Ledger::new("g");
    match recover_event_sourced(&mut ledger, &store, &store).await {
        Err(PersistError::CorruptEntry { sequence_id, .. }) => {
            assert_eq!(sequence_id, SequenceId(6))
        }
        other => panic!("expected a corrupt entry at 6, got {other:?}"),
    }
}
