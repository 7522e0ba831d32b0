//! The SQLite store against damage behind its back: rows removed or moved,
//! bookkeeping tampered with, a damaged file; `verify`; and the migration of
//! a file written by schema version 1 (`tests/fixtures/sqlite-v1.db`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use dactor_persist::storage::{EngineCheck, Problem};
use dactor_persist::*;
use dactor_persist_tests::ledger::{Ledger, events, seed};
use rusqlite::Connection;
use tempfile::TempDir;

fn temp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.db");
    (dir, path)
}

/// The stream a ledger's events are stored under.
fn stream_of(ledger: &str) -> String {
    format!("(SELECT id FROM streams WHERE persistence_id = 'Ledger:{ledger}')")
}

/// Runs SQL straight on the file, as a user (or a disk) damaging it would.
fn tamper(path: &Path, sql: &str) -> usize {
    let conn = Connection::open(path).expect("open the file with rusqlite");
    conn.execute(sql, []).expect("tamper")
}

/// A store holding ledgers `a` and `b` of 100 events each, closed.
async fn seeded(path: &Path) {
    let store = SqliteStorage::open(path).await.unwrap();
    for id in ["a", "b"] {
        seed(&store, id, &events(100, 3)).await;
    }
    store.close().await;
}

async fn recover(store: &SqliteStorage, id: &str) -> Result<Ledger, PersistError> {
    let mut ledger = Ledger::new(id);
    recover_event_sourced(&mut ledger, store, store).await?;
    Ok(ledger)
}

fn missing_at(result: Result<Ledger, PersistError>) -> (i64, String) {
    match result {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => (sequence_id.0, detail),
        other => panic!("expected a corrupt entry, got {other:?}"),
    }
}

#[tokio::test]
async fn events_removed_from_the_middle_or_the_end_are_named_not_skipped() {
    let (_dir, path) = temp();
    seeded(&path).await;
    // Rows 10 to 99 of `a` and 91 to 100 of `b` removed by hand.
    assert_eq!(
        tamper(
            &path,
            &format!(
                "DELETE FROM events WHERE stream = {} AND sequence BETWEEN 10 AND 99",
                stream_of("a")
            )
        ),
        90
    );
    assert_eq!(
        tamper(
            &path,
            &format!(
                "DELETE FROM events WHERE stream = {} AND sequence > 90",
                stream_of("b")
            )
        ),
        10
    );
    let store = SqliteStorage::open(&path).await.unwrap();
    let (seq, detail) = missing_at(recover(&store, "a").await);
    assert_eq!(seq, 10);
    assert!(
        detail.contains("Ledger:a") && detail.contains("missing"),
        "{detail}"
    );
    let (seq, detail) = missing_at(recover(&store, "b").await);
    assert_eq!(seq, 91);
    assert!(detail.contains("Ledger:b"), "{detail}");

    // Nothing was written at 101 on top of the damage.
    let report = store.verify().await.unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.engine_check, EngineCheck::Passed);
    let problems: Vec<(String, Vec<Problem>)> = report
        .damaged_journals
        .iter()
        .map(|j| (j.persistence_id.0.clone(), j.problems.clone()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (
                "Ledger:a".into(),
                vec![Problem::Missing {
                    from: SequenceId(10),
                    to: SequenceId(99)
                }]
            ),
            (
                "Ledger:b".into(),
                vec![Problem::Missing {
                    from: SequenceId(91),
                    to: SequenceId(100)
                }]
            ),
        ],
        "{report}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_row_moved_to_another_id_is_caught_under_both() {
    let (_dir, path) = temp();
    seeded(&path).await;
    // A damaged key: the last event of `a` now reads as event 101 of `b`.
    tamper(
        &path,
        &format!(
            "UPDATE events SET stream = {}, sequence = 101 WHERE stream = {} AND sequence = 100",
            stream_of("b"),
            stream_of("a")
        ),
    );
    let store = SqliteStorage::open(&path).await.unwrap();
    let (seq, _) = missing_at(recover(&store, "a").await);
    assert_eq!(seq, 100, "the highest is recorded apart from the events");
    let (seq, detail) = missing_at(recover(&store, "b").await);
    assert_eq!(seq, 101, "{detail}");
    let report = store.verify().await.unwrap();
    let ids: Vec<&str> = report
        .damaged_journals
        .iter()
        .map(|j| j.persistence_id.0.as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{report}");
    assert!(
        ids.contains(&"Ledger:a") && ids.contains(&"Ledger:b"),
        "{report}"
    );
    // A stream whose bookkeeping row is gone is not taken for a new one.
    tamper(
        &path,
        "DELETE FROM streams WHERE persistence_id = 'Ledger:a'",
    );
    let err = recover(&store, "a").await.unwrap_err();
    assert!(
        matches!(&err, PersistError::CorruptEntry { detail, .. } if detail.contains("its events are stored")),
        "{err}"
    );
    let pid = Ledger::new("a").persistence_id();
    let err = store
        .write_event(&pid, SequenceId(1), "Reset", b"")
        .await
        .unwrap_err();
    assert!(matches!(err, PersistError::CorruptEntry { .. }), "{err}");
    store.close().await;
}

#[tokio::test]
async fn tampered_bookkeeping_is_refused_by_reads_and_writes() {
    let (_dir, path) = temp();
    seeded(&path).await;
    // Claiming that events up to 16 were deleted would skip them silently.
    tamper(
        &path,
        "UPDATE streams SET deleted_to = 16 WHERE persistence_id = 'Ledger:a'",
    );
    let store = SqliteStorage::open(&path).await.unwrap();
    let err = recover(&store, "a").await.unwrap_err();
    assert!(
        matches!(&err, PersistError::CorruptEntry { detail, .. } if detail.contains("checksum")),
        "{err}"
    );
    let pid = Ledger::new("a").persistence_id();
    let err = store
        .write_event(&pid, SequenceId(101), "Reset", b"")
        .await
        .unwrap_err();
    assert!(matches!(err, PersistError::CorruptEntry { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(
        recover(&store, "b").await.unwrap(),
        Ledger::after("b", &events(100, 3))
    );
    store.close().await;
}

/// Overwrites the journal's root page with garbage, so that SQLite itself
/// reports the file as damaged.
fn wreck_the_journal(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(path).unwrap();
    let start = ((root - 1) * page_size) as usize;
    for (i, b) in bytes[start..start + page_size as usize]
        .iter_mut()
        .enumerate()
    {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_damaged_file_is_store_damaged_and_never_retried() {
    let (_dir, path) = temp();
    seeded(&path).await;
    wreck_the_journal(&path);
    let store = SqliteStorage::open(&path).await.unwrap();
    let pid = Ledger::new("a").persistence_id();
    let err = store.read_events(&pid, SequenceId(1)).await.unwrap_err();
    match &err {
        PersistError::StoreDamaged {
            store: what,
            detail,
        } => {
            assert!(what.contains(path.to_str().unwrap()), "{what}");
            assert!(
                detail.contains("malformed") || detail.contains("corrupt"),
                "{detail}"
            );
        }
        other => panic!("expected StoreDamaged, got {other:?}"),
    }
    assert!(!err.is_transient());

    // A Retry policy gives up at once: waiting cannot mend a file.
    #[derive(Default, EventSourced)]
    #[persist(entity = "Ledger", event = dactor_persist_tests::ledger::LedgerEvent,
              recovery_failure = retry(max_attempts = 5, initial_delay = "60s"))]
    struct Patient {
        #[persist(id)]
        id: String,
        #[persist(sequence)]
        seq: SequenceId,
    }
    impl ApplyEvent<dactor_persist_tests::ledger::LedgerEvent> for Patient {
        fn apply_event(&mut self, _: &dactor_persist_tests::ledger::LedgerEvent) {}
    }
    let mut patient = Patient {
        id: "a".into(),
        ..Default::default()
    };
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        recover_event_sourced(&mut patient, &store, &store),
    )
    .await
    .expect("a Retry policy waited a minute to retry a damaged file");
    assert!(
        matches!(result, Err(PersistError::StoreDamaged { .. })),
        "{result:?}"
    );

    let report = store.verify().await.unwrap();
    assert!(!report.is_intact());
    assert!(
        matches!(report.engine_check, EngineCheck::Failed(_)),
        "{report}"
    );
    store.close().await;
}

#[tokio::test]
async fn verify_finds_an_intact_store_intact() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    seed(&store, "a", &events(30, 1)).await;
    Ledger::after("a", &events(30, 1)[..20])
        .snapshot(&store)
        .await
        .unwrap();
    store
        .delete_events_to(&Ledger::new("a").persistence_id(), SequenceId(20))
        .await
        .unwrap();
    store
        .save_state(&PersistenceId::new("S", "1"), b"state")
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        (
            report.journals_checked,
            report.events_checked,
            report.snapshots_checked,
            report.states_checked
        ),
        (1, 10, 1, 1)
    );
    // A damaged snapshot and state are listed.
    tamper(&path, "UPDATE snapshots SET payload = x'00'");
    tamper(&path, "UPDATE states SET checksum = checksum + 1");
    let report = store.verify().await.unwrap();
    assert_eq!(
        (report.damaged_snapshots.len(), report.damaged_states.len()),
        (1, 1),
        "{report}"
    );
    store.close().await;
}

/// Copies the committed version-1 file to a temporary directory, and checks
/// that it is still a version-1 file (opening it in place would have
/// migrated it; the original is never opened).
fn fixture() -> (TempDir, PathBuf) {
    let (dir, path) = temp();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sqlite-v1.db");
    std::fs::copy(source, &path).expect("copy the fixture");
    let conn = Connection::open(&path).expect("open the copy");
    let version: i64 = conn
        .query_row("SELECT max(version) FROM dactor_persist_schema", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        version, 1,
        "tests/fixtures/sqlite-v1.db was migrated in place; restore it with git checkout"
    );
    drop(conn);
    (dir, path)
}

#[tokio::test]
async fn a_version_1_file_migrates_with_nothing_lost() {
    let (_dir, path) = fixture();
    let store = SqliteStorage::open(&path).await.unwrap();
    let p = |s: &str| PersistenceId(s.to_owned());
    let payloads = |entries: &[JournalEntry]| -> Vec<(i64, String, Vec<u8>)> {
        entries
            .iter()
            .map(|e| (e.sequence_id.0, e.event_type.clone(), e.payload.clone()))
            .collect()
    };

    let a1 = store
        .read_events(&p("Account:a1"), SequenceId(1))
        .await
        .unwrap();
    let expected: Vec<(i64, String, Vec<u8>)> = (1..=20)
        .map(|s| (s, "Deposited".into(), format!("a1-{s}").into_bytes()))
        .collect();
    assert_eq!(payloads(&a1), expected);
    let a2 = store
        .read_events(&p("Account:a2"), SequenceId(1))
        .await
        .unwrap();
    let expected: Vec<(i64, String, Vec<u8>)> = (6..=10)
        .map(|s| (s, "Withdrawn".into(), format!("a2-{s}").into_bytes()))
        .collect();
    assert_eq!(payloads(&a2), expected);
    let odd = store
        .read_events(&p("Acct:ü'\"x"), SequenceId(1))
        .await
        .unwrap();
    assert_eq!(
        payloads(&odd),
        vec![
            (1, "Opened".into(), vec![0, 255, 1]),
            (2, "Closed".into(), vec![])
        ]
    );

    let bounds = |id: &'static str| {
        let store = &store;
        async move { store.read_bounds(&p(id)).await.unwrap() }
    };
    let b = |d: i64, h: i64| JournalBounds {
        deleted_to: SequenceId(d),
        highest: SequenceId(h),
    };
    assert_eq!(bounds("Account:a1").await, b(0, 20));
    assert_eq!(bounds("Account:a2").await, b(5, 10));
    assert_eq!(bounds("Account:a3").await, b(3, 3));
    assert_eq!(bounds("Account:none").await, b(0, 0));

    let snap = store
        .load_latest_snapshot(&p("Account:a2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (snap.sequence_id, snap.payload),
        (SequenceId(10), b"snap-a2-10".to_vec())
    );
    assert_eq!(
        store.load_state(&p("Profile:u1")).await.unwrap(),
        Some(b"state-u1".to_vec())
    );
    assert_eq!(
        store.load_state(&p("Profile:u2")).await.unwrap(),
        Some(vec![])
    );

    // The row damaged before the migration still reads as damaged.
    match store.read_events(&p("Account:bad"), SequenceId(1)).await {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => {
            assert_eq!(sequence_id, SequenceId(2));
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected the damaged row at 2, got {other:?}"),
    }
    let report = store.verify().await.unwrap();
    let damaged: Vec<(&str, &Vec<Problem>)> = report
        .damaged_journals
        .iter()
        .map(|j| (j.persistence_id.0.as_str(), &j.problems))
        .collect();
    assert_eq!(damaged.len(), 1, "{report}");
    assert_eq!(damaged[0].0, "Account:bad");
    assert!(matches!(
        damaged[0].1[..],
        [Problem::Damaged {
            sequence_id: SequenceId(2),
            ..
        }]
    ));

    // Writing goes on where each journal left off, and the fence holds.
    store
        .write_event(&p("Account:a1"), SequenceId(21), "Deposited", b"a1-21")
        .await
        .unwrap();
    assert!(matches!(
        store
            .write_event(&p("Account:a2"), SequenceId(5), "Withdrawn", b"")
            .await,
        Err(PersistError::SequenceConflict { .. })
    ));
    store.close().await;

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT max(version) FROM dactor_persist_schema", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, SqliteStorage::schema_version());
}

/// After the migration the read side sees every old event, in a global
/// order the migration gave them ((id, sequence) order, write time unknown:
/// the epoch, no tags, no metadata); events written afterwards come after
/// them; the row damaged before the migration stops a query there with an
/// error naming it, never a skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_migrates_into_the_read_side() {
    use dactor_persist::query::{EventQueries, Offset, ReadJournal};
    use std::time::UNIX_EPOCH;

    let (_dir, path) = fixture();
    let store = std::sync::Arc::new(SqliteStorage::open(&path).await.unwrap());
    let p = |s: &str| PersistenceId(s.to_owned());
    store
        .write_event(&p("Account:a1"), SequenceId(21), "Deposited", b"a1-21")
        .await
        .unwrap();
    let journal = ReadJournal::new(store.clone()).page_size(4);

    let mut accounts = journal.current_events_by_entity_type("Account", Offset::START);
    let mut read = Vec::new();
    let error = loop {
        match accounts.next().await {
            Some(Ok(e)) => {
                if e.sequence_id.0 <= 20 {
                    assert_eq!(e.timestamp, UNIX_EPOCH, "{e:?}");
                } else {
                    assert!(e.timestamp > UNIX_EPOCH, "{e:?}");
                }
                assert!(e.tags.is_empty() && e.metadata.is_empty(), "{e:?}");
                read.push((e.persistence_id.0, e.sequence_id.0));
            }
            Some(Err(e)) => break e,
            None => panic!("the damaged row of Account:bad was read past: {read:?}"),
        }
    };
    let mut expected: Vec<(String, i64)> = (1..=20).map(|s| ("Account:a1".into(), s)).collect();
    expected.extend((6..=10).map(|s| ("Account:a2".into(), s)));
    expected.push(("Account:bad".into(), 1));
    assert_eq!(read, expected);
    assert!(
        matches!(
            error,
            PersistError::CorruptEntry {
                sequence_id: SequenceId(2),
                ..
            }
        ),
        "{error:?}"
    );

    // The event written after the migration is last in the global order.
    let mut odd = journal.current_events_by_entity_type("Acct", Offset::START);
    let first = odd.next().await.unwrap().unwrap();
    assert_eq!(
        (first.sequence_id, first.payload),
        (SequenceId(1), vec![0, 255, 1])
    );
    let after_migration = journal
        .current_events_by_persistence_id(&p("Account:a1"), SequenceId(21), SequenceId::LAST)
        .next()
        .await
        .unwrap()
        .unwrap();
    assert!(after_migration.offset > first.offset);
    let head = store.event_head().await.unwrap();
    assert_eq!(after_migration.offset, head);

    let ids: Vec<String> = journal
        .current_persistence_ids(None)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|id| id.0)
        .collect();
    assert_eq!(
        ids,
        [
            "Account:a1",
            "Account:a2",
            "Account:a3",
            "Account:bad",
            "Acct:ü'\"x"
        ]
    );

    let mut states = journal.current_state_changes(Some("Profile"), Offset::START);
    let mut saved = Vec::new();
    while let Some(change) = states.next().await {
        let change = change.unwrap();
        assert_eq!(change.timestamp, UNIX_EPOCH);
        saved.push((change.persistence_id.0, change.payload));
    }
    assert_eq!(
        saved,
        [
            ("Profile:u1".to_owned(), b"state-u1".to_vec()),
            ("Profile:u2".to_owned(), Vec::new())
        ]
    );
    store.close().await;
}
