//! Recovery: every path, every policy, and no sequence reuse afterwards.

use std::sync::atomic::Ordering;
use std::time::Duration;

use dactor_persist::*;

use super::common::{Counter, Flaky, Settings, enc, pid, seed};

#[tokio::test]
async fn nothing_stored_recovers_the_initial_state() {
    let store = InMemoryStorage::new();
    let mut c = Counter::new("empty");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!((c.value, c.seq), (0, SequenceId(0)));
    assert_eq!((c.pre_recoveries, c.post_recoveries), (1, 1));
}

#[tokio::test]
async fn events_only_are_replayed_in_order() {
    let store = InMemoryStorage::new();
    seed(&store, "ev", &[10, 5, -2]).await;
    let mut c = Counter::new("ev");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!((c.value, c.seq), (13, SequenceId(3)));
    assert_eq!(c.post_recoveries, 1);
}

#[tokio::test]
async fn a_snapshot_alone_is_restored_at_its_sequence() {
    let store = InMemoryStorage::new();
    store
        .save_snapshot(&pid("snap"), SequenceId(7), &enc(99))
        .await
        .unwrap();
    let mut c = Counter::new("snap");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!((c.value, c.seq), (99, SequenceId(7)));
}

#[tokio::test]
async fn a_snapshot_plus_tail_replays_only_the_events_after_it() {
    let store = InMemoryStorage::new();
    seed(&store, "tail", &[1, 2, 3, 4]).await;
    // The snapshot at 2 says 1000: if events 1 and 2 were replayed on top, it would show.
    store
        .save_snapshot(&pid("tail"), SequenceId(2), &enc(1000))
        .await
        .unwrap();
    let mut c = Counter::new("tail");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!((c.value, c.seq), (1007, SequenceId(4)));
}

#[tokio::test]
async fn the_latest_snapshot_by_sequence_is_used() {
    let store = InMemoryStorage::new();
    seed(&store, "two", &[1, 1, 1]).await;
    store
        .save_snapshot(&pid("two"), SequenceId(3), &enc(3))
        .await
        .unwrap();
    store
        .save_snapshot(&pid("two"), SequenceId(1), &enc(1))
        .await
        .unwrap();
    let mut c = Counter::new("two");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!((c.value, c.seq), (3, SequenceId(3)));
}

#[tokio::test]
async fn after_a_snapshot_newer_than_every_remaining_event_persist_continues_above_it() {
    let store = InMemoryStorage::new();
    let mut c = Counter::new("gc");
    c.persist_batch(vec![1, 2, 3], &store).await.unwrap();
    c.snapshot(&store).await.unwrap();
    store
        .delete_events_to(&pid("gc"), SequenceId(3))
        .await
        .unwrap();

    let mut again = Counter::new("gc");
    recover_event_sourced(&mut again, &store, &store)
        .await
        .unwrap();
    assert_eq!((again.value, again.seq), (6, SequenceId(3)));
    assert_eq!(again.persist(4, &store).await.unwrap(), SequenceId(4));
}

#[tokio::test]
async fn after_all_events_were_deleted_persist_continues_above_the_highest() {
    let store = InMemoryStorage::new();
    seed(&store, "gone", &[1, 2, 3]).await;
    store
        .delete_events_to(&pid("gone"), SequenceId(3))
        .await
        .unwrap();
    let mut c = Counter::new("gone");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!(
        c.seq,
        SequenceId(3),
        "no sequence reuse even with nothing to replay"
    );
    assert_eq!(c.persist(1, &store).await.unwrap(), SequenceId(4));
}

#[tokio::test]
async fn a_decode_failure_at_event_n_leaves_no_partial_state() {
    let store = InMemoryStorage::new();
    seed(&store, "bad", &[1, 2]).await;
    store
        .write_event(&pid("bad"), SequenceId(3), "Delta", b"not 8 bytes")
        .await
        .unwrap();
    store
        .write_event(&pid("bad"), SequenceId(4), "Delta", &enc(4))
        .await
        .unwrap();
    let mut c = Counter::new("bad");
    let err = recover_event_sourced(&mut c, &store, &store)
        .await
        .unwrap_err();
    match &err {
        PersistError::CorruptEntry {
            sequence_id,
            detail,
        } => {
            assert_eq!(*sequence_id, SequenceId(3));
            assert!(detail.contains("Counter:bad"), "{detail}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
    assert_eq!((c.value, c.seq), (0, SequenceId(0)), "nothing applied");
    assert_eq!(c.post_recoveries, 0);
}

#[tokio::test]
async fn a_decode_failure_after_a_snapshot_does_not_restore_the_snapshot() {
    let store = InMemoryStorage::new();
    store
        .save_snapshot(&pid("bs"), SequenceId(1), &enc(50))
        .await
        .unwrap();
    store
        .write_event(&pid("bs"), SequenceId(2), "Delta", b"??")
        .await
        .unwrap();
    let mut c = Counter::new("bs");
    assert!(recover_event_sourced(&mut c, &store, &store).await.is_err());
    assert_eq!((c.value, c.seq), (0, SequenceId(0)));
}

#[tokio::test]
async fn stop_returns_the_error_without_retrying() {
    let store = Flaky::failing(1);
    let mut c = Counter::with_policy("stop", RecoveryFailurePolicy::Stop);
    let err = recover_event_sourced(&mut c, &*store, &*store)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistError::StorageUnavailable(_)));
    assert_eq!((c.pre_recoveries, c.post_recoveries), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn retry_makes_max_attempts_tries_with_doubling_delays() {
    let store = Flaky::failing(u32::MAX);
    let policy = RecoveryFailurePolicy::Retry {
        max_attempts: Some(4),
        initial_delay: Duration::from_secs(1),
    };
    let mut c = Counter::with_policy("retry", policy);
    let err = recover_event_sourced(&mut c, &*store, &*store)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistError::StorageUnavailable(_)));
    assert_eq!(c.pre_recoveries, 4, "four tries in all");
    let gaps: Vec<Duration> = c.tries_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [1, 2, 4].map(Duration::from_secs).to_vec());
    assert_eq!(c.post_recoveries, 0);
}

#[tokio::test(start_paused = true)]
async fn retry_without_max_attempts_makes_three_tries() {
    let store = Flaky::failing(u32::MAX);
    let policy = RecoveryFailurePolicy::Retry {
        max_attempts: None,
        initial_delay: Duration::from_millis(100),
    };
    let mut c = Counter::with_policy("retry3", policy);
    assert!(
        recover_event_sourced(&mut c, &*store, &*store)
            .await
            .is_err()
    );
    assert_eq!(c.pre_recoveries, 3);
}

#[tokio::test(start_paused = true)]
async fn retry_delays_are_capped_at_thirty_seconds() {
    let store = Flaky::failing(u32::MAX);
    let policy = RecoveryFailurePolicy::Retry {
        max_attempts: Some(5),
        initial_delay: Duration::from_secs(10),
    };
    let mut c = Counter::with_policy("cap", policy);
    assert!(
        recover_event_sourced(&mut c, &*store, &*store)
            .await
            .is_err()
    );
    let gaps: Vec<Duration> = c.tries_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [10, 20, 30, 30].map(Duration::from_secs).to_vec());
}

#[tokio::test(start_paused = true)]
async fn retry_succeeds_once_the_store_recovers() {
    let store = Flaky::failing(0);
    seed(&store.inner, "heal", &[2, 3]).await;
    store.failures_left.store(2, Ordering::SeqCst);
    let policy = RecoveryFailurePolicy::Retry {
        max_attempts: Some(5),
        initial_delay: Duration::from_secs(1),
    };
    let mut c = Counter::with_policy("heal", policy);
    recover_event_sourced(&mut c, &*store, &*store)
        .await
        .unwrap();
    assert_eq!((c.value, c.seq), (5, SequenceId(2)));
    assert_eq!(c.pre_recoveries, 3);
    assert_eq!(c.post_recoveries, 1);
}

#[tokio::test]
async fn skip_and_start_keeps_the_initial_state_and_never_reuses_a_sequence() {
    let store = InMemoryStorage::new();
    seed(&store, "skip", &[1, 2]).await;
    store
        .write_event(&pid("skip"), SequenceId(3), "Delta", b"corrupt")
        .await
        .unwrap();
    let mut c = Counter::with_policy("skip", RecoveryFailurePolicy::SkipAndStart);
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!(c.value, 0, "initial state");
    assert_eq!(c.post_recoveries, 1, "post_recovery still runs");
    assert_eq!(c.seq, SequenceId(3));
    assert_eq!(c.persist(1, &store).await.unwrap(), SequenceId(4));
}

#[tokio::test]
async fn an_incompatible_snapshot_falls_back_to_replaying_the_journal() {
    let store = InMemoryStorage::new();
    seed(&store, "old", &[1, 2, 3]).await;
    store
        .save_snapshot(&pid("old"), SequenceId(2), b"incompatible")
        .await
        .unwrap();
    let mut c = Counter::new("old");
    recover_event_sourced(&mut c, &store, &store).await.unwrap();
    assert_eq!((c.value, c.seq), (6, SequenceId(3)));
}

#[tokio::test]
async fn an_incompatible_snapshot_whose_events_were_deleted_fails_recovery() {
    let store = InMemoryStorage::new();
    seed(&store, "lost", &[1, 2, 3]).await;
    store
        .save_snapshot(&pid("lost"), SequenceId(2), b"incompatible")
        .await
        .unwrap();
    store
        .delete_events_to(&pid("lost"), SequenceId(2))
        .await
        .unwrap();
    let mut c = Counter::new("lost");
    let err = recover_event_sourced(&mut c, &store, &store)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PersistError::SnapshotIncompatible(ref m) if m.contains("deleted")),
        "{err}"
    );
    assert_eq!((c.value, c.seq), (0, SequenceId(0)));
}

#[tokio::test]
async fn durable_state_recovers_the_saved_state() {
    let store = InMemoryStorage::new();
    let mut s = Settings::new("ds");
    s.data = "hello world".into();
    DurableState::save_state(&s, &store).await.unwrap();
    let mut again = Settings::new("ds");
    recover_durable_state(&mut again, &store).await.unwrap();
    assert_eq!(again.data, "hello world");
    assert_eq!(again.post_recoveries, 1);
}

#[tokio::test]
async fn durable_state_with_nothing_stored_keeps_the_initial_state() {
    let store = InMemoryStorage::new();
    let mut s = Settings::new("none");
    recover_durable_state(&mut s, &store).await.unwrap();
    assert_eq!(s.data, "");
    assert_eq!(s.post_recoveries, 1);
}

#[tokio::test]
async fn durable_state_stop_returns_the_error() {
    let store = Flaky::failing(1);
    let mut s = Settings::new("stop");
    assert!(recover_durable_state(&mut s, &*store).await.is_err());
    assert_eq!((s.tries, s.post_recoveries), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn durable_state_retry_tries_again() {
    let store = Flaky::failing(2);
    store
        .inner
        .save_state(&PersistenceId::new("Settings", "r"), b"back")
        .await
        .unwrap();
    let mut s = Settings::new("r");
    s.recovery_policy = RecoveryFailurePolicy::Retry {
        max_attempts: Some(3),
        initial_delay: Duration::from_secs(1),
    };
    let started = tokio::time::Instant::now();
    recover_durable_state(&mut s, &*store).await.unwrap();
    assert_eq!(s.data, "back");
    assert_eq!(s.tries, 3);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3),
        "waited 1 s then 2 s"
    );
}

#[tokio::test]
async fn durable_state_skip_and_start_keeps_the_initial_state() {
    let store = InMemoryStorage::new();
    store
        .save_state(&PersistenceId::new("Settings", "bad"), &[0xff, 0xfe])
        .await
        .unwrap();
    let mut s = Settings::new("bad");
    s.recovery_policy = RecoveryFailurePolicy::SkipAndStart;
    recover_durable_state(&mut s, &store).await.unwrap();
    assert_eq!(s.data, "");
    assert_eq!(s.post_recoveries, 1);
}

#[tokio::test]
async fn a_journal_longer_than_one_replay_page_is_replayed_whole() {
    let store = InMemoryStorage::new();
    let deltas: Vec<i64> = (1..=20_000).collect();
    let mut c = Counter::new("long");
    c.persist_batch(deltas, &store).await.unwrap();
    let mut again = Counter::new("long");
    recover_event_sourced(&mut again, &store, &store)
        .await
        .unwrap();
    assert_eq!(again.seq, SequenceId(20_000));
    assert_eq!(again.value, 20_000 * 20_001 / 2);
}

/// A snapshot store whose every snapshot reads back damaged.
struct DamagedSnapshots;

#[async_trait]
impl SnapshotStorage for DamagedSnapshots {
    async fn save_snapshot(
        &self,
        _: &PersistenceId,
        _: SequenceId,
        _: &[u8],
    ) -> Result<(), PersistError> {
        Ok(())
    }
    async fn load_latest_snapshot(
        &self,
        id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        Err(PersistError::CorruptSnapshot {
            persistence_id: id.clone(),
            sequence_id: SequenceId(2),
            detail: "checksum mismatch".into(),
        })
    }
    async fn delete_snapshots_before(
        &self,
        _: &PersistenceId,
        _: SequenceId,
    ) -> Result<(), PersistError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_corrupt_snapshot_falls_back_to_replaying_the_journal() {
    let store = InMemoryStorage::new();
    seed(&store, "dmg", &[4, 5, 6]).await;
    let mut c = Counter::new("dmg");
    recover_event_sourced(&mut c, &store, &DamagedSnapshots)
        .await
        .unwrap();
    assert_eq!((c.value, c.seq), (15, SequenceId(3)));
}

#[tokio::test]
async fn a_corrupt_snapshot_whose_events_were_deleted_fails_recovery() {
    let store = InMemoryStorage::new();
    seed(&store, "dmg2", &[4, 5, 6]).await;
    store
        .delete_events_to(&pid("dmg2"), SequenceId(2))
        .await
        .unwrap();
    let mut c = Counter::new("dmg2");
    let err = recover_event_sourced(&mut c, &store, &DamagedSnapshots)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PersistError::SnapshotIncompatible(ref m) if m.contains("checksum mismatch")),
        "{err}"
    );
}
