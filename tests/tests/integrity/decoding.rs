//! Strict decoding: bytes after an event's, a snapshot's or a state's
//! fields are damage, and so is a journal entry whose stored type is not a
//! name of the variant its payload names.

use std::sync::Arc;

use dactor_persist::prelude::*;
use dactor_persist::{
    InMemoryStorage, JournalEntry, JournalStorage, SnapshotStorage, StateStorage,
};

use dactor_persist_tests::ledger::{Ledger, LedgerEvent, events, seed};

fn entry(event_type: &str, payload: Vec<u8>) -> JournalEntry {
    JournalEntry {
        sequence_id: SequenceId(1),
        event_type: event_type.into(),
        payload,
    }
}

#[test]
fn bytes_after_an_events_fields_are_refused() {
    let mut payload = LedgerEvent::Added { amount: 5 }.encode().unwrap();
    assert!(LedgerEvent::decode(&payload).is_ok());
    payload.push(0);
    let err = LedgerEvent::decode(&payload).unwrap_err();
    assert!(
        err.to_string().contains("1 bytes after its fields"),
        "{err}"
    );

    // A variant without fields: anything after its name.
    let mut payload = LedgerEvent::Reset.encode().unwrap();
    payload.extend_from_slice(&[1, 2]);
    let err = LedgerEvent::decode(&payload).unwrap_err();
    assert!(
        err.to_string().contains("2 bytes after its fields"),
        "{err}"
    );
}

#[test]
fn an_entry_typed_as_another_variant_is_refused() {
    let added = LedgerEvent::Added { amount: 5 }.encode().unwrap();
    let ledger = Ledger::new("t");
    assert_eq!(
        ledger
            .deserialize_entry(&entry("Added", added.clone()))
            .unwrap(),
        LedgerEvent::Added { amount: 5 }
    );
    let err = ledger
        .deserialize_entry(&entry("Reset", added))
        .unwrap_err();
    assert!(
        err.to_string().contains("typed `Reset`") && err.to_string().contains("Added"),
        "{err}"
    );
}

#[derive(Debug, PartialEq, PersistentEvent)]
enum Renamed {
    #[persist(name = "Deposited", alias = "Added", alias = "Credited")]
    Deposited(u64),
    Closed,
}

#[test]
fn an_entry_typed_with_any_name_of_its_variant_decodes() {
    // Written under an old name: stored type and payload name agree.
    let old = dactor_persist::__private::encode_event("Added", &(7u64,)).unwrap();
    for stored_type in ["Added", "Deposited", "Credited"] {
        assert_eq!(
            Renamed::decode_entry(stored_type, &old).unwrap(),
            Renamed::Deposited(7),
            "{stored_type}"
        );
    }
    let err = Renamed::decode_entry("Closed", &old).unwrap_err();
    assert!(err.to_string().contains("typed `Closed`"), "{err}");
}

#[tokio::test]
async fn recovery_refuses_a_mistyped_or_overlong_event_at_its_sequence() {
    // A stored type that is not the payload's variant is damage; bytes after
    // the fields are a layout the variant no longer has (fields removed).
    for (event_type, payload, damage) in [
        (
            "Reset",
            LedgerEvent::Added { amount: 1 }.encode().unwrap(),
            true,
        ),
        (
            "Added",
            {
                let mut p = LedgerEvent::Added { amount: 1 }.encode().unwrap();
                p.push(9);
                p
            },
            false,
        ),
    ] {
        let store = InMemoryStorage::new();
        seed(&store, "d", &events(3, 5)).await;
        let pid = Ledger::new("d").persistence_id();
        store
            .write_event(&pid, SequenceId(4), event_type, &payload)
            .await
            .unwrap();
        let mut ledger = Ledger::new("d");
        match recover_event_sourced(&mut ledger, &store, &store).await {
            Err(PersistError::CorruptEntry {
                sequence_id,
                detail,
            }) if damage => {
                assert_eq!(sequence_id, SequenceId(4));
                assert!(detail.contains("Ledger:d"), "{detail}");
            }
            Err(PersistError::IncompatibleEvent {
                sequence_id,
                detail,
            }) if !damage => {
                assert_eq!(sequence_id, SequenceId(4));
                assert!(detail.contains("Ledger:d"), "{detail}");
                assert!(detail.contains("1 bytes after its fields"), "{detail}");
            }
            other => panic!("expected a refused entry at 4 (damage: {damage}), got {other:?}"),
        }
        assert_eq!(ledger, Ledger::new("d"));
    }
}

#[tokio::test]
async fn a_snapshot_with_bytes_after_its_fields_is_replaced_by_the_journal() {
    let store = InMemoryStorage::new();
    let evs = events(6, 9);
    seed(&store, "s", &evs).await;
    let mut payload = Ledger::after("s", &evs).snapshot_payload().unwrap();
    payload.push(0);
    let pid = Ledger::new("s").persistence_id();
    store
        .save_snapshot(&pid, SequenceId(6), &payload)
        .await
        .unwrap();
    let mut restored = Ledger::new("s");
    let err = restored.restore_snapshot(payload).unwrap_err();
    assert!(
        matches!(&err, PersistError::CorruptSnapshot { detail, .. } if detail.contains("bytes after its fields")),
        "{err}"
    );
    let mut ledger = Ledger::new("s");
    recover_event_sourced(&mut ledger, &store, &store)
        .await
        .unwrap();
    assert_eq!(ledger, Ledger::after("s", &evs));
}

#[derive(Debug, Default, PartialEq, DurableState)]
#[persist(entity = "Profile")]
struct Profile {
    #[persist(id)]
    id: String,
    name: String,
}

#[tokio::test]
async fn a_state_with_bytes_after_its_fields_is_corrupt_state() {
    let store = Arc::new(InMemoryStorage::new());
    let saved = Profile {
        id: "u".into(),
        name: "Ada".into(),
    };
    let mut payload = saved.serialize_state().unwrap();
    payload.extend_from_slice(&[0, 0, 0]);
    store
        .save_state(&saved.persistence_id(), &payload)
        .await
        .unwrap();
    let mut profile = Profile {
        id: "u".into(),
        ..Default::default()
    };
    let err = recover_durable_state(&mut profile, &*store)
        .await
        .unwrap_err();
    match err {
        PersistError::CorruptState {
            persistence_id,
            detail,
        } => {
            assert_eq!(persistence_id, saved.persistence_id());
            assert!(detail.contains("3 bytes after its fields"), "{detail}");
            assert!(detail.contains("state"), "{detail}");
        }
        other => panic!("expected CorruptState, got {other:?}"),
    }
    assert_eq!(profile.name, "", "nothing restored");
}
