//! Group commit: concurrent writes share statements, and a write that
//! conflicts fails alone; another node's uncommitted write at the same key is
//! waited for and decides the outcome.

use std::sync::Arc;
use std::time::Duration;

use dactor_persist::{
    JournalStorage, PersistError, PersistenceId, PostgresStorage, SequenceId, StateStorage,
};
use libtest_mimic::Trial;

use crate::support::{Schema, raw, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "group_commit::a_conflicting_write_fails_alone",
            conflicts_fail_alone,
        ),
        trial(
            "group_commit::another_nodes_pending_write_decides",
            pending_write_decides,
        ),
        trial(
            "group_commit::closing_answers_every_write",
            closing_answers_every_write,
        ),
        trial(
            "group_commit::concurrent_state_saves_each_keep_their_last",
            concurrent_state_saves,
        ),
        trial(
            "group_commit::a_state_save_the_server_refuses_fails_alone",
            refused_state_save_fails_alone,
        ),
    ]
}

/// Many actors saving their states at once (their saves share statements):
/// every id ends with its own last state, checked on a second store.
async fn concurrent_state_saves() {
    let schema = Schema::new("states");
    let store = schema.store().await;
    let tasks: Vec<_> = (0..300u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let pid = PersistenceId::new("Saver", &i.to_string());
                for n in 0..10u32 {
                    let state = format!("{i}:{n}").into_bytes();
                    store.save_state(&pid, &state).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    store.close().await;
    let reader = schema.store().await;
    for i in 0..300u32 {
        let pid = PersistenceId::new("Saver", &i.to_string());
        let state = reader.load_state(&pid).await.unwrap();
        assert_eq!(state, Some(format!("{i}:9").into_bytes()), "{pid}");
    }
}

/// A save the server refuses (here a check constraint added for the test)
/// fails alone: the saves that shared its statement are stored.
async fn refused_state_save_fails_alone() {
    let schema = Schema::new("states_refused");
    let store = schema.store().await;
    raw()
        .await
        .batch_execute(&format!(
            "ALTER TABLE {}.states ADD CONSTRAINT no_poison CHECK (payload <> 'poison'::bytea)",
            schema.quoted()
        ))
        .await
        .unwrap();
    // 200 saves at once, four of them poisoned: while the first runs alone,
    // the others queue for the state writer and share its statements.
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let pid = PersistenceId::new("Saver", &i.to_string());
                let payload: &[u8] = if i % 50 == 7 { b"poison" } else { b"fine" };
                (i, store.save_state(&pid, payload).await)
            })
        })
        .collect();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 50 == 7 {
            let err = result.expect_err("the poisoned save is refused");
            assert!(err.to_string().contains("no_poison"), "{err}");
        } else {
            result.unwrap_or_else(|e| panic!("save {i} failed with its poisoned neighbour: {e}"));
        }
    }
    for i in 0..200u32 {
        let pid = PersistenceId::new("Saver", &i.to_string());
        let expected = (i % 50 != 7).then(|| b"fine".to_vec());
        assert_eq!(store.load_state(&pid).await.unwrap(), expected, "{pid}");
    }
}

/// What one concurrent writer does, and whether it must be refused.
enum Write {
    One(i64),
    Batch(Vec<i64>),
}

async fn conflicts_fail_alone() {
    let schema = Schema::new("group");
    // One writer, large groups: every request below shares a few statements.
    let store: Arc<PostgresStorage> =
        Arc::new(schema.builder().writers(1).connect().await.unwrap());
    let taken = PersistenceId::new("Taken", "1");
    store
        .write_event_batch(
            &taken,
            &[
                (SequenceId(1), "Old", b"old".as_slice()),
                (SequenceId(2), "Old", b"old".as_slice()),
                (SequenceId(3), "Old", b"old".as_slice()),
            ],
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..400i64 {
        let store = store.clone();
        let taken = taken.clone();
        tasks.push(tokio::spawn(async move {
            // Every fifth write collides with a stored event; the rest are new.
            let (pid, write, must_fail) = match i % 5 {
                0 => (taken, Write::One(1 + i % 3), true),
                1 => (taken, Write::Batch(vec![100 + i, 2, 200 + i]), true),
                2 => (
                    PersistenceId::new("Batch", &i.to_string()),
                    Write::Batch(vec![1, 2, 3]),
                    false,
                ),
                _ => (
                    PersistenceId::new("One", &i.to_string()),
                    Write::One(1),
                    false,
                ),
            };
            let result = match &write {
                Write::One(seq) => {
                    store
                        .write_event(&pid, SequenceId(*seq), "New", b"new")
                        .await
                }
                Write::Batch(seqs) => {
                    let entries: Vec<(SequenceId, &str, &[u8])> = seqs
                        .iter()
                        .map(|s| (SequenceId(*s), "New", b"new".as_slice()))
                        .collect();
                    store.write_event_batch(&pid, &entries).await
                }
            };
            (i, pid, must_fail, result)
        }));
    }
    for task in tasks {
        let (i, pid, must_fail, result) = task.await.unwrap();
        match (must_fail, result) {
            (
                true,
                Err(PersistError::SequenceConflict {
                    persistence_id,
                    sequence_id,
                }),
            ) => {
                assert_eq!(persistence_id, pid);
                let expected = if i % 5 == 0 { 1 + i % 3 } else { 2 };
                assert_eq!(sequence_id, SequenceId(expected), "write {i}");
            }
            (false, Ok(())) => {
                let expected = if i % 5 == 2 { 3 } else { 1 };
                assert_eq!(
                    store.read_events(&pid, SequenceId(0)).await.unwrap().len(),
                    expected,
                    "write {i}"
                );
            }
            (must_fail, other) => panic!("write {i} (must fail: {must_fail}): {other:?}"),
        }
    }
    // The refused batches left nothing behind: only the three old events.
    let events = store.read_events(&taken, SequenceId(0)).await.unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.event_type == "Old"));
    store.close().await;
}

async fn pending_write_decides() {
    let schema = Schema::new("pending");
    let store = schema.store().await;
    let pid = PersistenceId::new("Node", "1");
    let insert = format!(
        "INSERT INTO {}.journal (persistence_id, sequence, event_type, payload, checksum, write_id) \
         VALUES ($1, $2, 'Other', '\\x00'::bytea, 0, 0)",
        schema.quoted()
    );
    for commit in [true, false] {
        let seq = if commit { 1i64 } else { 2 };
        // Another node has inserted the key but not committed yet.
        let mut other = raw().await;
        let tx = other.transaction().await.unwrap();
        tx.execute(&insert, &[&pid.0, &seq]).await.unwrap();
        let writer = {
            let store = store.clone();
            let pid = pid.clone();
            tokio::spawn(
                async move { store.write_event(&pid, SequenceId(seq), "Mine", b"m").await },
            )
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !writer.is_finished(),
            "the write did not wait for the pending one"
        );
        if commit {
            tx.commit().await.unwrap();
            match writer.await.unwrap() {
                Err(PersistError::SequenceConflict { sequence_id, .. }) => {
                    assert_eq!(sequence_id, SequenceId(1))
                }
                other => panic!("expected a conflict once the other node committed: {other:?}"),
            }
        } else {
            tx.rollback().await.unwrap();
            writer.await.unwrap().unwrap();
        }
    }
    let events = store.read_events(&pid, SequenceId(0)).await;
    // Event 1 is the other node's (its checksum is not ours: reading it is damage).
    assert!(
        matches!(events, Err(PersistError::CorruptEntry { .. })),
        "{events:?}"
    );
    let page = store
        .read_events_page(&pid, SequenceId(2), 10)
        .await
        .unwrap();
    assert_eq!(page[0].event_type, "Mine");
    store.close().await;
}

/// Closing while writes are in flight answers every one of them: each is
/// stored and acknowledged, or refused as `StorageUnavailable` and not
/// stored. None waits forever, none is lost after its acknowledgement.
async fn closing_answers_every_write() {
    let schema = Schema::new("closing");
    let store = schema.store().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Writes until the store refuses one: every task has a write in
            // flight when the close comes.
            let pid = PersistenceId::new("Closing", &i.to_string());
            let mut seq = 1;
            loop {
                match store.write_event(&pid, SequenceId(seq), "E", b"x").await {
                    Ok(()) => seq += 1,
                    Err(e) => return (pid, seq - 1, e),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(10), store.close())
        .await
        .expect("close finished");
    let reader = schema.store().await;
    let mut acknowledged = 0;
    for task in tasks {
        let (pid, last_ack, error) = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("every write is answered")
            .unwrap();
        assert!(
            matches!(error, PersistError::StorageUnavailable(_)),
            "{pid}: {error:?}"
        );
        // Exactly the acknowledged events: the refused one is not stored.
        let stored = reader.read_events(&pid, SequenceId(0)).await.unwrap();
        assert_eq!(stored.len() as i64, last_ack, "{pid}");
        acknowledged += last_ack;
    }
    assert!(acknowledged > 0, "nothing was written before the close");
    eprintln!("closing: {acknowledged} events acknowledged before the close, all stored");
    reader.close().await;
}
