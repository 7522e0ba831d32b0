//! The schema: created when missing, migrated once even by nodes starting
//! together, shared by applications through separate schemas, and refused
//! untouched when newer than the code.

use std::sync::Arc;

use dactor_persist::{JournalStorage, PersistError, PersistenceId, PostgresStorage, SequenceId};
use libtest_mimic::Trial;

use crate::support::{Schema, raw, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "schema::a_newer_schema_version_is_refused_untouched",
            newer_version,
        ),
        trial(
            "schema::nodes_connecting_at_once_migrate_once",
            concurrent_connects,
        ),
        trial(
            "schema::applications_in_separate_schemas_never_mix",
            separate_schemas,
        ),
        trial("schema::data_survives_reconnecting", reconnect),
    ]
}

async fn newer_version() {
    let schema = Schema::new("newer");
    schema.store().await.close().await;
    let client = raw().await;
    let version_table = format!("{}.dactor_persist_schema", schema.quoted());
    client
        .execute(
            &format!("INSERT INTO {version_table} (version, name) VALUES (99, 'from the future')"),
            &[],
        )
        .await
        .unwrap();
    let before: i64 = client
        .query_one(&format!("SELECT count(*) FROM {version_table}"), &[])
        .await
        .unwrap()
        .get(0);
    match schema.builder().connect().await {
        Err(PersistError::IncompatibleStore(msg)) => {
            assert!(msg.contains("99"), "{msg}");
            assert!(msg.contains(&schema.name), "{msg}");
        }
        other => panic!("expected IncompatibleStore, got {other:?}"),
    }
    let after: i64 = client
        .query_one(&format!("SELECT count(*) FROM {version_table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "the refused database was changed");
    assert_eq!(PostgresStorage::schema_version(), 4);
}

async fn concurrent_connects() {
    let schema = Arc::new(Schema::new("race"));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let schema = schema.clone();
        tasks.push(tokio::spawn(async move {
            schema.builder().pool_size(2).connect().await
        }));
    }
    for task in tasks {
        let store = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a node failed to connect: {e}"));
        store.close().await;
    }
    let client = raw().await;
    let rows = client
        .query(
            &format!(
                "SELECT version FROM {}.dactor_persist_schema",
                schema.quoted()
            ),
            &[],
        )
        .await
        .unwrap();
    let mut versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2, 3, 4]);
}

async fn separate_schemas() {
    let (a, b) = (Schema::new("app_a"), Schema::new("app_b"));
    let (store_a, store_b) = (a.store().await, b.store().await);
    let pid = PersistenceId::new("Account", "1");
    store_a
        .write_event(&pid, SequenceId(1), "A", b"a")
        .await
        .unwrap();
    // The same id and sequence is free in the other application's schema.
    store_b
        .write_event(&pid, SequenceId(1), "B", b"b")
        .await
        .unwrap();
    store_b
        .write_event(&pid, SequenceId(2), "B", b"b")
        .await
        .unwrap();
    assert_eq!(
        store_a.read_highest_sequence(&pid).await.unwrap(),
        Some(SequenceId(1))
    );
    assert_eq!(
        store_a.read_events(&pid, SequenceId(0)).await.unwrap()[0].event_type,
        "A"
    );
    assert_eq!(
        store_b
            .read_events(&pid, SequenceId(0))
            .await
            .unwrap()
            .len(),
        2
    );
    store_a.close().await;
    store_b.close().await;
}

async fn reconnect() {
    let schema = Schema::new("again");
    let store = schema.store().await;
    let pid = PersistenceId::new("A", "1");
    store
        .write_event(&pid, SequenceId(1), "E", b"kept")
        .await
        .unwrap();
    store.close().await;
    // Closed: nothing more goes through it.
    match store.write_event(&pid, SequenceId(2), "E", b"x").await {
        Err(PersistError::StorageUnavailable(msg)) => assert!(msg.contains("closed"), "{msg}"),
        other => panic!("write to a closed store: {other:?}"),
    }
    let again = schema.store().await;
    let events = again.read_events(&pid, SequenceId(1)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload, b"kept");
    again.close().await;
}
