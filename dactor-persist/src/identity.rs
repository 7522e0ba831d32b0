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

    /// The entity type: the part before the first `:` (what
    /// [`PersistenceId::new`] put there), or the whole id when it has none.
    /// Queries by entity type use it.
    ///
    /// # Examples
    ///
    /// ```
    /// use dactor_persist::PersistenceId;
    ///
    /// assert_eq!(PersistenceId::new("Cart", "c-1:x").entity_type(), "Cart");
    /// assert_eq!(PersistenceId("plain".into()).entity_type(), "plain");
    /// ```
    pub fn entity_type(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(entity, _)| entity)
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

    /// The highest sequence a store accepts: `i64::MAX - 1`, the last one
    /// with a successor. Every store refuses events and snapshots above it
    /// (and below 1) with [`PersistError::InvalidInput`](crate::PersistError::InvalidInput).
    pub const LAST: SequenceId = SequenceId(i64::MAX - 1);

    /// Returns the next sequence id (this one plus one).
    ///
    /// It never overflows: at `i64::MAX` it stays there, a sequence every
    /// store refuses. Code that must tell uses [`checked_next`](SequenceId::checked_next).
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The next sequence id, or `None` when this one is `i64::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dactor_persist::SequenceId;
    ///
    /// assert_eq!(SequenceId(1).checked_next(), Some(SequenceId(2)));
    /// assert_eq!(SequenceId(i64::MAX).checked_next(), None);
    /// ```
    #[must_use]
    pub fn checked_next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }

    /// True for a sequence a store may hold an event or snapshot at:
    /// 1 to [`SequenceId::LAST`].
    pub fn is_storable(self) -> bool {
        (1..=Self::LAST.0).contains(&self.0)
    }

    /// The sequence of the next event of `persistence_id` after this one, or
    /// the "sequence space exhausted" error when there is none a store takes.
    pub(crate) fn next_for(
        self,
        persistence_id: &PersistenceId,
    ) -> Result<SequenceId, crate::PersistError> {
        match self.checked_next() {
            Some(next) if next <= Self::LAST => Ok(next),
            _ => Err(crate::PersistError::sequence_exhausted(
                persistence_id,
                self,
            )),
        }
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
