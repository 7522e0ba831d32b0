//! Point 4: every field of `SnapshotConfig`.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::testkit::Op;

use super::actors::*;

fn with_config(id: &str, config: SnapshotConfig) -> Counter {
    let mut c = Counter::new(id);
    c.snapshots = Some(config);
    c
}

#[tokio::test]
async fn every_n_events_snapshots_at_each_boundary_and_once_per_batch() {
    let (store, runtime) = failing_runtime();
    let config = SnapshotConfig {
        every_n_events: Some(3),
        ..Default::default()
    };
    let counter = runtime
        .spawn_event_sourced(with_config("n", config))
        .await
        .unwrap();
    for _ in 0..4 {
        counter.ask(Add(1)).await.unwrap().unwrap();
    }
    assert_eq!(store.inner().snapshot_sequences(&pid("n")), [SequenceId(3)]);
    // 5..=10 crosses the boundaries at 6 and 9: one snapshot, after the batch.
    counter.ask(AddAll(vec![1; 6])).await.unwrap().unwrap();
    assert_eq!(
        store.inner().snapshot_sequences(&pid("n")),
        [SequenceId(3), SequenceId(10)]
    );
    assert_eq!(store.calls(Op::SaveSnapshot), 2);
    let snap = store
        .inner()
        .load_latest_snapshot(&pid("n"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.payload, 10i64.to_le_bytes());
}

#[tokio::test(start_paused = true)]
async fn interval_snapshots_only_when_events_were_persisted() {
    let (store, runtime) = failing_runtime();
    let config = SnapshotConfig {
        interval: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let counter = runtime
        .spawn_event_sourced(with_config("i", config))
        .await
        .unwrap();
    counter.ready().await.unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(store.calls(Op::SaveSnapshot), 0, "nothing to snapshot");
    counter.ask(Add(4)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(store.inner().snapshot_sequences(&pid("i")), [SequenceId(1)]);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        store.calls(Op::SaveSnapshot),
        1,
        "no new events, no new snapshot"
    );
}

#[tokio::test]
async fn retention_count_keeps_the_newest_snapshots() {
    let (store, runtime) = failing_runtime();
    let config = SnapshotConfig {
        every_n_events: Some(1),
        retention_count: Some(2),
        ..Default::default()
    };
    let counter = runtime
        .spawn_event_sourced(with_config("k", config))
        .await
        .unwrap();
    for _ in 0..5 {
        counter.ask(Add(1)).await.unwrap().unwrap();
    }
    assert_eq!(
        store.inner().snapshot_sequences(&pid("k")),
        [SequenceId(4), SequenceId(5)]
    );
}

#[tokio::test]
async fn delete_events_on_snapshot_deletes_what_the_snapshot_covers() {
    let (store, runtime) = failing_runtime();
    let config = SnapshotConfig {
        every_n_events: Some(2),
        delete_events_on_snapshot: true,
        ..Default::default()
    };
    let counter = runtime
        .spawn_event_sourced(with_config("d", config.clone()))
        .await
        .unwrap();
    for _ in 0..3 {
        counter.ask(Add(1)).await.unwrap().unwrap();
    }
    let left = store
        .inner()
        .read_events(&pid("d"), SequenceId(1))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|e| e.sequence_id).collect::<Vec<_>>(),
        [SequenceId(3)]
    );
    assert_eq!(
        store
            .inner()
            .read_highest_sequence(&pid("d"))
            .await
            .unwrap(),
        Some(SequenceId(3))
    );
    counter.stop().await;
    // Recovery from the snapshot plus the tail gives the same state.
    let again = runtime
        .spawn_event_sourced(with_config("d", config))
        .await
        .unwrap();
    assert_eq!(again.ask(Get).await.unwrap(), (3, SequenceId(3)));
}

#[tokio::test]
async fn a_failed_snapshot_is_logged_and_the_actor_carries_on() {
    let (store, runtime) = failing_runtime();
    let config = SnapshotConfig {
        every_n_events: Some(1),
        ..Default::default()
    };
    store.only(&[Op::SaveSnapshot]).fail_always();
    let counter = runtime
        .spawn_event_sourced(with_config("f", config))
        .await
        .unwrap();
    assert_eq!(counter.ask(Add(1)).await.unwrap().unwrap(), 1);
    assert_eq!(counter.ask(Add(1)).await.unwrap().unwrap(), 2);
    assert_eq!(store.calls(Op::SaveSnapshot), 2);
    assert!(store.inner().snapshot_sequences(&pid("f")).is_empty());
}
