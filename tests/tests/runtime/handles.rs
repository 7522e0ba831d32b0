//! Point 1, runtime and handles: spawn checks its stores, tell/ask for
//! every message type, bounded mailboxes with backpressure.

use std::sync::Arc;
use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::{ActorStatus, Runtime};
use tokio::sync::Semaphore;

use super::actors::*;

#[tokio::test]
async fn spawning_without_a_provider_fails_at_spawn() {
    let runtime = Runtime::builder().build();
    let err = runtime
        .spawn_event_sourced(Counter::new("a"))
        .await
        .unwrap_err();
    assert_eq!(err, PersistError::NotConfigured);
    let err = runtime
        .spawn_durable_state(Settings::create("s".into(), ()))
        .await
        .unwrap_err();
    assert_eq!(err, PersistError::NotConfigured);
    assert_eq!(runtime.actor_count(), 0);
}

/// A provider with a journal but no snapshot or state store.
struct JournalOnly(Arc<InMemoryStorage>);

impl StorageProvider for JournalOnly {
    fn journal(&self, _: &PersistenceId) -> Option<Arc<dyn JournalStorage>> {
        Some(self.0.clone())
    }
    fn snapshots(&self, _: &PersistenceId) -> Option<Arc<dyn SnapshotStorage>> {
        None
    }
    fn state(&self, _: &PersistenceId) -> Option<Arc<dyn StateStorage>> {
        None
    }
}

#[tokio::test]
async fn a_provider_missing_a_store_fails_at_spawn() {
    let runtime = Runtime::builder()
        .storage(JournalOnly(Arc::new(InMemoryStorage::new())))
        .build();
    assert_eq!(
        runtime
            .spawn_event_sourced(Counter::new("a"))
            .await
            .unwrap_err(),
        PersistError::NotConfigured
    );
    assert_eq!(
        runtime
            .spawn_durable_state(Settings::create("s".into(), ()))
            .await
            .unwrap_err(),
        PersistError::NotConfigured
    );
}

#[tokio::test]
async fn tell_and_ask_reach_every_handler_in_order() {
    let (store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced(Counter::new("c"))
        .await
        .unwrap();
    counter.tell(Add(1)).await.unwrap();
    counter.tell(Add(2)).await.unwrap();
    assert_eq!(
        counter.ask(AddAll(vec![3, 4])).await.unwrap().unwrap(),
        SequenceId(4)
    );
    assert_eq!(counter.ask(Add(10)).await.unwrap().unwrap(), 20);
    assert_eq!(counter.ask(Get).await.unwrap(), (20, SequenceId(5)));
    let clone = counter.clone();
    assert_eq!(
        clone.ask(Get).await.unwrap().0,
        20,
        "clones reach the same actor"
    );
    assert_eq!(counter.status(), ActorStatus::Running);
    assert_eq!(counter.persistence_id(), &pid("c"));
    let stored = store
        .inner()
        .read_events(&pid("c"), SequenceId(1))
        .await
        .unwrap();
    assert_eq!(stored.len(), 5);
}

#[tokio::test]
async fn a_full_mailbox_pushes_back() {
    let store = Arc::new(InMemoryStorage::new());
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::from_storage(store))
        .mailbox_capacity(2)
        .build();
    let gate = Arc::new(Semaphore::new(0));
    let mut c = Counter::new("bp");
    c.gate = Some(gate.clone());
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    counter.ready().await.unwrap();
    // Message 1 is taken by the handler, which then waits at the gate.
    counter.tell(Add(1)).await.unwrap();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    // The mailbox holds two more, then refuses.
    counter.try_tell(Add(1)).unwrap();
    counter.try_tell(Add(1)).unwrap();
    assert_eq!(
        counter.try_tell(Add(1)).unwrap_err(),
        PersistError::MailboxFull(pid("bp"))
    );
    let blocked = tokio::time::timeout(Duration::from_millis(50), counter.tell(Add(1))).await;
    assert!(blocked.is_err(), "tell waits while the mailbox is full");
    // One message handled: room for one.
    gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(5), counter.tell(Add(1)))
        .await
        .expect("room once the handler moved on")
        .unwrap();
    gate.add_permits(10);
    assert_eq!(counter.ask(Get).await.unwrap(), (4, SequenceId(4)));
}

#[test]
fn spawning_outside_tokio_is_an_error_not_a_panic() {
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::new())
        .build();
    // A minimal executor that is not tokio: the spawn future completes at once.
    let mut fut = std::pin::pin!(runtime.spawn_event_sourced(Counter::new("nt")));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(result) = fut.as_mut().poll(&mut cx) else {
        panic!("spawn does not wait");
    };
    let err = result.unwrap_err();
    assert!(
        matches!(&err, PersistError::InvalidInput { detail, .. } if detail.contains("tokio")),
        "{err:?}"
    );
    assert_eq!(runtime.actor_count(), 0);
}
