//! Failures, each reported as the variant a caller can act on, naming what
//! failed: an unreachable server, bad configuration, text PostgreSQL cannot
//! hold, damaged rows, and a server that refuses a statement.

use std::time::{Duration, Instant};

use dactor_persist::{
    JournalStorage, PersistError, PersistenceId, PostgresStorage, SequenceId, SnapshotStorage,
    StateStorage,
};
use libtest_mimic::Trial;

use crate::support::{Schema, raw, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "errors::an_unreachable_server_fails_within_the_bound",
            unreachable,
        ),
        trial(
            "errors::bad_urls_and_schema_names_are_refused",
            bad_configuration,
        ),
        trial("errors::nul_characters_are_invalid_input", nul_characters),
        trial(
            "errors::an_id_too_long_for_the_index_fails_alone",
            too_long_id,
        ),
        trial(
            "errors::damaged_rows_are_reported_not_returned",
            damaged_rows,
        ),
        trial(
            "errors::a_refused_statement_is_storage_unavailable",
            refused_statement,
        ),
    ]
}

async fn unreachable() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let started = Instant::now();
    let result = PostgresStorage::builder("postgres://someone:secret@127.0.0.1:1/nowhere")
        .connect_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(PersistError::StorageUnavailable(msg)) => {
            assert!(msg.contains("127.0.0.1:1/nowhere"), "{msg}");
            assert!(!msg.contains("secret"), "the password leaked: {msg}");
        }
        other => panic!("expected StorageUnavailable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

async fn bad_configuration() {
    match PostgresStorage::connect("postgres://host:notaport/db").await {
        Err(PersistError::IncompatibleStore(msg)) => assert!(msg.contains("URL"), "{msg}"),
        other => panic!("bad URL: {other:?}"),
    }
    for name in [String::new(), "x".repeat(64), "a\0b".to_owned()] {
        match PostgresStorage::builder(crate::support::server())
            .schema(name.clone())
            .connect()
            .await
        {
            Err(PersistError::IncompatibleStore(msg)) => assert!(msg.contains("schema"), "{msg}"),
            other => panic!("schema {name:?}: {other:?}"),
        }
    }
}

async fn nul_characters() {
    let schema = Schema::new("nul");
    let store = schema.store().await;
    let bad_id = PersistenceId::new("A", "x\0y");
    let good_id = PersistenceId::new("A", "1");
    for result in [
        store.write_event(&bad_id, SequenceId(1), "E", b"").await,
        store.write_event(&good_id, SequenceId(1), "E\0", b"").await,
        store.save_snapshot(&bad_id, SequenceId(1), b"").await,
        store.save_state(&bad_id, b"").await,
    ] {
        match result {
            Err(PersistError::InvalidInput { detail, .. }) => {
                assert!(detail.contains("NUL"), "{detail}")
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
    // Nothing can be stored under such an id, so there is nothing to read.
    assert!(
        store
            .read_events(&bad_id, SequenceId(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.read_highest_sequence(&bad_id).await.unwrap(), None);
    assert_eq!(store.load_state(&bad_id).await.unwrap(), None);
    assert_eq!(store.read_highest_sequence(&good_id).await.unwrap(), None);
    store.close().await;
}

/// Text that does not compress: PostgreSQL's b-tree entries hold ~2.7 KB.
fn incompressible(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

async fn too_long_id() {
    let schema = Schema::new("long");
    let store = schema.store().await;
    let long = PersistenceId(incompressible(8000));
    // Written alongside ordinary writes, so that it may share a group commit
    // with them: only it may fail.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write_event(
                    &PersistenceId::new("ok", &i.to_string()),
                    SequenceId(1),
                    "E",
                    b"x",
                )
                .await
        }));
    }
    let result = store.write_event(&long, SequenceId(1), "E", b"x").await;
    match result {
        Err(PersistError::InvalidInput { detail, .. }) => {
            assert!(detail.contains("too long"), "{detail}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    match store.save_state(&long, b"x").await {
        Err(PersistError::InvalidInput { .. }) => {}
        other => panic!("state under a too long id: {other:?}"),
    }
    // A long id that compresses well is fine (the conformance suite has 4 KiB ones).
    let long_but_plain = PersistenceId("y".repeat(8000));
    store
        .write_event(&long_but_plain, SequenceId(1), "E", b"x")
        .await
        .unwrap();
    store.close().await;
}

async fn damaged_rows() {
    let schema = Schema::new("damage");
    let store = schema.store().await;
    let pid = PersistenceId::new("Account", "damaged");
    for seq in 1..=3 {
        store
            .write_event(&pid, SequenceId(seq), "E", b"payload")
            .await
            .unwrap();
    }
    store
        .save_snapshot(&pid, SequenceId(2), b"snap")
        .await
        .unwrap();
    store.save_state(&pid, b"state").await.unwrap();
    let client = raw().await;
    let q = schema.quoted();
    for sql in [
        format!("UPDATE {q}.journal SET payload = 'payloaX'::bytea WHERE sequence = 2"),
        format!("UPDATE {q}.snapshots SET payload = 'snaX'::bytea"),
        format!("UPDATE {q}.states SET checksum = checksum + 1"),
    ] {
        client.execute(&sql, &[]).await.unwrap();
    }
    match store.read_events(&pid, SequenceId(1)).await {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => {
            assert_eq!(sequence_id, SequenceId(2));
            assert!(detail.contains("Account:damaged"), "{detail}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
    // The intact event before it still reads.
    assert_eq!(
        store
            .read_events_page(&pid, SequenceId(1), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    match store.load_latest_snapshot(&pid).await {
        Err(PersistError::CorruptSnapshot {
            persistence_id,
            sequence_id,
            ..
        }) => {
            assert_eq!(persistence_id, pid);
            assert_eq!(sequence_id, SequenceId(2));
        }
        other => panic!("expected CorruptSnapshot, got {other:?}"),
    }
    match store.load_state(&pid).await {
        Err(PersistError::CorruptState { persistence_id, .. }) => assert_eq!(persistence_id, pid),
        other => panic!("expected CorruptState, got {other:?}"),
    }
    store.close().await;
}

async fn refused_statement() {
    let schema = Schema::new("refused");
    let store = schema.store().await;
    let pid = PersistenceId::new("A", "1");
    store
        .write_event(&pid, SequenceId(1), "E", b"x")
        .await
        .unwrap();
    // Someone drops the table behind the store's back.
    raw()
        .await
        .batch_execute(&format!("DROP TABLE {}.journal", schema.quoted()))
        .await
        .unwrap();
    for (what, result) in [
        (
            "write",
            store.write_event(&pid, SequenceId(2), "E", b"x").await,
        ),
        (
            "read",
            store.read_events(&pid, SequenceId(0)).await.map(drop),
        ),
    ] {
        match result {
            Err(PersistError::StorageUnavailable(msg)) => {
                assert!(msg.contains("42P01"), "{what}: {msg}");
                assert!(msg.contains(&schema.name), "{what}: {msg}");
            }
            other => panic!("{what}: expected StorageUnavailable, got {other:?}"),
        }
    }
    store.close().await;
}
