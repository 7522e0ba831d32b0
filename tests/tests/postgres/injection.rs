//! Text that would break a store building SQL from strings: stored and read
//! back exactly, because every value is a parameter (and the schema name, the
//! one identifier, is quoted).

use dactor_persist::{
    JournalStorage, PersistError, PersistenceId, SequenceId, SnapshotStorage, StateStorage,
};
use libtest_mimic::Trial;

use crate::support::{Schema, raw, trial};

/// Ids and event types a careless store would execute or mangle.
const NASTY: &[&str] = &[
    "it's",
    "''",
    "\"double\"",
    "back\\slash",
    "\\x00",
    "$1",
    "$1::text",
    "?",
    "%s",
    ";--",
    "'; DROP TABLE journal; --",
    "\"; DROP SCHEMA public CASCADE; --",
    "E'\\n'",
    "$$ dollar $$",
    "$tag$ quoted $tag$",
    "/* comment */",
    "unicode: ünïcødé 日本語 🦀",
    "zero\u{200b}width",
    "right\u{202e}to-left",
    "line\nbreak\rand\ttab",
];

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "injection::ids_and_event_types_round_trip_exactly",
            ids_and_event_types,
        ),
        trial(
            "injection::snapshots_and_states_round_trip_exactly",
            snapshots_and_states,
        ),
        trial("injection::schema_names_are_taken_literally", schema_names),
    ]
}

async fn ids_and_event_types() {
    let schema = Schema::new("inj");
    let store = schema.store().await;
    for (i, text) in NASTY.iter().enumerate() {
        let pid = PersistenceId::new(text, text);
        let payload = format!("payload of {i}: {text}").into_bytes();
        store
            .write_event(&pid, SequenceId(1), text, &payload)
            .await
            .unwrap_or_else(|e| panic!("write of {text:?}: {e}"));
        let batch: Vec<(SequenceId, &str, &[u8])> = vec![
            (SequenceId(2), text, payload.as_slice()),
            (SequenceId(3), "plain", b"x".as_slice()),
        ];
        store
            .write_event_batch(&pid, &batch)
            .await
            .unwrap_or_else(|e| panic!("batch of {text:?}: {e}"));
        // A second write at a taken sequence is a conflict naming the exact id.
        match store.write_event(&pid, SequenceId(1), text, b"again").await {
            Err(PersistError::SequenceConflict {
                persistence_id,
                sequence_id,
            }) => {
                assert_eq!(persistence_id, pid);
                assert_eq!(sequence_id, SequenceId(1));
            }
            other => panic!("rewrite of {text:?}: expected a conflict, got {other:?}"),
        }
    }
    // Read back after every write, so that one id's rows could not hide another's.
    for (i, text) in NASTY.iter().enumerate() {
        let pid = PersistenceId::new(text, text);
        let events = store.read_events(&pid, SequenceId(0)).await.unwrap();
        let payload = format!("payload of {i}: {text}").into_bytes();
        assert_eq!(events.len(), 3, "events of {text:?}");
        assert_eq!(events[0].event_type, *text);
        assert_eq!(events[0].payload, payload);
        assert_eq!(events[1].event_type, *text);
        assert_eq!(events[2].event_type, "plain");
        assert_eq!(
            store.read_highest_sequence(&pid).await.unwrap(),
            Some(SequenceId(3))
        );
    }
    // The stored text is the same byte for byte, seen from outside the store.
    let client = raw().await;
    let rows = client
        .query(
            &format!(
                "SELECT persistence_id, event_type FROM {}.journal WHERE sequence = 1",
                schema.quoted()
            ),
            &[],
        )
        .await
        .unwrap();
    let mut stored: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    stored.sort();
    let mut expected: Vec<(String, String)> = NASTY
        .iter()
        .map(|t| (format!("{t}:{t}"), (*t).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    // And nothing was dropped or created by any of it.
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 7, "the store's seven tables, no more, no fewer");
    store.close().await;
}

async fn snapshots_and_states() {
    let schema = Schema::new("inj");
    let store = schema.store().await;
    for text in NASTY {
        let pid = PersistenceId(format!("{text}{text}"));
        store
            .save_snapshot(&pid, SequenceId(7), text.as_bytes())
            .await
            .unwrap();
        store.save_state(&pid, text.as_bytes()).await.unwrap();
    }
    for text in NASTY {
        let pid = PersistenceId(format!("{text}{text}"));
        let snapshot = store.load_latest_snapshot(&pid).await.unwrap().unwrap();
        assert_eq!(snapshot.sequence_id, SequenceId(7));
        assert_eq!(snapshot.payload, text.as_bytes());
        assert_eq!(
            store.load_state(&pid).await.unwrap().as_deref(),
            Some(text.as_bytes())
        );
        store.delete_state(&pid).await.unwrap();
        store
            .delete_snapshots_before(&pid, SequenceId(8))
            .await
            .unwrap();
        assert_eq!(store.load_state(&pid).await.unwrap(), None);
        assert!(store.load_latest_snapshot(&pid).await.unwrap().is_none());
    }
    store.close().await;
}

async fn schema_names() {
    // The schema name is the one identifier in the SQL: quoted, it is taken
    // literally, quotes, semicolons, case and all.
    for tag in ["Mixed Case", "quo\"te; DROP SCHEMA public; --", "ünï $1"] {
        let schema = Schema {
            name: format!("{}{tag}", crate::support::short_unique()),
        };
        let store = schema.store().await;
        let pid = PersistenceId::new("A", "1");
        store
            .write_event(&pid, SequenceId(1), "E", b"x")
            .await
            .unwrap();
        assert_eq!(store.schema(), schema.name);
        let client = raw().await;
        let count: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {}.journal", schema.quoted()),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 1, "schema {:?}", schema.name);
        store.close().await;
    }
    // `public` is still there.
    let client = raw().await;
    let public = client
        .query_opt(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'public'",
            &[],
        )
        .await
        .unwrap();
    assert!(public.is_some());
}
