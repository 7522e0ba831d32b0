//! Identity of persistent actors and the entries they store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Uniquely identifies one persistent actor's journal, snapshots and state.
///
/// By convention it is `"{entity_type}:{entity_id}"`; see [`PersistenceId::new`].
///
/// # Examples
///
/// ```
/// use dactor_persist::PersistenceId;
///
/// let id = PersistenceId::new("BankAccount", "acct-123");
/// assert_eq!(id.0, "BankAccount:acct-123");
/// assert_eq!(id.to_string(), "BankAccount:acct-123");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PersistenceId(pub String);

impl PersistenceId {
    /// Creates a persistence id from an entity type and an entity id, joined by `:`.
    pub fn new(entity_type: &str, entity_id: &str) -> Self {
        let mut id = String::with_capacity(entity_type.len() + 1 + entity_id.len());
        id.push_str(entity_type);
        id.push(':');
        id.push_str(entity_id);
        Self(id)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersistenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Position of an event in one persistence id's journal.
///
/// Sequence 0 means "nothing persisted yet"; the first event is 1.
///
/// # Examples
///
/// ```
/// use dactor_persist::SequenceId;
///
/// assert_eq!(SequenceId(0).next(), SequenceId(1));
/// assert!(SequenceId(1) < SequenceId(2));
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct SequenceId(pub i64);

impl SequenceId {
    /// The sequence before the first event: nothing persisted yet.
    pub const ZERO: SequenceId = SequenceId(0);

    /// Returns the next sequence id (this one plus one).
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// One stored event, as read back from a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position of the event in its journal.
    pub sequence_id: SequenceId,
    /// Stable name of the event's type or variant, as given when it was written.
    pub event_type: String,
    /// The serialized event.
    pub payload: Vec<u8>,
}

/// One stored snapshot, taken at `sequence_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The sequence of the last event the snapshot includes.
    pub sequence_id: SequenceId,
    /// The serialized state.
    pub payload: Vec<u8>,
}
