//! The in-memory store: every storage operation, and the corrected semantics
//! (no overwrite, a highest sequence that never goes down, latest snapshot by
//! sequence).

use std::sync::Arc;

use dactor_persist::*;

fn id(s: &str) -> PersistenceId {
    PersistenceId::new("T", s)
}

async fn write_n(store: &InMemoryStorage, pid: &PersistenceId, n: i64) {
    for i in 1..=n {
        store
            .write_event(pid, SequenceId(i), "E", &[i as u8])
            .await
            .unwrap();
    }
}

fn seqs(entries: &[JournalEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.sequence_id.0).collect()
}

#[tokio::test]
async fn written_events_read_back_with_type_and_payload() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store
        .write_event(&pid, SequenceId(1), "Created", b"data1")
        .await
        .unwrap();
    store
        .write_event(&pid, SequenceId(2), "Updated", b"data2")
        .await
        .unwrap();
    let events = store.read_events(&pid, SequenceId(1)).await.unwrap();
    assert_eq!(
        events,
        vec![
            JournalEntry {
                sequence_id: SequenceId(1),
                event_type: "Created".into(),
                payload: b"data1".to_vec()
            },
            JournalEntry {
                sequence_id: SequenceId(2),
                event_type: "Updated".into(),
                payload: b"data2".to_vec()
            },
        ]
    );
}

#[tokio::test]
async fn read_events_starts_at_from_inclusive_in_ascending_order() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    // Written out of order on purpose: reads are by sequence.
    for s in [3, 1, 5, 2, 4] {
        store
            .write_event(&pid, SequenceId(s), "E", &[s as u8])
            .await
            .unwrap();
    }
    assert_eq!(
        seqs(&store.read_events(&pid, SequenceId(3)).await.unwrap()),
        [3, 4, 5]
    );
    assert_eq!(
        seqs(&store.read_events(&pid, SequenceId(0)).await.unwrap()),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        seqs(&store.read_events(&pid, SequenceId(5)).await.unwrap()),
        [5]
    );
    assert!(
        store
            .read_events(&pid, SequenceId(6))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_ids_read_as_empty() {
    let store = InMemoryStorage::new();
    let pid = id("nobody");
    assert!(
        store
            .read_events(&pid, SequenceId(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.read_highest_sequence(&pid).await.unwrap(), None);
    assert!(store.load_latest_snapshot(&pid).await.unwrap().is_none());
    assert!(store.load_state(&pid).await.unwrap().is_none());
    // Deleting what is not there is not an error.
    store.delete_events_to(&pid, SequenceId(10)).await.unwrap();
    store
        .delete_snapshots_before(&pid, SequenceId(10))
        .await
        .unwrap();
    store.delete_state(&pid).await.unwrap();
}

#[tokio::test]
async fn highest_sequence_is_the_largest_written() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store
        .write_event(&pid, SequenceId(1), "E", b"")
        .await
        .unwrap();
    store
        .write_event(&pid, SequenceId(5), "E", b"")
        .await
        .unwrap();
    assert_eq!(
        store.read_highest_sequence(&pid).await.unwrap(),
        Some(SequenceId(5))
    );
}

#[tokio::test]
async fn ids_are_kept_apart() {
    let store = InMemoryStorage::new();
    write_n(&store, &id("a"), 3).await;
    write_n(&store, &id("ab"), 1).await;
    assert_eq!(
        store
            .read_events(&id("a"), SequenceId(1))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .read_events(&id("ab"), SequenceId(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.read_highest_sequence(&id("A")).await.unwrap(), None);
}

#[tokio::test]
async fn a_write_at_a_taken_sequence_is_refused_and_overwrites_nothing() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store
        .write_event(&pid, SequenceId(1), "First", b"original")
        .await
        .unwrap();
    let err = store
        .write_event(&pid, SequenceId(1), "Second", b"intruder")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PersistError::SequenceConflict {
            persistence_id: pid.clone(),
            sequence_id: SequenceId(1)
        }
    );
    let events = store.read_events(&pid, SequenceId(1)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "First");
    assert_eq!(events[0].payload, b"original");
}

#[tokio::test]
async fn a_batch_is_stored_whole() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    let batch = [
        (SequenceId(1), "A", b"a" as &[u8]),
        (SequenceId(2), "B", b"b"),
        (SequenceId(3), "C", b"c"),
    ];
    store.write_event_batch(&pid, &batch).await.unwrap();
    let events = store.read_events(&pid, SequenceId(1)).await.unwrap();
    assert_eq!(seqs(&events), [1, 2, 3]);
    assert_eq!(events[2].event_type, "C");
    assert_eq!(
        store.read_highest_sequence(&pid).await.unwrap(),
        Some(SequenceId(3))
    );
}

#[tokio::test]
async fn a_batch_with_one_conflicting_entry_stores_none() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store
        .write_event(&pid, SequenceId(3), "Old", b"old")
        .await
        .unwrap();
    let batch: Vec<(SequenceId, &str, &[u8])> = (1..=5)
        .map(|s| (SequenceId(s), "New", b"new" as &[u8]))
        .collect();
    let err = store.write_event_batch(&pid, &batch).await.unwrap_err();
    assert_eq!(
        err,
        PersistError::SequenceConflict {
            persistence_id: pid.clone(),
            sequence_id: SequenceId(3)
        }
    );
    let events = store.read_events(&pid, SequenceId(0)).await.unwrap();
    assert_eq!(seqs(&events), [3]);
    assert_eq!(events[0].payload, b"old");
}

#[tokio::test]
async fn a_batch_naming_one_sequence_twice_stores_none() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    let batch = [
        (SequenceId(1), "A", b"a" as &[u8]),
        (SequenceId(1), "B", b"b"),
    ];
    let err = store.write_event_batch(&pid, &batch).await.unwrap_err();
    assert!(matches!(
        err,
        PersistError::SequenceConflict {
            sequence_id: SequenceId(1),
            ..
        }
    ));
    assert_eq!(store.read_highest_sequence(&pid).await.unwrap(), None);
}

#[tokio::test]
async fn sequences_below_one_are_refused() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    for bad in [0, -1] {
        let err = store
            .write_event(&pid, SequenceId(bad), "E", b"")
            .await
            .unwrap_err();
        assert!(matches!(err, PersistError::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(store.read_highest_sequence(&pid).await.unwrap(), None);
}

#[tokio::test]
async fn an_empty_batch_stores_nothing() {
    let store = InMemoryStorage::new();
    store.write_event_batch(&id("1"), &[]).await.unwrap();
    assert_eq!(store.read_highest_sequence(&id("1")).await.unwrap(), None);
}

#[tokio::test]
async fn delete_events_to_removes_up_to_and_including() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    write_n(&store, &pid, 5).await;
    store.delete_events_to(&pid, SequenceId(3)).await.unwrap();
    assert_eq!(
        seqs(&store.read_events(&pid, SequenceId(1)).await.unwrap()),
        [4, 5]
    );
}

#[tokio::test]
async fn highest_sequence_survives_deleting_some_events() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    write_n(&store, &pid, 5).await;
    store.delete_events_to(&pid, SequenceId(2)).await.unwrap();
    assert_eq!(
        store.read_highest_sequence(&pid).await.unwrap(),
        Some(SequenceId(5))
    );
}

#[tokio::test]
async fn highest_sequence_survives_deleting_all_events() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    write_n(&store, &pid, 5).await;
    store
        .delete_events_to(&pid, SequenceId(i64::MAX))
        .await
        .unwrap();
    assert!(
        store
            .read_events(&pid, SequenceId(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.read_highest_sequence(&pid).await.unwrap(),
        Some(SequenceId(5))
    );
    // Writing continues above the highest.
    store
        .write_event(&pid, SequenceId(6), "E", b"")
        .await
        .unwrap();
}

#[tokio::test]
async fn deleted_sequences_are_never_written_again() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    write_n(&store, &pid, 5).await;
    store.delete_events_to(&pid, SequenceId(5)).await.unwrap();
    let err = store
        .write_event(&pid, SequenceId(3), "Stale", b"")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        PersistError::SequenceConflict {
            sequence_id: SequenceId(3),
            ..
        }
    ));
    assert!(
        store
            .read_events(&pid, SequenceId(1))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn latest_snapshot_is_the_highest_sequence_not_the_last_written() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store
        .save_snapshot(&pid, SequenceId(10), b"at-10")
        .await
        .unwrap();
    store
        .save_snapshot(&pid, SequenceId(5), b"at-5")
        .await
        .unwrap();
    let snap = store.load_latest_snapshot(&pid).await.unwrap().unwrap();
    assert_eq!(
        snap,
        SnapshotEntry {
            sequence_id: SequenceId(10),
            payload: b"at-10".to_vec()
        }
    );
}

#[tokio::test]
async fn saving_a_snapshot_at_the_same_sequence_replaces_it() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store
        .save_snapshot(&pid, SequenceId(4), b"first")
        .await
        .unwrap();
    store
        .save_snapshot(&pid, SequenceId(4), b"second")
        .await
        .unwrap();
    let snap = store.load_latest_snapshot(&pid).await.unwrap().unwrap();
    assert_eq!(snap.payload, b"second");
    // Only one snapshot is left at 4: deleting before 5 leaves none.
    store
        .delete_snapshots_before(&pid, SequenceId(5))
        .await
        .unwrap();
    assert!(store.load_latest_snapshot(&pid).await.unwrap().is_none());
}

#[tokio::test]
async fn delete_snapshots_before_keeps_the_given_sequence() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    for s in [5, 10, 15] {
        store
            .save_snapshot(&pid, SequenceId(s), &[s as u8])
            .await
            .unwrap();
    }
    store
        .delete_snapshots_before(&pid, SequenceId(10))
        .await
        .unwrap();
    assert_eq!(
        store
            .load_latest_snapshot(&pid)
            .await
            .unwrap()
            .unwrap()
            .sequence_id,
        SequenceId(15)
    );
    store
        .delete_snapshots_before(&pid, SequenceId(15))
        .await
        .unwrap();
    assert_eq!(
        store
            .load_latest_snapshot(&pid)
            .await
            .unwrap()
            .unwrap()
            .payload,
        [15]
    );
    store
        .delete_snapshots_before(&pid, SequenceId(16))
        .await
        .unwrap();
    assert!(store.load_latest_snapshot(&pid).await.unwrap().is_none());
}

#[tokio::test]
async fn state_is_saved_replaced_and_deleted() {
    let store = InMemoryStorage::new();
    let pid = id("1");
    store.save_state(&pid, b"v1").await.unwrap();
    assert_eq!(
        store.load_state(&pid).await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    store.save_state(&pid, b"v2").await.unwrap();
    assert_eq!(
        store.load_state(&pid).await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    store.delete_state(&pid).await.unwrap();
    assert_eq!(store.load_state(&pid).await.unwrap(), None);
    store.save_state(&pid, b"").await.unwrap();
    assert_eq!(
        store.load_state(&pid).await.unwrap(),
        Some(Vec::new()),
        "empty is not absent"
    );
}

#[test]
fn the_provider_hands_out_every_kind_of_store() {
    let provider = InMemoryStorageProvider::new();
    let pid = id("1");
    assert!(provider.journal(&pid).is_some());
    assert!(provider.snapshots(&pid).is_some());
    assert!(provider.state(&pid).is_some());
    let _default = InMemoryStorageProvider::default();
    let _store_default = InMemoryStorage::default();
}

#[tokio::test]
async fn the_provider_shares_the_store_it_was_built_from() {
    let raw = Arc::new(InMemoryStorage::new());
    let provider = InMemoryStorageProvider::from_storage(raw.clone());
    let pid = id("shared");
    let journal = provider.journal(&pid).unwrap();
    journal
        .write_event(&pid, SequenceId(1), "E", b"data")
        .await
        .unwrap();
    assert_eq!(raw.read_events(&pid, SequenceId(1)).await.unwrap().len(), 1);
    provider
        .state(&pid)
        .unwrap()
        .save_state(&pid, b"s")
        .await
        .unwrap();
    assert_eq!(raw.load_state(&pid).await.unwrap(), Some(b"s".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_reader_sees_a_batch_whole_or_not_at_all() {
    let store = Arc::new(InMemoryStorage::new());
    let pid = id("race");
    let writer = {
        let store = store.clone();
        let pid = pid.clone();
        tokio::spawn(async move {
            for round in 0..200i64 {
                let batch: Vec<(SequenceId, &str, &[u8])> = (1..=10)
                    .map(|k| (SequenceId(round * 10 + k), "E", b"x" as &[u8]))
                    .collect();
                store.write_event_batch(&pid, &batch).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut observed = 0;
    while !writer.is_finished() {
        let n = store.read_events(&pid, SequenceId(1)).await.unwrap().len();
        assert_eq!(n % 10, 0, "a reader saw part of a batch ({n} events)");
        observed += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(observed > 0);
    assert_eq!(
        store.read_events(&pid, SequenceId(1)).await.unwrap().len(),
        2000
    );
}
