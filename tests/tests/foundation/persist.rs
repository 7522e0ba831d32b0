//! `persist`, `persist_batch`, `snapshot` and `save_state`: write first, then apply.

use std::sync::atomic::Ordering;

use dactor_persist::*;

use super::common::{Counter, Flaky, Settings, enc, pid};

#[tokio::test]
async fn persist_writes_at_the_next_sequence_then_applies() {
    let store = InMemoryStorage::new();
    let mut c = Counter::new("1");
    assert_eq!(c.persist(10, &store).await.unwrap(), SequenceId(1));
    assert_eq!((c.value, c.seq), (10, SequenceId(1)));
    assert_eq!(c.persist(-3, &store).await.unwrap(), SequenceId(2));
    assert_eq!((c.value, c.seq), (7, SequenceId(2)));
    let events = store.read_events(&pid("1"), SequenceId(1)).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].payload, enc(-3));
    assert_eq!(
        events[1].event_type, "Delta",
        "the actor's event_type is stored"
    );
}

#[tokio::test]
async fn a_failed_persist_leaves_state_and_sequence_unchanged() {
    let store = Flaky::failing(0);
    let mut c = Counter::new("1");
    c.persist(5, &*store).await.unwrap();
    store.failures_left.store(1, Ordering::SeqCst);
    let err = c.persist(100, &*store).await.unwrap_err();
    assert!(matches!(err, PersistError::StorageUnavailable(_)));
    assert_eq!((c.value, c.seq), (5, SequenceId(1)));
    // The next try writes at the same sequence, which is still free.
    assert_eq!(c.persist(1, &*store).await.unwrap(), SequenceId(2));
}

#[tokio::test]
async fn a_conflicting_persist_is_refused_and_not_applied() {
    let store = InMemoryStorage::new();
    store
        .write_event(&pid("1"), SequenceId(1), "Delta", &enc(42))
        .await
        .unwrap();
    let mut stale = Counter::new("1");
    let err = stale.persist(7, &store).await.unwrap_err();
    assert!(matches!(
        err,
        PersistError::SequenceConflict {
            sequence_id: SequenceId(1),
            ..
        }
    ));
    assert_eq!((stale.value, stale.seq), (0, SequenceId(0)));
    assert_eq!(
        store.read_events(&pid("1"), SequenceId(1)).await.unwrap()[0].payload,
        enc(42)
    );
}

#[tokio::test]
async fn persist_batch_writes_atomically_then_applies_in_order() {
    let store = InMemoryStorage::new();
    let mut c = Counter::new("b");
    c.persist(1, &store).await.unwrap();
    assert_eq!(
        c.persist_batch(vec![5, 3, 2], &store).await.unwrap(),
        SequenceId(4)
    );
    assert_eq!((c.value, c.seq), (11, SequenceId(4)));
    let events = store.read_events(&pid("b"), SequenceId(2)).await.unwrap();
    let payloads: Vec<_> = events.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(payloads, vec![enc(5), enc(3), enc(2)]);
}

#[tokio::test]
async fn an_empty_batch_writes_nothing_and_returns_the_current_sequence() {
    let store = Flaky::failing(0);
    let mut c = Counter::new("e");
    c.persist(1, &*store).await.unwrap();
    let calls = store.calls.load(Ordering::SeqCst);
    assert_eq!(
        c.persist_batch(vec![], &*store).await.unwrap(),
        SequenceId(1)
    );
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        calls,
        "no store call for an empty batch"
    );
}

#[tokio::test]
async fn a_failed_batch_applies_nothing() {
    let store = Flaky::failing(1);
    let mut c = Counter::new("f");
    assert!(c.persist_batch(vec![1, 2, 3], &*store).await.is_err());
    assert_eq!((c.value, c.seq), (0, SequenceId(0)));
    assert_eq!(
        store.inner.read_highest_sequence(&pid("f")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn snapshot_saves_the_payload_at_the_current_sequence() {
    let store = InMemoryStorage::new();
    let mut c = Counter::new("s");
    c.persist_batch(vec![40, 2], &store).await.unwrap();
    c.snapshot(&store).await.unwrap();
    let snap = store
        .load_latest_snapshot(&pid("s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.sequence_id, SequenceId(2));
    assert_eq!(snap.payload, enc(42));
}

#[tokio::test]
async fn save_state_stores_the_serialized_state() {
    let store = InMemoryStorage::new();
    let mut s = Settings::new("x");
    s.data = "hello".into();
    DurableState::save_state(&s, &store).await.unwrap();
    assert_eq!(
        store
            .load_state(&PersistenceId::new("Settings", "x"))
            .await
            .unwrap(),
        Some(b"hello".to_vec())
    );
    assert!(s.save_config().is_none());
}
