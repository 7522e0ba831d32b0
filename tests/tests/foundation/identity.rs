//! Identity, entries, errors and policy defaults: the contract's plain types.

use std::time::Duration;

use dactor_persist::*;

#[test]
fn persistence_id_joins_entity_and_id_with_a_colon() {
    let id = PersistenceId::new("BankAccount", "acct-123");
    assert_eq!(id.0, "BankAccount:acct-123");
    assert_eq!(id, PersistenceId("BankAccount:acct-123".to_owned()));
}

#[test]
fn persistence_id_displays_its_inner_string() {
    let id = PersistenceId::new("Counter", "ü:1");
    assert_eq!(id.to_string(), "Counter:ü:1");
    assert_eq!(format!("{id}"), id.0);
}

#[test]
fn sequence_ids_order_and_count_up_from_zero() {
    assert!(SequenceId(1) < SequenceId(2));
    assert!(SequenceId(-1) < SequenceId(0));
    assert_eq!(SequenceId(0).next(), SequenceId(1));
    assert_eq!(SequenceId(41).next(), SequenceId(42));
    assert_eq!(SequenceId::default(), SequenceId(0));
    let mut ids = vec![SequenceId(3), SequenceId(1), SequenceId(2)];
    ids.sort();
    assert_eq!(ids, vec![SequenceId(1), SequenceId(2), SequenceId(3)]);
}

#[test]
fn identity_types_are_serde_types() {
    fn serde_type<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    serde_type::<PersistenceId>();
    serde_type::<SequenceId>();
    let id = PersistenceId::new("A", "b");
    let bytes = postcard::to_allocvec(&(id.clone(), SequenceId(7))).unwrap();
    let back: (PersistenceId, SequenceId) = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, (id, SequenceId(7)));
}

#[test]
fn entries_hold_their_fields() {
    let e = JournalEntry {
        sequence_id: SequenceId(3),
        event_type: "Deposited".into(),
        payload: vec![1, 2],
    };
    let copy = e.clone();
    assert_eq!(copy.sequence_id, SequenceId(3));
    assert_eq!(copy.event_type, "Deposited");
    assert_eq!(copy.payload, vec![1, 2]);
    let s = SnapshotEntry {
        sequence_id: SequenceId(9),
        payload: vec![7],
    };
    assert_eq!(s.clone().sequence_id, SequenceId(9));
    assert!(format!("{s:?}").contains("SnapshotEntry"));
}

#[test]
fn the_four_dactor_errors_keep_their_display_texts() {
    assert_eq!(
        PersistError::StorageUnavailable("db down".into()).to_string(),
        "storage unavailable: db down"
    );
    assert_eq!(
        PersistError::SerializationFailed("bad".into()).to_string(),
        "serialization failed: bad"
    );
    assert_eq!(
        PersistError::CorruptEntry {
            sequence_id: SequenceId(4),
            detail: "checksum".into()
        }
        .to_string(),
        "corrupt entry at SequenceId(4): checksum"
    );
    assert_eq!(
        PersistError::NotConfigured.to_string(),
        "no storage provider configured"
    );
    let as_std: Box<dyn std::error::Error> = Box::new(PersistError::NotConfigured);
    assert_eq!(as_std.to_string(), "no storage provider configured");
}

#[test]
fn a_conflict_names_the_persistence_id_and_sequence() {
    let text = PersistError::SequenceConflict {
        persistence_id: PersistenceId::new("Counter", "c1"),
        sequence_id: SequenceId(5),
    }
    .to_string();
    assert!(text.contains("Counter:c1"), "{text}");
    assert!(text.contains("SequenceId(5)"), "{text}");
}

#[test]
fn policies_and_configs_default_to_stop_and_off() {
    assert_eq!(
        RecoveryFailurePolicy::default(),
        RecoveryFailurePolicy::Stop
    );
    assert_eq!(PersistFailurePolicy::default(), PersistFailurePolicy::Stop);
    let snap = SnapshotConfig::default();
    assert_eq!(snap.every_n_events, None);
    assert_eq!(snap.interval, None);
    assert_eq!(snap.retention_count, None);
    assert!(!snap.delete_events_on_snapshot);
    let save = SaveConfig::default();
    assert_eq!(save.every_n_messages, None);
    assert_eq!(save.interval, None);
}

#[test]
fn a_persistent_actor_defaults_to_stop_policies() {
    let c = super::common::Settings::new("p");
    assert_eq!(c.recovery_failure_policy(), RecoveryFailurePolicy::Stop);
    assert_eq!(c.persist_failure_policy(), PersistFailurePolicy::Stop);
}

#[test]
fn backoff_doubles_and_caps_at_thirty_seconds() {
    let mut b = Backoff::new(Some(6), Duration::from_secs(9));
    let delays: Vec<_> = std::iter::from_fn(|| b.next_delay()).collect();
    assert_eq!(
        delays,
        [9, 18, 30, 30, 30].map(Duration::from_secs).to_vec(),
        "six tries in all means five waits"
    );
    let mut default = Backoff::new(None, Duration::from_millis(1));
    assert_eq!(std::iter::from_fn(|| default.next_delay()).count(), 2);
    let mut once = Backoff::new(Some(0), Duration::from_millis(1));
    assert_eq!(
        once.next_delay(),
        None,
        "zero tries still means the first one only"
    );
}
