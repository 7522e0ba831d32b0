//! Projections managed and tested as an operator would: a pause that
//! outlives a restart, a rebuild that gives the same read model, a second
//! instance that waits and takes over, typed handlers, lag. (Crashes are in
//! `projection_crash.rs`.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::projection::{
    HandlerError, Projection, ProjectionFailurePolicy, ProjectionState, Projections, typed,
};
use dactor_persist::query::{EventQueries, TypedEnvelope};
use dactor_persist::rusqlite::Connection;
use dactor_persist::{InMemoryStorage, SqliteStorage};
use dactor_persist_tests::projection::{ENTITY, NAME, apply};

async fn write(store: &impl JournalStorage, id: &str, from: i64, to: i64) {
    let pid = PersistenceId::new(ENTITY, id);
    for seq in from..=to {
        store
            .write_event(&pid, SequenceId(seq), "Read", &(seq * 10).to_le_bytes())
            .await
            .unwrap();
    }
}

fn totals(db: &std::path::Path) -> Vec<(String, i64, i64)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, sum, count FROM totals ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn totals_projection() -> Projection {
    Projection::by_entity_type(NAME, ENTITY)
        .batch(7, Duration::from_millis(1))
        .check_interval(Duration::from_millis(20))
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_survives_a_restart_and_clearing_the_offset_rebuilds_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let store = Arc::new(SqliteStorage::open(&db).await.unwrap());
    write(&*store, "a", 1, 20).await;
    write(&*store, "b", 1, 15).await;
    let handle = totals_projection()
        .run_in_sqlite(store.clone(), apply)
        .unwrap();
    handle
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    let first = totals(&db);
    assert_eq!(
        first,
        [("Meter:a".into(), 2100, 20), ("Meter:b".into(), 1200, 15)]
    );

    handle.pause().await.unwrap();
    let status = handle.watch();
    wait_until("paused", || {
        status.borrow().state == ProjectionState::Paused
    })
    .await;
    write(&*store, "a", 21, 25).await;
    handle.stop().await;
    // A restart: still paused, nothing of the new events applied.
    let handle = totals_projection()
        .run_in_sqlite(store.clone(), apply)
        .unwrap();
    let status = handle.watch();
    wait_until("paused after the restart", || {
        status.borrow().state == ProjectionState::Paused
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(totals(&db), first, "a paused projection applied events");
    assert!(
        Projections::new(store.clone())
            .record(NAME)
            .await
            .unwrap()
            .paused
    );
    handle.resume().await.unwrap();
    handle
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    let resumed = totals(&db);
    assert_eq!(resumed[0], ("Meter:a".into(), 2100 + 1150, 25));

    // Rebuild: pause, empty the read model, clear the offset, resume.
    handle.pause().await.unwrap();
    wait_until("paused", || {
        status.borrow().state == ProjectionState::Paused
    })
    .await;
    Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM totals")
        .unwrap();
    handle.clear_offset().await.unwrap();
    handle.resume().await.unwrap();
    handle
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    assert_eq!(totals(&db), resumed, "the rebuilt read model differs");
    let lag = handle.lag().await.unwrap();
    assert_eq!(
        (lag.events, lag.counted_all, lag.time),
        (0, true, Duration::ZERO)
    );
    handle.stop().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_waits_then_takes_over_without_repeating() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let store = Arc::new(SqliteStorage::open(&db).await.unwrap());
    write(&*store, "a", 1, 30).await;
    let first = totals_projection()
        .run_in_sqlite(store.clone(), apply)
        .unwrap();
    first
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    // Another store on the same file, as another process would open it.
    let other = Arc::new(SqliteStorage::open(&db).await.unwrap());
    let second = totals_projection()
        .run_in_sqlite(other.clone(), apply)
        .unwrap();
    let status = second.watch();
    wait_until("standby", || {
        status.borrow().state == ProjectionState::Standby
    })
    .await;
    write(&*store, "a", 31, 40).await;
    first
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    first.stop().await;
    write(&*store, "a", 41, 50).await;
    second
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    let status = second.stop().await;
    assert_eq!(
        status.events_handled, 10,
        "the second applied only what came after"
    );
    assert_eq!(totals(&db), [("Meter:a".into(), 12750, 50)]);
    store.close().await;
    other.close().await;
}

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
enum MeterEvent {
    Read { value: i64 },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_handlers_decode_and_an_unknown_event_follows_the_policy() {
    let store = Arc::new(InMemoryStorage::new());
    let pid = PersistenceId::new(ENTITY, "t");
    let read = |v: i64| MeterEvent::Read { value: v }.encode().unwrap();
    store
        .write_event(&pid, SequenceId(1), "Read", &read(5))
        .await
        .unwrap();
    store
        .write_event(&pid, SequenceId(2), "Rebooted", b"??")
        .await
        .unwrap();
    store
        .write_event(&pid, SequenceId(3), "Read", &read(7))
        .await
        .unwrap();
    let sum = Arc::new(Mutex::new(0i64));
    let total = sum.clone();
    let handle = Projection::by_entity_type("typed", ENTITY)
        .on_failure(ProjectionFailurePolicy::SKIP)
        .save_every(1, Duration::from_millis(1))
        .run_at_least_once(
            store.clone(),
            typed(move |event: TypedEnvelope<MeterEvent>| {
                let MeterEvent::Read { value } = event.event;
                *total.lock().unwrap() += value;
                futures_util::future::ready(Ok::<(), HandlerError>(()))
            }),
        )
        .unwrap();
    handle
        .wait_for(store.event_head().await.unwrap())
        .await
        .unwrap();
    let status = handle.stop().await;
    assert_eq!((*sum.lock().unwrap(), status.events_skipped), (12, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_the_head_ends_when_the_newest_events_are_not_the_projections() {
    let store = Arc::new(InMemoryStorage::new());
    write(&*store, "a", 1, 3).await;
    // The newest events are of another entity type: the projection's saved
    // offset never reaches the head, yet nothing of its source is left.
    let other = PersistenceId::new("Other", "x");
    for seq in 1..=3 {
        store
            .write_event(&other, SequenceId(seq), "E", b"")
            .await
            .unwrap();
    }
    let handle = Projection::by_entity_type("mine", ENTITY)
        .run_at_least_once(store.clone(), |_: dactor_persist::query::EventEnvelope| {
            futures_util::future::ready(Ok::<(), HandlerError>(()))
        })
        .unwrap();
    let head = store.event_head().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle.wait_for(head))
        .await
        .expect("wait_for ended")
        .unwrap();
    let status = handle.stop().await;
    assert_eq!(status.events_handled, 3);
    assert!(status.saved_offset < Some(head));
}
