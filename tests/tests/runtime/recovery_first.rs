//! Point 2, recovery first: early messages wait and are handled in order;
//! a failed recovery follows the policy; a stopped actor answers every ask.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::ActorStatus;
use dactor_persist::testkit::Op;

use super::actors::*;

#[tokio::test(start_paused = true)]
async fn messages_sent_during_recovery_wait_and_keep_their_order() {
    let (store, runtime) = failing_runtime();
    store
        .inner()
        .write_event(&pid("r"), SequenceId(1), "Added", &100i64.to_le_bytes())
        .await
        .unwrap();
    // Recovery reads take 5 s each.
    store.delay(Some(Duration::from_secs(5)));
    let counter = runtime
        .spawn_event_sourced(Counter::new("r"))
        .await
        .unwrap();
    assert_eq!(counter.status(), ActorStatus::Recovering);
    counter.tell(Add(1)).await.unwrap();
    let second = {
        let c = counter.clone();
        tokio::spawn(async move { c.ask(Add(2)).await })
    };
    tokio::task::yield_now().await;
    let third = counter.ask(Get);
    store.heal();
    // Replies are computed on the recovered state, in order: 100 + 1 + 2.
    assert_eq!(third.await.unwrap(), (103, SequenceId(3)));
    assert_eq!(second.await.unwrap().unwrap().unwrap(), 103);
}

#[tokio::test]
async fn a_failed_recovery_with_stop_stops_the_actor_and_answers_every_ask() {
    let (store, runtime) = failing_runtime();
    // A journal with an event, so that recovery reads events (it does not
    // read an empty one).
    store
        .inner()
        .write_event(&pid("x"), SequenceId(1), "Added", &1u64.to_le_bytes())
        .await
        .unwrap();
    store.only(&[Op::ReadEvents]).fail_always();
    let counter = runtime
        .spawn_event_sourced(Counter::new("x"))
        .await
        .unwrap();
    let pending = counter.ask(Get);
    let err = pending.await.unwrap_err();
    match &err {
        PersistError::ActorStopped {
            persistence_id,
            reason,
        } => {
            assert_eq!(persistence_id, &pid("x"));
            assert!(reason.contains("recovery failed"), "{reason}");
            assert!(reason.contains("injected failure"), "{reason}");
        }
        other => panic!("expected ActorStopped, got {other:?}"),
    }
    // Future asks and tells fail at once too.
    assert!(matches!(
        counter.ask(Add(1)).await,
        Err(PersistError::ActorStopped { .. })
    ));
    assert!(matches!(
        counter.tell(Add(1)).await,
        Err(PersistError::ActorStopped { .. })
    ));
    assert!(counter.ready().await.is_err());
    assert!(matches!(counter.status(), ActorStatus::Stopped(_)));
    assert_eq!(store.calls(Op::WriteEvent), 0, "nothing was written");
}

#[tokio::test(start_paused = true)]
async fn a_failed_recovery_with_retry_tries_again() {
    let (store, runtime) = failing_runtime();
    store
        .inner()
        .write_event(&pid("y"), SequenceId(1), "Added", &7i64.to_le_bytes())
        .await
        .unwrap();
    store.only(&[Op::LoadSnapshot]).fail_next(2);
    let mut c = Counter::new("y");
    c.recovery = RecoveryFailurePolicy::Retry {
        max_attempts: Some(3),
        initial_delay: SECOND,
    };
    let started = tokio::time::Instant::now();
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    counter.ready().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3),
        "waited 1 s, then 2 s"
    );
    assert_eq!(counter.ask(Get).await.unwrap(), (7, SequenceId(1)));
}

#[tokio::test]
async fn skip_and_start_starts_empty_and_writes_after_the_highest() {
    let (store, runtime) = failing_runtime();
    store
        .inner()
        .write_event(&pid("z"), SequenceId(1), "Added", b"garbage")
        .await
        .unwrap();
    let mut c = Counter::new("z");
    c.recovery = RecoveryFailurePolicy::SkipAndStart;
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    assert_eq!(counter.ask(Add(5)).await.unwrap().unwrap(), 5);
    assert_eq!(counter.ask(Get).await.unwrap(), (5, SequenceId(2)));
}
