//! Point 3, persisting from handlers under each persist failure policy; a
//! conflict always stops the actor.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::ActorStatus;
use dactor_persist::testkit::Op;

use super::actors::*;

#[tokio::test]
async fn stop_answers_the_ask_in_flight_with_the_error_and_stops() {
    let (store, runtime) = failing_runtime();
    let counter = runtime
        .spawn_event_sourced(Counter::new("s"))
        .await
        .unwrap();
    assert_eq!(counter.ask(Add(1)).await.unwrap().unwrap(), 1);
    store.only(Op::WRITES).fail_next(1);
    let queued_before_failure = {
        let c = counter.clone();
        // Sent after the failing one; it must not be handled.
        (
            counter.ask(Add(2)),
            tokio::spawn(async move { c.ask(Add(3)).await }),
        )
    };
    let err = queued_before_failure.0.await.unwrap_err();
    assert!(
        matches!(err, PersistError::StorageUnavailable(_)),
        "{err:?}"
    );
    let later = queued_before_failure.1.await.unwrap().unwrap_err();
    assert!(
        matches!(later, PersistError::ActorStopped { .. }),
        "{later:?}"
    );
    let reason = counter.stopped().await;
    assert!(reason.contains("a write failed"), "{reason}");
    assert_eq!(
        store
            .inner()
            .read_highest_sequence(&pid("s"))
            .await
            .unwrap(),
        Some(SequenceId(1))
    );
}

#[tokio::test]
async fn return_error_hands_the_error_to_the_handler_and_carries_on() {
    let (store, runtime) = failing_runtime();
    let mut c = Counter::new("r");
    c.policy = PersistFailurePolicy::ReturnError;
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    store.only(Op::WRITES).fail_next(1);
    let answer = counter.ask(Add(5)).await.unwrap();
    assert!(matches!(answer, Err(PersistError::StorageUnavailable(_))));
    assert_eq!(
        counter.ask(Add(6)).await.unwrap().unwrap(),
        6,
        "state unchanged by the failed add"
    );
    assert_eq!(
        counter.ask(Get).await.unwrap(),
        (6, SequenceId(1)),
        "the failed write used no sequence"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_retries_the_same_write_with_doubling_backoff() {
    let (store, runtime) = failing_runtime();
    let mut c = Counter::new("t");
    c.policy = PersistFailurePolicy::Retry {
        max_attempts: Some(4),
        initial_delay: SECOND,
    };
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    counter.ready().await.unwrap();
    store.only(Op::WRITES).fail_next(3);
    let started = tokio::time::Instant::now();
    assert_eq!(counter.ask(Add(2)).await.unwrap().unwrap(), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(1 + 2 + 4));
    assert_eq!(store.calls(Op::WriteEvent), 4);
    assert_eq!(counter.status(), ActorStatus::Running);
}

#[tokio::test(start_paused = true)]
async fn retry_stops_the_actor_when_the_tries_run_out() {
    let (store, runtime) = failing_runtime();
    let mut c = Counter::new("u");
    c.policy = PersistFailurePolicy::Retry {
        max_attempts: Some(2),
        initial_delay: SECOND,
    };
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    counter.ready().await.unwrap();
    store.only(Op::WRITES).fail_always();
    assert!(matches!(
        counter.ask(Add(1)).await,
        Err(PersistError::StorageUnavailable(_))
    ));
    assert_eq!(store.calls(Op::WriteEvent), 2);
    assert!(counter.stopped().await.contains("a write failed"));
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_answer_was_lost_is_not_written_twice() {
    let (store, runtime) = failing_runtime();
    let mut c = Counter::new("lost");
    c.policy = PersistFailurePolicy::Retry {
        max_attempts: Some(3),
        initial_delay: SECOND,
    };
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    counter.ready().await.unwrap();
    // The write lands, but its answer is an error: the retry then meets its
    // own event and must count it as done.
    store.only(Op::WRITES).lose_next_answers(1);
    assert_eq!(counter.ask(Add(9)).await.unwrap().unwrap(), 9);
    assert_eq!(counter.ask(Add(1)).await.unwrap().unwrap(), 10);
    let events = store
        .inner()
        .read_events(&pid("lost"), SequenceId(1))
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn a_sequence_conflict_stops_the_actor_whatever_the_policy() {
    for policy in [
        PersistFailurePolicy::ReturnError,
        PersistFailurePolicy::Retry {
            max_attempts: Some(5),
            initial_delay: Duration::from_millis(1),
        },
    ] {
        let (store, runtime) = failing_runtime();
        let mut c = Counter::new("w");
        c.policy = policy.clone();
        let counter = runtime.spawn_event_sourced(c).await.unwrap();
        counter.ready().await.unwrap();
        // Another writer takes sequence 1.
        store
            .inner()
            .write_event(&pid("w"), SequenceId(1), "Added", &1i64.to_le_bytes())
            .await
            .unwrap();
        let err = counter.ask(Add(5)).await.unwrap_err();
        assert!(
            matches!(err, PersistError::SequenceConflict { .. }),
            "{policy:?}: {err:?}"
        );
        assert!(
            counter.stopped().await.contains("sequence conflict"),
            "{policy:?}"
        );
        assert_eq!(
            store.calls(Op::WriteEvent),
            1,
            "{policy:?}: no retry after a conflict"
        );
    }
}
