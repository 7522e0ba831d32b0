//! Optional supervision: a panicking handler's actor restarts, recovered
//! from storage, within a restart budget.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::{ActorStatus, Supervision};

use super::actors::*;

fn supervision(max_restarts: u32) -> Supervision {
    Supervision {
        max_restarts,
        backoff: Duration::from_secs(1),
    }
}

#[tokio::test(start_paused = true)]
async fn a_supervised_actor_restarts_from_storage_after_a_panic() {
    let (_store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced_supervised(|| Counter::new("sup"), supervision(2))
        .await
        .unwrap();
    assert_eq!(counter.ask(Add(5)).await.unwrap().unwrap(), 5);
    let queued_after = {
        let c = counter.clone();
        let boom = tokio::spawn(async move { c.ask(Boom).await });
        tokio::task::yield_now().await;
        let c = counter.clone();
        (boom, tokio::spawn(async move { c.ask(Add(1)).await }))
    };
    let err = queued_after.0.await.unwrap().unwrap_err();
    assert_eq!(
        err,
        PersistError::HandlerPanicked {
            persistence_id: pid("sup"),
            detail: "boom".into()
        }
    );
    // The message queued behind the panic reaches the restarted actor, which
    // recovered the persisted 5.
    assert_eq!(queued_after.1.await.unwrap().unwrap().unwrap(), 6);
    assert_eq!(counter.ask(Get).await.unwrap(), (6, SequenceId(2)));
    assert_eq!(counter.status(), ActorStatus::Running);
}

#[tokio::test(start_paused = true)]
async fn restarts_wait_doubling_delays_and_stop_when_the_budget_is_spent() {
    let (_store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced_supervised(|| Counter::new("budget"), supervision(2))
        .await
        .unwrap();
    counter.ready().await.unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..2 {
        assert!(matches!(
            counter.ask(Boom).await,
            Err(PersistError::HandlerPanicked { .. })
        ));
    }
    counter.ready().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1 + 2),
        "waited 1 s, then 2 s"
    );
    // The third panic is one too many: the actor stops.
    let err = counter.ask(Boom).await.unwrap_err();
    assert!(
        matches!(&err, PersistError::ActorStopped { reason, .. } if reason.contains("panicked: boom")),
        "{err:?}"
    );
    assert!(counter.stopped().await.contains("no restarts left"));
    assert_eq!(runtime.actor_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_supervised_durable_state_restarts_from_its_last_save() {
    let (_store, runtime) = failing_runtime();
    let settings = runtime
        .spawn_durable_state_supervised(|| Settings::create("ds".into(), ()), supervision(1))
        .await
        .unwrap();
    settings.ask(Set("kept", "1")).await.unwrap();
    settings.ask(SaveNow).await.unwrap().unwrap();
    settings.ask(Set("lost", "2")).await.unwrap();
    assert!(matches!(
        settings.ask(Boom).await,
        Err(PersistError::HandlerPanicked { .. })
    ));
    let entries = settings.ask(Entries).await.unwrap();
    assert_eq!(
        entries,
        vec![("kept".to_owned(), "1".to_owned())],
        "unsaved changes are gone with the panic"
    );
}
