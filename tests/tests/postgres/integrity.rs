//! The PostgreSQL store against damage behind its back: rows removed from
//! a journal, `verify`, and the migration of a schema written by version 1.

use dactor_persist::storage::{EngineCheck, Problem};
use dactor_persist::*;
use dactor_persist_tests::ledger::{Ledger, events, seed};
use libtest_mimic::Trial;

use crate::support::{Schema, raw, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "integrity::rows_removed_by_hand_are_named_not_skipped",
            removed_rows,
        ),
        trial(
            "integrity::verify_reports_an_intact_and_a_damaged_schema",
            verify,
        ),
        trial(
            "integrity::a_version_1_schema_migrates_with_nothing_lost",
            migrate_v1,
        ),
        trial(
            "integrity::a_damaged_event_stops_the_global_order_there",
            damaged_in_the_global_order,
        ),
    ]
}

/// A query over the global order delivers every event before a damaged
/// one, then fails at it, every time it is asked again: never a skip.
async fn damaged_in_the_global_order() {
    use dactor_persist::query::{Offset, ReadJournal};

    let schema = Schema::new("qdamage");
    let store = schema.store().await;
    let evs = events(30, 1);
    seed(&*store, "a", &evs).await;
    let q = schema.quoted();
    raw()
        .await
        .batch_execute(&format!(
            "UPDATE {q}.journal SET payload = '\\x00'::bytea WHERE sequence = 14"
        ))
        .await
        .unwrap();
    let journal = ReadJournal::new(store.clone()).page_size(4);
    let mut all = journal.current_all_events(Offset::START);
    let mut read = Vec::new();
    let error = loop {
        match all.next().await {
            Some(Ok(e)) => read.push(e.sequence_id.0),
            Some(Err(e)) => break e,
            None => panic!("the damaged event was read past: {read:?}"),
        }
    };
    assert_eq!(read, (1..=13).collect::<Vec<_>>());
    assert!(
        matches!(
            error,
            PersistError::CorruptEntry {
                sequence_id: SequenceId(14),
                ..
            }
        ),
        "{error:?}"
    );
    let again = all.next().await.expect("the stream goes on after an error");
    assert!(
        matches!(
            again,
            Err(PersistError::CorruptEntry {
                sequence_id: SequenceId(14),
                ..
            })
        ),
        "{again:?}"
    );
    store.close().await;
}

async fn removed_rows() {
    let schema = Schema::new("holes");
    let store = schema.store().await;
    for id in ["a", "b", "c"] {
        seed(&*store, id, &events(100, 3)).await;
    }
    let client = raw().await;
    let q = schema.quoted();
    let removed = client
        .execute(
            &format!("DELETE FROM {q}.journal WHERE persistence_id = 'Ledger:a' AND sequence BETWEEN 10 AND 99"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(removed, 90);
    client
        .execute(
            &format!("DELETE FROM {q}.journal WHERE persistence_id = 'Ledger:b' AND sequence > 90"),
            &[],
        )
        .await
        .unwrap();
    // A row moved to another id by hand: gone from `c` too.
    client
        .execute(
            &format!("UPDATE {q}.journal SET persistence_id = 'Ledger:z' WHERE persistence_id = 'Ledger:c' AND sequence = 100"),
            &[],
        )
        .await
        .unwrap();
    for (id, first_missing) in [("a", 10), ("b", 91), ("c", 100)] {
        let mut ledger = Ledger::new(id);
        match recover_event_sourced(&mut ledger, &*store, &*store).await {
            Err(PersistError::CorruptEntry {
                sequence_id,
                detail,
            }) => {
                assert_eq!(sequence_id, SequenceId(first_missing), "{detail}");
                assert!(detail.contains(&format!("Ledger:{id}")), "{detail}");
            }
            other => panic!("expected a corrupt entry at {first_missing}, got {other:?}"),
        }
    }
    let report = store.verify().await.unwrap();
    let mut problems: Vec<(&str, &Vec<Problem>)> = report
        .damaged_journals
        .iter()
        .map(|j| (j.persistence_id.0.as_str(), &j.problems))
        .collect();
    // The moved row, under the id it was moved to: fails its checksum.
    let (moved_to, moved) = problems.pop().unwrap();
    assert_eq!(moved_to, "Ledger:z");
    assert!(
        matches!(
            moved[..],
            [
                Problem::Missing { .. },
                Problem::Damaged {
                    sequence_id: SequenceId(100),
                    ..
                }
            ]
        ),
        "{report}"
    );
    assert_eq!(
        problems,
        vec![
            (
                "Ledger:a",
                &vec![Problem::Missing {
                    from: SequenceId(10),
                    to: SequenceId(99)
                }]
            ),
            (
                "Ledger:b",
                &vec![Problem::Missing {
                    from: SequenceId(91),
                    to: SequenceId(100)
                }]
            ),
            (
                "Ledger:c",
                &vec![Problem::Missing {
                    from: SequenceId(100),
                    to: SequenceId(100)
                }]
            ),
        ],
        "{report}"
    );
    store.close().await;
}

async fn verify() {
    let schema = Schema::new("verify");
    let client = raw().await;
    // amcheck ships with PostgreSQL's contrib; where it can be created, the
    // engine check runs.
    let amcheck = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        .await
        .is_ok();
    let store = schema.store().await;
    let evs = events(30, 1);
    seed(&*store, "a", &evs).await;
    Ledger::after("a", &evs[..20])
        .snapshot(&*store)
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
    if amcheck {
        assert_eq!(report.engine_check, EngineCheck::Passed, "{report}");
    } else {
        assert!(
            matches!(report.engine_check, EngineCheck::NotRun(_)),
            "{report}"
        );
    }

    let q = schema.quoted();
    client
        .batch_execute(&format!(
            "UPDATE {q}.snapshots SET payload = '\\x00'::bytea;
             UPDATE {q}.states SET checksum = checksum + 1;
             UPDATE {q}.journal SET event_type = 'Forged' WHERE sequence = 25;
             UPDATE {q}.journal_meta SET highest = 31;"
        ))
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    assert!(!report.is_intact());
    assert_eq!(
        (report.damaged_snapshots.len(), report.damaged_states.len()),
        (1, 1),
        "{report}"
    );
    assert!(
        matches!(
            report.damaged_journals[0].problems[..],
            [
                Problem::Bookkeeping(_),
                Problem::Damaged {
                    sequence_id: SequenceId(25),
                    ..
                }
            ]
        ),
        "{report}"
    );
    let mut ledger = Ledger::new("a");
    let err = recover_event_sourced(&mut ledger, &*store, &*store)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistError::CorruptEntry { .. }), "{err}");
    store.close().await;
}

/// The checksums of schema version 1 (they did not cover the id).
fn v1_event(sequence: i64, event_type: &str, payload: &[u8]) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&sequence.to_le_bytes());
    h.update(&(event_type.len() as u64).to_le_bytes());
    h.update(event_type.as_bytes());
    h.update(payload);
    i64::from(h.finalize())
}

fn v1_snapshot(sequence: i64, payload: &[u8]) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&sequence.to_le_bytes());
    h.update(payload);
    i64::from(h.finalize())
}

async fn migrate_v1() {
    let schema = Schema::new("v1");
    let q = schema.quoted();
    let client = raw().await;
    // The schema exactly as version 1 left it.
    let init = include_str!("../../../dactor-persist/migrations/postgres/0001_init.sql")
        .replace("{schema}", &q);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {q};
             CREATE TABLE {q}.dactor_persist_schema (
                 version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
             {init}
             INSERT INTO {q}.dactor_persist_schema (version, name) VALUES (1, 'init');"
        ))
        .await
        .unwrap();
    let insert = format!(
        "INSERT INTO {q}.journal (persistence_id, sequence, event_type, payload, checksum, write_id)
         VALUES ($1, $2, $3, $4, $5, 0)"
    );
    for seq in 1..=10i64 {
        let payload = format!("e{seq}").into_bytes();
        // Event 4 of `bad` was damaged before the migration.
        for (pid, sum) in [
            ("Account:a", v1_event(seq, "E", &payload)),
            (
                "Account:bad",
                if seq == 4 {
                    v1_event(seq, "E", b"other")
                } else {
                    v1_event(seq, "E", &payload)
                },
            ),
        ] {
            client
                .execute(&insert, &[&pid, &seq, &"E", &payload, &sum])
                .await
                .unwrap();
        }
    }
    client
        .batch_execute(&format!(
            "DELETE FROM {q}.journal WHERE persistence_id = 'Account:a' AND sequence <= 3;
             INSERT INTO {q}.journal_meta VALUES ('Account:a', 10, 3);"
        ))
        .await
        .unwrap();
    client
        .execute(
            &format!("INSERT INTO {q}.snapshots VALUES ('Account:a', 3, '\\x0102'::bytea, $1)"),
            &[&v1_snapshot(3, &[1, 2])],
        )
        .await
        .unwrap();
    client
        .execute(
            &format!("INSERT INTO {q}.states VALUES ('', 'st'::bytea, $1)"),
            &[&i64::from(crc32fast::hash(b"st"))],
        )
        .await
        .unwrap();

    let store = schema.store().await;
    let a = PersistenceId("Account:a".into());
    let seqs: Vec<i64> = store
        .read_events(&a, SequenceId(1))
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence_id.0)
        .collect();
    assert_eq!(seqs, (4..=10).collect::<Vec<_>>());
    assert_eq!(
        store.read_bounds(&a).await.unwrap(),
        JournalBounds {
            deleted_to: SequenceId(3),
            highest: SequenceId(10)
        }
    );
    let bad = PersistenceId("Account:bad".into());
    assert_eq!(
        store.read_bounds(&bad).await.unwrap(),
        JournalBounds {
            deleted_to: SequenceId(0),
            highest: SequenceId(10)
        },
        "every id with events has its bookkeeping"
    );
    match store.read_events(&bad, SequenceId(1)).await {
        Err(PersistError::CorruptEntry { sequence_id, .. }) => {
            assert_eq!(sequence_id, SequenceId(4))
        }
        other => panic!("the row damaged before the migration must stay damaged: {other:?}"),
    }
    let snap = store.load_latest_snapshot(&a).await.unwrap().unwrap();
    assert_eq!(
        (snap.sequence_id, snap.payload),
        (SequenceId(3), vec![1, 2])
    );
    assert_eq!(
        store
            .load_state(&PersistenceId(String::new()))
            .await
            .unwrap(),
        Some(b"st".to_vec())
    );
    let report = store.verify().await.unwrap();
    assert_eq!(report.damaged_journals.len(), 1, "{report}");
    assert_eq!(report.damaged_journals[0].persistence_id, bad);
    store
        .write_event(&a, SequenceId(11), "E", b"e11")
        .await
        .unwrap();
    let version: i64 = client
        .query_one(
            &format!("SELECT max(version) FROM {q}.dactor_persist_schema"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, PostgresStorage::schema_version());
    store.close().await;
}
