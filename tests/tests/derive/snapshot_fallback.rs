//! Snapshots are a cache: a snapshot written for another layout of the struct
//! is skipped and the journal replayed; if its events were deleted, the
//! failure goes through the recovery policy.

use dactor_persist::prelude::*;

#[derive(Debug, Clone, PersistentEvent)]
pub enum Event {
    Added(u64),
}

mod v1 {
    use super::Event;
    use dactor_persist::prelude::*;

    #[derive(Default, EventSourced)]
    #[persist(entity = "Tally", event = Event, apply = Self::on)]
    pub struct Tally {
        #[persist(id)]
        pub id: u8,
        pub total: u64,
        #[persist(sequence)]
        pub seq: SequenceId,
    }

    impl Tally {
        fn on(&mut self, Event::Added(n): &Event) {
            self.total += n;
        }
    }
}

mod v2 {
    use super::Event;
    use dactor_persist::prelude::*;

    /// A field was added: v1 snapshots no longer fit.
    #[derive(Default, EventSourced)]
    #[persist(entity = "Tally", event = Event, apply = Self::on, recovery_failure = "skip_and_start")]
    pub struct Tally {
        #[persist(id)]
        pub id: u8,
        pub total: u64,
        pub count: u32,
        #[persist(sequence)]
        pub seq: SequenceId,
    }

    impl Tally {
        fn on(&mut self, Event::Added(n): &Event) {
            self.total += n;
            self.count += 1;
        }
    }

    /// The same layout as v2 but with `Stop`.
    #[derive(Default, EventSourced)]
    #[persist(entity = "Tally", event = Event, apply = Self::on)]
    pub struct StrictTally {
        #[persist(id)]
        pub id: u8,
        pub total: u64,
        pub count: u32,
        #[persist(sequence)]
        pub seq: SequenceId,
    }

    impl StrictTally {
        fn on(&mut self, Event::Added(n): &Event) {
            self.total += n;
            self.count += 1;
        }
    }
}

async fn v1_history(store: &InMemoryStorage) {
    let mut t = v1::Tally {
        id: 1,
        ..Default::default()
    };
    t.persist_batch(
        vec![Event::Added(1), Event::Added(2), Event::Added(3)],
        store,
    )
    .await
    .unwrap();
    t.snapshot(store).await.unwrap();
    t.persist(Event::Added(4), store).await.unwrap();
}

#[tokio::test]
async fn a_snapshot_of_an_older_layout_is_skipped_and_the_journal_replayed() {
    let store = InMemoryStorage::new();
    v1_history(&store).await;
    let mut t = v2::Tally {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut t, &store, &store).await.unwrap();
    // `count` is right only if all four events were replayed.
    assert_eq!((t.total, t.count, t.seq), (10, 4, SequenceId(4)));
}

#[tokio::test]
async fn without_the_covered_events_the_error_goes_through_the_policy() {
    let store = InMemoryStorage::new();
    v1_history(&store).await;
    let pid = PersistenceId::new("Tally", "1");
    store.delete_events_to(&pid, SequenceId(3)).await.unwrap();

    let mut strict = v2::StrictTally {
        id: 1,
        ..Default::default()
    };
    let err = recover_event_sourced(&mut strict, &store, &store)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PersistError::SnapshotIncompatible(_)),
        "{err}"
    );
    assert_eq!((strict.total, strict.seq), (0, SequenceId(0)));

    // SkipAndStart: initial state, but writing continues after the highest stored.
    let mut lenient = v2::Tally {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut lenient, &store, &store)
        .await
        .unwrap();
    assert_eq!((lenient.total, lenient.seq), (0, SequenceId(4)));
    assert_eq!(
        lenient.persist(Event::Added(1), &store).await.unwrap(),
        SequenceId(5)
    );
}

#[test]
fn a_snapshot_restores_only_into_the_same_layout() {
    let t = v1::Tally {
        id: 1,
        total: 9,
        seq: SequenceId(3),
    };
    let payload = t.snapshot_payload().unwrap();
    let mut same = v1::Tally::default();
    same.restore_snapshot(payload.clone()).unwrap();
    assert_eq!(same.total, 9);
    let mut other = v2::Tally {
        total: 77,
        ..Default::default()
    };
    let err = other.restore_snapshot(payload).unwrap_err();
    assert!(matches!(err, PersistError::SnapshotIncompatible(_)));
    assert_eq!(other.total, 77, "a failed restore changes nothing");
}
