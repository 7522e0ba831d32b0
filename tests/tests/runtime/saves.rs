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

/// Issue 13: the reply to the message that completes `every_n_messages` goes
/// out once the save it made due is durable, never before.
#[tokio::test]
async fn the_reply_that_completes_the_count_waits_for_its_save() {
    let (store, runtime) = failing_runtime();
    let config = SaveConfig {
        every_n_messages: Some(3),
        interval: None,
    };
    let s = runtime
        .spawn_durable_state(settings("r", Some(config)))
        .await
        .unwrap();
    s.ask(Set("a", "1")).await.unwrap();
    s.ask(Set("b", "2")).await.unwrap();
    // A slow save: a reply sent before it would arrive first.
    store
        .only(&[Op::SaveState])
        .delay(Some(Duration::from_millis(150)));
    s.ask(Set("c", "3")).await.unwrap();
    // The answer came: what it reflects is already stored (a crash now
    // would recover all three).
    assert_eq!(stored(store.inner(), "r").await, 3);
}

#[tokio::test]
async fn a_failed_save_answers_the_reply_it_held_with_the_error() {
    let (store, runtime) = failing_runtime();
    let mut actor = settings(
        "x",
        Some(SaveConfig {
            every_n_messages: Some(1),
            interval: None,
        }),
    );
    actor.policy = PersistFailurePolicy::ReturnError;
    let s = runtime.spawn_durable_state(actor).await.unwrap();
    store.only(&[Op::SaveState]).fail_next(1);
    let err = s.ask(Set("a", "1")).await.unwrap_err();
    assert!(matches!(err, PersistError::StorageUnavailable(_)), "{err}");
    // The actor carries on; the next message's save stores both changes.
    s.ask(Set("b", "2")).await.unwrap();
    assert_eq!(stored(store.inner(), "x").await, 2);
}

/// Issue 13: read-only messages count toward `every_n_messages`, but a
/// state that did not change is not written again.
#[tokio::test]
async fn an_unchanged_state_is_not_saved() {
    let (store, runtime) = failing_runtime();
    let config = SaveConfig {
        every_n_messages: Some(1),
        interval: None,
    };
    let s = runtime
        .spawn_durable_state(settings("u", Some(config.clone())))
        .await
        .unwrap();
    for _ in 0..5 {
        s.ask(Entries).await.unwrap();
    }
    assert_eq!(store.calls(Op::SaveState), 0, "five reads, no commit");
    s.ask(Set("a", "1")).await.unwrap();
    assert_eq!(store.calls(Op::SaveState), 1);
    s.ask(Entries).await.unwrap();
    s.ask(Entries).await.unwrap();
    s.stop().await;
    assert_eq!(store.calls(Op::SaveState), 1, "nothing changed after it");

    // Recovered, an untouched actor does not rewrite what it read.
    let again = runtime
        .spawn_durable_state(settings("u", Some(config)))
        .await
        .unwrap();
    again.ask(Entries).await.unwrap();
    again.stop().await;
    assert_eq!(store.calls(Op::SaveState), 1);
    assert_eq!(stored(store.inner(), "u").await, 1);
}
