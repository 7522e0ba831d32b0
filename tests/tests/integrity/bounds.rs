//! Sequence extremes, in a debug build (overflow checks on): nothing
//! overflows, panics or loops; running out of sequences is a clear error.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message, Runtime};
use dactor_persist::testkit::{Damage, DamagedJournal};
use dactor_persist::{InMemoryStorage, InMemoryStorageProvider, JournalStorage, SnapshotStorage};

use dactor_persist_tests::ledger::{Ledger, LedgerEvent, events, seed};

#[test]
fn sequence_arithmetic_never_overflows() {
    assert_eq!(SequenceId(i64::MAX).next(), SequenceId(i64::MAX));
    assert_eq!(SequenceId(i64::MAX).checked_next(), None);
    assert_eq!(
        SequenceId(i64::MAX - 1).checked_next(),
        Some(SequenceId(i64::MAX))
    );
    assert_eq!(SequenceId::LAST, SequenceId(i64::MAX - 1));
    for (seq, storable) in [
        (i64::MIN, false),
        (-1, false),
        (0, false),
        (1, true),
        (i64::MAX - 1, true),
        (i64::MAX, false),
    ] {
        assert_eq!(SequenceId(seq).is_storable(), storable, "{seq}");
    }
}

#[tokio::test]
async fn persisting_past_the_last_sequence_is_sequence_space_exhausted() {
    let store = InMemoryStorage::new();
    let mut ledger = Ledger {
        seq: SequenceId::LAST,
        ..Ledger::new("full")
    };
    let err = ledger
        .persist(LedgerEvent::Reset, &store)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PersistError::InvalidInput { detail, .. } if detail.contains("sequence space exhausted")),
        "{err}"
    );
    let err = ledger
        .persist_batch(vec![LedgerEvent::Reset], &store)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("sequence space exhausted"),
        "{err}"
    );
    assert_eq!(
        (ledger.count, ledger.seq),
        (0, SequenceId::LAST),
        "nothing applied"
    );
    assert_eq!(
        store
            .read_highest_sequence(&ledger.persistence_id())
            .await
            .unwrap(),
        None
    );
}

struct Add(u64);
impl Message for Add {
    type Reply = Result<SequenceId, PersistError>;
}

#[async_trait]
impl Handler<Add> for Ledger {
    async fn handle(
        &mut self,
        Add(amount): Add,
        ctx: &mut Context<Self>,
    ) -> Result<SequenceId, PersistError> {
        ctx.persist(self, LedgerEvent::Added { amount }).await
    }
}

#[tokio::test]
async fn a_hosted_actor_at_the_last_sequence_stops_with_the_error() {
    let store = std::sync::Arc::new(InMemoryStorage::new());
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::from_storage(store.clone()))
        .build();
    // A snapshot at the last sequence: recovery sets the actor there.
    let full = Ledger {
        count: 3,
        ..Ledger::new("hosted")
    };
    store
        .save_snapshot(
            &full.persistence_id(),
            SequenceId::LAST,
            &full.snapshot_payload().unwrap(),
        )
        .await
        .unwrap();
    let actor = runtime
        .spawn_event_sourced(Ledger::new("hosted"))
        .await
        .unwrap();
    // The write could not be made: under the default policy (Stop) the ask
    // gets the error and the actor stops.
    let err = actor.ask(Add(1)).await.unwrap_err();
    assert!(
        err.to_string().contains("sequence space exhausted"),
        "{err}"
    );
    actor.stopped().await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_event_stored_at_i64_max_or_reported_there_ends_recovery_with_an_error() {
    for damage in [
        Damage::Renumber(SequenceId(5), SequenceId(i64::MAX)),
        Damage::Renumber(SequenceId(5), SequenceId(i64::MIN)),
        Damage::Highest(SequenceId(i64::MAX)),
        Damage::Highest(SequenceId(i64::MAX - 1)),
        Damage::Highest(SequenceId(-1)),
    ] {
        let journal = DamagedJournal::new(InMemoryStorage::new()).page_limit(3);
        seed(&journal, "max", &events(5, 1)).await;
        journal.set_damage(damage.clone());
        let mut ledger = Ledger::new("max");
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            recover_event_sourced(&mut ledger, &journal, &journal),
        )
        .await
        .unwrap_or_else(|_| panic!("{damage:?}: recovery did not end"));
        assert!(
            matches!(result, Err(PersistError::CorruptEntry { .. })),
            "{damage:?}: {result:?}"
        );
        assert_eq!(
            ledger,
            Ledger::new("max"),
            "{damage:?}: the actor was changed"
        );
    }
}

#[tokio::test]
async fn a_stored_snapshot_outside_the_sequence_range_is_not_used() {
    struct Lying(InMemoryStorage, SequenceId);
    #[async_trait]
    impl SnapshotStorage for Lying {
        async fn save_snapshot(
            &self,
            p: &PersistenceId,
            s: SequenceId,
            b: &[u8],
        ) -> Result<(), PersistError> {
            self.0.save_snapshot(p, s, b).await
        }
        async fn load_latest_snapshot(
            &self,
            p: &PersistenceId,
        ) -> Result<Option<dactor_persist::SnapshotEntry>, PersistError> {
            Ok(self.0.load_latest_snapshot(p).await?.map(|mut s| {
                s.sequence_id = self.1;
                s
            }))
        }
        async fn delete_snapshots_before(
            &self,
            p: &PersistenceId,
            s: SequenceId,
        ) -> Result<(), PersistError> {
            self.0.delete_snapshots_before(p, s).await
        }
    }
    for at in [i64::MAX, 0, -5, i64::MIN] {
        let journal = InMemoryStorage::new();
        let evs = events(8, 3);
        seed(&journal, "snap", &evs).await;
        let snapshots = Lying(InMemoryStorage::new(), SequenceId(at));
        Ledger::after("snap", &evs[..4])
            .snapshot(&snapshots.0)
            .await
            .unwrap();
        let mut ledger = Ledger::new("snap");
        recover_event_sourced(&mut ledger, &journal, &snapshots)
            .await
            .unwrap_or_else(|e| panic!("snapshot at {at}: {e}"));
        assert_eq!(
            ledger,
            Ledger::after("snap", &evs),
            "snapshot at {at}: replayed instead"
        );
    }
}
