//! Point 5: every field of `SaveConfig`, saves on graceful stop and on demand.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::testkit::Op;

use super::actors::*;

fn settings(id: &str, save: Option<SaveConfig>) -> Settings {
    let mut s = Settings::create(id.to_owned(), ());
    s.save = save;
    s
}

async fn stored(store: &InMemoryStorage, id: &str) -> usize {
    match store
        .load_state(&PersistenceId::new("Settings", id))
        .await
        .unwrap()
    {
        Some(p) => postcard::from_bytes::<Vec<(String, String)>>(&p)
            .unwrap()
            .len(),
        None => 0,
    }
}

#[tokio::test]
async fn every_n_messages_saves_after_each_nth_message() {
    let (store, runtime) = failing_runtime();
    let config = SaveConfig {
        every_n_messages: Some(3),
        interval: None,
    };
    let s = runtime
        .spawn_durable_state(settings("n", Some(config)))
        .await
        .unwrap();
    s.ask(Set("a", "1")).await.unwrap();
    s.ask(Set("b", "2")).await.unwrap();
    assert_eq!(store.calls(Op::SaveState), 0);
    s.ask(Set("c", "3")).await.unwrap();
    assert_eq!(store.calls(Op::SaveState), 1);
    assert_eq!(stored(store.inner(), "n").await, 3);
}

#[tokio::test(start_paused = true)]
async fn interval_saves_only_after_changes() {
    let (store, runtime) = failing_runtime();
    let config = SaveConfig {
        every_n_messages: None,
        interval: Some(Duration::from_secs(5)),
    };
    let s = runtime
        .spawn_durable_state(settings("i", Some(config)))
        .await
        .unwrap();
    s.ready().await.unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(store.calls(Op::SaveState), 0);
    s.ask(Set("a", "1")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(store.calls(Op::SaveState), 1);
    assert_eq!(stored(store.inner(), "i").await, 1);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(store.calls(Op::SaveState), 1);
}

#[tokio::test]
async fn a_graceful_stop_always_saves() {
    let (store, runtime) = failing_runtime();
    let s = runtime
        .spawn_durable_state(settings("g", None))
        .await
        .unwrap();
    s.tell(Set("a", "1")).await.unwrap();
    s.tell(Set("b", "2")).await.unwrap();
    s.stop().await;
    assert_eq!(
        stored(store.inner(), "g").await,
        2,
        "the queued messages were handled, then saved"
    );
    // And recovery brings it back.
    let again = runtime
        .spawn_durable_state(settings("g", None))
        .await
        .unwrap();
    assert_eq!(again.ask(Entries).await.unwrap().len(), 2);
}

#[tokio::test]
async fn handlers_can_save_on_demand() {
    let (store, runtime) = failing_runtime();
    let s = runtime
        .spawn_durable_state(settings("d", None))
        .await
        .unwrap();
    s.ask(Set("a", "1")).await.unwrap();
    s.ask(SaveNow).await.unwrap().unwrap();
    assert_eq!(stored(store.inner(), "d").await, 1);
    store.only(&[Op::SaveState]).fail_next(1);
    let mut failing = settings("e", None);
    failing.policy = PersistFailurePolicy::ReturnError;
    let e = runtime.spawn_durable_state(failing).await.unwrap();
    e.ask(Set("a", "1")).await.unwrap();
    assert!(matches!(
        e.ask(SaveNow).await.unwrap(),
        Err(PersistError::StorageUnavailable(_))
    ));
    e.ask(SaveNow).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failed_automatic_save_with_stop_stops_the_actor() {
    let (store, runtime) = failing_runtime();
    store.only(&[Op::SaveState]).fail_always();
    let config = SaveConfig {
        every_n_messages: Some(1),
        interval: None,
    };
    let s = runtime
        .spawn_durable_state(settings("f", Some(config)))
        .await
        .unwrap();
    let _ = s.ask(Set("a", "1")).await;
    let reason = s.stopped().await;
    assert!(reason.contains("a save failed"), "{reason}");
}
