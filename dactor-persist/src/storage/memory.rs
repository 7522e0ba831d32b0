//! The in-memory store: the reference every other backend is tested against.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    JournalBounds, JournalStorage, SharedStoreProvider, SnapshotStorage, StateStorage,
    validate_batch, validate_snapshot_sequence,
};
use crate::{JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

/// One persistence id's journal: its events by sequence, the highest sequence
/// ever written (kept when events are deleted), and how far events were
/// deleted (those sequences are used up and never written again).
#[derive(Default)]
struct Journal {
    events: BTreeMap<i64, (String, Vec<u8>)>,
    highest: i64,
    deleted_to: i64,
}

impl Journal {
    /// True when `seq` holds an event or held one that was deleted.
    fn is_taken(&self, seq: SequenceId) -> bool {
        seq.0 <= self.deleted_to || self.events.contains_key(&seq.0)
    }
}

/// Everything the store holds, behind one lock so that a batch is seen whole
/// or not at all.
#[derive(Default)]
struct Inner {
    journals: HashMap<PersistenceId, Journal>,
    snapshots: HashMap<PersistenceId, BTreeMap<i64, Vec<u8>>>,
    states: HashMap<PersistenceId, Vec<u8>>,
}

/// A journal, snapshot and state store kept in memory.
///
/// Nothing survives the process; use it in tests, or where state may be lost.
/// It keeps the full storage contract (see [`crate::storage`]) and is the
/// reference the other backends' conformance runs are compared with.
///
/// The lock is a `std::sync::Mutex`: every critical section is a map lookup
/// with no `.await` inside.
#[derive(Default)]
pub struct InMemoryStorage {
    inner: Mutex<Inner>,
}

impl InMemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequences of the snapshots stored for `persistence_id`, ascending:
    /// for tests that check retention.
    pub fn snapshot_sequences(&self, persistence_id: &PersistenceId) -> Vec<SequenceId> {
        self.lock()
            .snapshots
            .get(persistence_id)
            .map(|s| s.keys().map(|k| SequenceId(*k)).collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No critical section can panic, but a poisoned lock must not take the
        // store down with it: the data is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for InMemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("InMemoryStorage")
            .field("journals", &inner.journals.len())
            .field("snapshots", &inner.snapshots.len())
            .field("states", &inner.states.len())
            .finish()
    }
}

fn conflict(persistence_id: &PersistenceId, sequence_id: SequenceId) -> PersistError {
    PersistError::SequenceConflict {
        persistence_id: persistence_id.clone(),
        sequence_id,
    }
}

#[async_trait]
impl JournalStorage for InMemoryStorage {
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.write_event_batch(persistence_id, &[(sequence_id, event_type, payload)])
            .await
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        validate_batch(persistence_id, entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let journal = inner.journals.entry(persistence_id.clone()).or_default();
        // Check every entry before storing any: all or nothing.
        if let Some((seq, _, _)) = entries.iter().find(|(seq, _, _)| journal.is_taken(*seq)) {
            return Err(conflict(persistence_id, *seq));
        }
        for (seq, event_type, payload) in entries {
            journal
                .events
                .insert(seq.0, ((*event_type).to_owned(), payload.to_vec()));
            journal.highest = journal.highest.max(seq.0);
        }
        Ok(())
    }

    async fn read_events(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        self.read_events_page(persistence_id, from_sequence, usize::MAX)
            .await
    }

    async fn read_events_page(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        let inner = self.lock();
        let Some(journal) = inner.journals.get(persistence_id) else {
            return Ok(Vec::new());
        };
        Ok(journal
            .events
            .range(from_sequence.0..)
            .take(max)
            .map(|(seq, (event_type, payload))| JournalEntry {
                sequence_id: SequenceId(*seq),
                event_type: event_type.clone(),
                payload: payload.clone(),
            })
            .collect())
    }

    async fn read_highest_sequence(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError> {
        let inner = self.lock();
        Ok(inner
            .journals
            .get(persistence_id)
            .filter(|j| j.highest > 0)
            .map(|j| SequenceId(j.highest)))
    }

    async fn read_bounds(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<JournalBounds, PersistError> {
        let inner = self.lock();
        Ok(inner
            .journals
            .get(persistence_id)
            .map(|j| JournalBounds {
                deleted_to: SequenceId(j.deleted_to),
                highest: SequenceId(j.highest),
            })
            .unwrap_or_default())
    }

    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError> {
        let mut inner = self.lock();
        if let Some(journal) = inner.journals.get_mut(persistence_id) {
            // Keep everything above `to_sequence`; `highest` is untouched.
            journal.events = journal.events.split_off(&to_sequence.0.saturating_add(1));
            journal.deleted_to = journal.deleted_to.max(to_sequence.0.min(journal.highest));
        }
        Ok(())
    }
}

#[async_trait]
impl SnapshotStorage for InMemoryStorage {
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        validate_snapshot_sequence(persistence_id, sequence_id)?;
        let mut inner = self.lock();
        inner
            .snapshots
            .entry(persistence_id.clone())
            .or_default()
            .insert(sequence_id.0, payload.to_vec());
        Ok(())
    }

    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        let inner = self.lock();
        Ok(inner
            .snapshots
            .get(persistence_id)
            .and_then(|snaps| snaps.last_key_value())
            .map(|(seq, payload)| SnapshotEntry {
                sequence_id: SequenceId(*seq),
                payload: payload.clone(),
            }))
    }

    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError> {
        let mut inner = self.lock();
        if let Some(snaps) = inner.snapshots.get_mut(persistence_id) {
            *snaps = snaps.split_off(&sequence_id.0);
        }
        Ok(())
    }
}

#[async_trait]
impl StateStorage for InMemoryStorage {
    async fn save_state(
        &self,
        persistence_id: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.lock()
            .states
            .insert(persistence_id.clone(), payload.to_vec());
        Ok(())
    }

    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        Ok(self.lock().states.get(persistence_id).cloned())
    }

    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError> {
        self.lock().states.remove(persistence_id);
        Ok(())
    }
}

/// A [`StorageProvider`](crate::StorageProvider) that hands out one [`InMemoryStorage`] for every id.
pub type InMemoryStorageProvider = SharedStoreProvider<InMemoryStorage>;

impl SharedStoreProvider<InMemoryStorage> {
    /// A provider over a new, empty store.
    pub fn new() -> Self {
        Self::default()
    }
}
