//! The projection part of the conformance suite: what a store keeps for
//! projections ([`ProjectionStore`]), and a projection run against it,
//! checked against any store.
//!
//! ```
//! use std::sync::Arc;
//! use dactor_persist::InMemoryStorage;
//!
//! dactor_persist::projection_conformance_tests!(|| async { Arc::new(InMemoryStorage::new()) });
//! # fn main() {}
//! ```

// Test support: a failed expectation must panic, with a message naming the check.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::projection::{
    HandlerError, Projection, ProjectionFailurePolicy, ProjectionRecord, ProjectionState,
    ProjectionStore,
};
use crate::query::{EventEnvelope, EventFilter, EventQueries, Offset};
use crate::{JournalStorage, PersistError, PersistenceId, SequenceId};

/// The projection checks, listed once.
#[doc(hidden)]
#[macro_export]
macro_rules! __projection_checks {
    ([$($then:tt)*] [$($prefix:tt)*]) => {
        $($then)*! {
            $($prefix)*
            projection_records_start_empty_and_keep_what_is_set,
            projection_offsets_move_only_from_the_offset_expected,
            projection_names_are_checked,
            projection_leases_are_exclusive,
            projection_at_least_once_handles_every_event_and_resumes,
            projection_failures_follow_the_policy,
        }
    };
}

/// Writes one `#[test]` per projection check for the store that `$factory`
/// makes (a store implementing [`EventQueries`] and [`ProjectionStore`]).
#[macro_export]
macro_rules! projection_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::__projection_checks!([$crate::__projection_tests] [$factory;]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __projection_tests {
    ($factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::testkit::block_on(async {
                    let fixture = ($factory)().await;
                    let store = $crate::testkit::Fixture::under_test(&fixture);
                    $crate::testkit::projections::$check(store).await;
                    drop(fixture);
                });
            }
        )+
    };
}

#[track_caller]
fn ok<T>(check: &str, step: &str, result: Result<T, PersistError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{check}: {step} failed: {e}"),
    }
}

/// An unknown projection has the default record; a pause, an offset and a
/// source, once set, read back, each without disturbing the others.
pub async fn projection_records_start_empty_and_keep_what_is_set<S>(store: Arc<S>)
where
    S: ProjectionStore + ?Sized,
{
    let check = "projection_records_start_empty_and_keep_what_is_set";
    let record = ok(check, "load", store.load_projection("fresh").await);
    assert_eq!(record, ProjectionRecord::default(), "{check}");
    let source = EventFilter::Tag("checkout".into());
    ok(
        check,
        "register",
        store.register_projection("p", &source).await,
    );
    ok(check, "pause", store.set_projection_paused("p", true).await);
    let at = Offset::pair(7, 9);
    ok(
        check,
        "set",
        store.set_projection_offset("p", Some(at)).await,
    );
    let record = ok(check, "load", store.load_projection("p").await);
    assert_eq!(
        record,
        ProjectionRecord {
            offset: Some(at),
            paused: true,
            source: Some(source.clone()),
        },
        "{check}"
    );
    ok(
        check,
        "resume",
        store.set_projection_paused("p", false).await,
    );
    ok(check, "clear", store.set_projection_offset("p", None).await);
    let record = ok(check, "load", store.load_projection("p").await);
    assert_eq!(
        (record.offset, record.paused, record.source),
        (None, false, Some(source)),
        "{check}"
    );
    ok(
        check,
        "register b",
        store.register_projection("b", &EventFilter::All).await,
    );
    assert_eq!(
        ok(check, "names", store.projection_names().await),
        ["b", "p"],
        "{check}: names in byte order"
    );
}

/// A guarded save from an offset that is not the stored one is refused
/// with `OffsetConflict`, and saves nothing.
pub async fn projection_offsets_move_only_from_the_offset_expected<S>(store: Arc<S>)
where
    S: ProjectionStore + ?Sized,
{
    let check = "projection_offsets_move_only_from_the_offset_expected";
    let (a, b, c) = (Offset::pair(1, 1), Offset::pair(1, 2), Offset::pair(2, 1));
    ok(
        check,
        "first save",
        store.advance_projection("p", None, a).await,
    );
    ok(
        check,
        "second save",
        store.advance_projection("p", Some(a), b).await,
    );
    for stale in [None, Some(a), Some(c)] {
        match store.advance_projection("p", stale, c).await {
            Err(PersistError::OffsetConflict { projection, .. }) => {
                assert_eq!(projection, "p", "{check}");
            }
            other => panic!("{check}: a save from {stale:?} over {b} gave {other:?}"),
        }
    }
    let record = ok(check, "load", store.load_projection("p").await);
    assert_eq!(
        record.offset,
        Some(b),
        "{check}: a refused save changed the offset"
    );
}

/// Empty names, names holding control characters and names longer than
/// the limit are refused, by every operation.
pub async fn projection_names_are_checked<S>(store: Arc<S>)
where
    S: ProjectionStore + ?Sized,
{
    let check = "projection_names_are_checked";
    let long = "x".repeat(crate::projection::store::MAX_NAME_LEN + 1);
    for bad in ["", "a\nb", "nul\0", long.as_str()] {
        let refused =
            |r: &Result<_, PersistError>| matches!(r, Err(PersistError::ProjectionFailed { .. }));
        assert!(
            refused(&store.load_projection(bad).await.map(drop)),
            "{check}: load {bad:?}"
        );
        assert!(
            refused(&store.set_projection_paused(bad, true).await),
            "{check}: pause {bad:?}"
        );
        assert!(
            refused(
                &store
                    .advance_projection(bad, None, Offset::pair(1, 1))
                    .await
            ),
            "{check}: advance {bad:?}"
        );
        assert!(
            refused(&store.try_lease(bad).await.map(drop)),
            "{check}: lease {bad:?}"
        );
    }
}

/// One lease per projection at a time; dropping it frees it.
pub async fn projection_leases_are_exclusive<S>(store: Arc<S>)
where
    S: ProjectionStore + ?Sized,
{
    let check = "projection_leases_are_exclusive";
    let first = ok(check, "take", store.try_lease("p").await).expect("a free lease");
    assert!(first.is_held(), "{check}");
    assert!(
        ok(check, "take again", store.try_lease("p").await).is_none(),
        "{check}: a second instance took a held lease"
    );
    let other = ok(check, "take another", store.try_lease("q").await);
    assert!(
        other.is_some(),
        "{check}: leases of two projections are independent"
    );
    drop(first);
    // A server may take a moment to see the lease's connection gone.
    let mut again = None;
    for _ in 0..100 {
        again = ok(check, "take after drop", store.try_lease("p").await);
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "{check}: a dropped lease stayed taken");
}

async fn write(store: &(impl JournalStorage + ?Sized), id: &str, upto: i64) {
    let pid = PersistenceId::new("Proj", id);
    let from = store
        .read_highest_sequence(&pid)
        .await
        .expect("highest")
        .map_or(1, |s| s.0 + 1);
    for seq in from..=upto {
        store
            .write_event(&pid, SequenceId(seq), "E", &seq.to_le_bytes())
            .await
            .expect("write");
    }
}

type Seen = Arc<Mutex<Vec<(String, i64)>>>;

fn recorder(
    seen: Seen,
) -> impl FnMut(EventEnvelope) -> futures_util::future::Ready<Result<(), HandlerError>> + Send + 'static
{
    move |event: EventEnvelope| {
        seen.lock()
            .unwrap()
            .push((event.persistence_id.0.clone(), event.sequence_id.0));
        futures_util::future::ready(Ok(()))
    }
}

/// An at-least-once projection handles every event of its source in order,
/// saves its offset, and a second run resumes after it: nothing twice
/// after a clean stop.
pub async fn projection_at_least_once_handles_every_event_and_resumes<S>(store: Arc<S>)
where
    S: EventQueries + ProjectionStore + 'static,
{
    let check = "projection_at_least_once_handles_every_event_and_resumes";
    write(&*store, "a", 5).await;
    write(&*store, "b", 5).await;
    let seen: Seen = Arc::default();
    let run = || {
        Projection::by_entity_type("alo", "Proj")
            .batch(3, Duration::from_millis(1))
            .save_every(2, Duration::from_millis(50))
            .check_interval(Duration::from_millis(50))
            .run_at_least_once(store.clone(), recorder(seen.clone()))
            .expect("run")
    };
    let handle = run();
    let head = ok(check, "head", store.event_head().await);
    tokio::time::timeout(Duration::from_secs(20), handle.wait_for(head))
        .await
        .unwrap_or_else(|_| panic!("{check}: not caught up in 20 s: {:?}", handle.status()))
        .unwrap_or_else(|e| panic!("{check}: {e}"));
    let status = handle.stop().await;
    assert_eq!(status.state, ProjectionState::Stopped, "{check}");
    assert_eq!(status.events_handled, 10, "{check}");
    write(&*store, "a", 8).await;
    let handle = run();
    let head = ok(check, "head", store.event_head().await);
    tokio::time::timeout(Duration::from_secs(20), handle.wait_for(head))
        .await
        .unwrap_or_else(|_| panic!("{check}: not caught up in 20 s: {:?}", handle.status()))
        .unwrap_or_else(|e| panic!("{check}: {e}"));
    handle.stop().await;
    let seen = seen.lock().unwrap().clone();
    let mut expected: Vec<(String, i64)> = (1..=5)
        .map(|s| ("Proj:a".to_owned(), s))
        .chain((1..=5).map(|s| ("Proj:b".to_owned(), s)))
        .chain((6..=8).map(|s| ("Proj:a".to_owned(), s)))
        .collect();
    let mut sorted = seen.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "{check}: every event once, after a clean stop"
    );
    for id in ["Proj:a", "Proj:b"] {
        let of_id: Vec<i64> = seen
            .iter()
            .filter(|(p, _)| p == id)
            .map(|(_, s)| *s)
            .collect();
        assert!(of_id.is_sorted(), "{check}: {id} out of order: {of_id:?}");
    }
    let lag = ok(
        check,
        "lag",
        crate::projection::Projections::new(store.clone())
            .lag("alo")
            .await,
    );
    assert_eq!(lag.events, 0, "{check}: caught up");
}

/// A handler that keeps failing on one event: skipped under a skip policy
/// (counted, the rest handled), the projection stopped under a stop
/// policy, with the event named and the offset left before it.
pub async fn projection_failures_follow_the_policy<S>(store: Arc<S>)
where
    S: EventQueries + ProjectionStore + 'static,
{
    let check = "projection_failures_follow_the_policy";
    write(&*store, "a", 4).await;
    let failing = |seen: Seen| {
        move |event: EventEnvelope| {
            let result: Result<(), HandlerError> = if event.sequence_id.0 == 3 {
                Err("the sink refuses event 3".into())
            } else {
                seen.lock()
                    .unwrap()
                    .push((event.persistence_id.0.clone(), event.sequence_id.0));
                Ok(())
            };
            futures_util::future::ready(result)
        }
    };
    let seen: Seen = Arc::default();
    let handle = Projection::by_entity_type("skipping", "Proj")
        .batch(10, Duration::from_millis(1))
        .on_failure(ProjectionFailurePolicy::retry_then_skip(
            2,
            Duration::from_millis(1),
        ))
        .run_at_least_once(store.clone(), failing(seen.clone()))
        .expect("run");
    let head = ok(check, "head", store.event_head().await);
    tokio::time::timeout(Duration::from_secs(20), handle.wait_for(head))
        .await
        .unwrap_or_else(|_| panic!("{check}: not caught up in 20 s: {:?}", handle.status()))
        .unwrap_or_else(|e| panic!("{check}: {e}"));
    let status = handle.stop().await;
    assert_eq!(status.events_skipped, 1, "{check}: {status:?}");
    let handled: Vec<i64> = seen.lock().unwrap().iter().map(|(_, s)| *s).collect();
    assert_eq!(handled, [1, 2, 4], "{check}");

    let seen: Seen = Arc::default();
    let handle = Projection::by_entity_type("stopping", "Proj")
        .batch(10, Duration::from_millis(1))
        .save_every(1, Duration::from_millis(1))
        .on_failure(ProjectionFailurePolicy::retry_then_stop(
            1,
            Duration::from_millis(1),
        ))
        .run_at_least_once(store.clone(), failing(seen.clone()))
        .expect("run");
    let status = tokio::time::timeout(Duration::from_secs(20), handle.join())
        .await
        .unwrap_or_else(|_| panic!("{check}: the stop policy did not stop the projection"));
    match &status.state {
        ProjectionState::Failed { error } => {
            assert!(
                error.contains("event 3 of `Proj:a`"),
                "{check}: the failure does not name the event: {error}"
            );
        }
        other => panic!("{check}: {other:?}"),
    }
    let record = ok(check, "load", store.load_projection("stopping").await);
    let second = seen.lock().unwrap().len();
    assert_eq!(second, 2, "{check}: events 1 and 2 handled before the stop");
    let saved = record.offset.expect("events 1 and 2 saved");
    let events = ok(
        check,
        "read",
        store
            .read_events_after(&EventFilter::EntityType("Proj".into()), Offset::START, 10)
            .await,
    )
    .events;
    assert_eq!(
        saved, events[1].offset,
        "{check}: the offset stays before event 3"
    );
}
