//! Point 6, lifecycle: graceful stop and shutdown drain and save; one live
//! actor per id; a panic takes down only its actor.

use dactor_persist::prelude::*;
use dactor_persist::runtime::ActorStatus;

use super::actors::*;

#[tokio::test]
async fn graceful_stop_handles_everything_already_queued() {
    let (store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced(Counter::new("q"))
        .await
        .unwrap();
    for _ in 0..50 {
        counter.tell(Add(1)).await.unwrap();
    }
    counter.stop().await;
    assert_eq!(
        store
            .inner()
            .read_highest_sequence(&pid("q"))
            .await
            .unwrap(),
        Some(SequenceId(50))
    );
    assert!(matches!(
        counter.ask(Get).await,
        Err(PersistError::ActorStopped { .. })
    ));
    assert_eq!(counter.stopped().await, "stopped");
}

#[tokio::test]
async fn a_handler_can_stop_its_actor() {
    let (_store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced(Counter::new("self"))
        .await
        .unwrap();
    counter.ask(StopYourself).await.unwrap();
    assert_eq!(counter.stopped().await, "stopped");
}

#[tokio::test]
async fn shutdown_stops_every_actor_after_its_queue_and_final_save() {
    let (store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced(Counter::new("a"))
        .await
        .unwrap();
    let settings = runtime
        .spawn_durable_state(Settings::create("b".into(), ()))
        .await
        .unwrap();
    for _ in 0..20 {
        counter.tell(Add(1)).await.unwrap();
        settings.tell(Set("k", "v")).await.unwrap();
    }
    runtime.shutdown().await;
    assert_eq!(runtime.actor_count(), 0);
    assert_eq!(
        store
            .inner()
            .read_highest_sequence(&pid("a"))
            .await
            .unwrap(),
        Some(SequenceId(20))
    );
    let state = store
        .inner()
        .load_state(&PersistenceId::new("Settings", "b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        postcard::from_bytes::<Vec<(String, String)>>(&state)
            .unwrap()
            .len(),
        20
    );
    let err = runtime
        .spawn_event_sourced(Counter::new("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, PersistError::ActorStopped { .. }));
}

#[tokio::test]
async fn one_live_actor_per_persistence_id() {
    let (_store, runtime) = failing_runtime();
    let first = runtime
        .spawn_event_sourced(Counter::new("one"))
        .await
        .unwrap();
    let err = runtime
        .spawn_event_sourced(Counter::new("one"))
        .await
        .unwrap_err();
    assert_eq!(err, PersistError::AlreadyRunning(pid("one")));
    first.ask(Add(3)).await.unwrap().unwrap();
    first.stop().await;
    // Once stopped, the id is free again, and the new actor recovers.
    let second = runtime
        .spawn_event_sourced(Counter::new("one"))
        .await
        .unwrap();
    assert_eq!(second.ask(Get).await.unwrap(), (3, SequenceId(1)));
}

#[tokio::test]
async fn a_panicking_handler_takes_down_only_its_actor() {
    let (_store, runtime) = failing_runtime();
    let victim = runtime
        .spawn_event_sourced(Counter::new("v"))
        .await
        .unwrap();
    let bystander = runtime
        .spawn_event_sourced(Counter::new("b"))
        .await
        .unwrap();
    victim.ask(Add(1)).await.unwrap().unwrap();
    let queued = {
        let v = victim.clone();
        tokio::spawn(async move { v.ask(Get).await })
    };
    let err = victim.ask(Boom).await.unwrap_err();
    match &err {
        PersistError::ActorStopped { reason, .. } => {
            assert!(reason.contains("panicked: boom"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        queued.await.unwrap(),
        Err(PersistError::ActorStopped { .. })
    ));
    assert!(matches!(victim.status(), ActorStatus::Stopped(_)));
    assert_eq!(bystander.ask(Add(2)).await.unwrap().unwrap(), 2);
    // The runtime still spawns, and the victim's id can be recovered.
    let again = runtime
        .spawn_event_sourced(Counter::new("v"))
        .await
        .unwrap();
    assert_eq!(again.ask(Get).await.unwrap(), (1, SequenceId(1)));
}

#[tokio::test]
async fn dropping_every_handle_stops_the_actor_gracefully() {
    let (store, runtime) = failing_runtime();
    let s = runtime
        .spawn_durable_state(Settings::create("drop".into(), ()))
        .await
        .unwrap();
    s.tell(Set("a", "1")).await.unwrap();
    drop(s);
    // The actor stops on its own and saves; wait for the registry to empty.
    for _ in 0..1000 {
        if runtime.actor_count() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(runtime.actor_count(), 0);
    assert!(
        store
            .inner()
            .load_state(&PersistenceId::new("Settings", "drop"))
            .await
            .unwrap()
            .is_some()
    );
}
