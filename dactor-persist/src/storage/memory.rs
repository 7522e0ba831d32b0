//! The in-memory store: the reference every other backend is tested against.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{
    JournalBounds, JournalStorage, NewEvent, SharedStoreProvider, SnapshotStorage, StateStorage,
    validate_batch, validate_snapshot_sequence,
};
use crate::projection::store::{
    LeaseGuard, ProjectionLease, ProjectionRecord, ProjectionStore, check_name,
    conflict as offset_conflict,
};
use crate::query::{
    EventEnvelope, EventFilter, EventPage, EventQueries, Offset, StateChange, StatePage,
};
use crate::{JournalEntry, Metadata, PersistError, PersistenceId, SequenceId, SnapshotEntry};

/// One stored event.
struct Stored {
    event_type: String,
    payload: Vec<u8>,
    position: i64,
    written: SystemTime,
    tags: Vec<String>,
    metadata: Metadata,
}

/// One persistence id's journal: its events by sequence, the highest sequence
/// ever written (kept when events are deleted), and how far events were
/// deleted (those sequences are used up and never written again).
struct Journal {
    pid: Arc<PersistenceId>,
    events: BTreeMap<i64, Stored>,
    highest: i64,
    deleted_to: i64,
}

impl Journal {
    fn new(pid: &PersistenceId) -> Self {
        Self {
            pid: Arc::new(pid.clone()),
            events: BTreeMap::new(),
            highest: 0,
            deleted_to: 0,
        }
    }

    /// True when `seq` holds an event or held one that was deleted.
    fn is_taken(&self, seq: SequenceId) -> bool {
        seq.0 <= self.deleted_to || self.events.contains_key(&seq.0)
    }
}

/// One durable state, and where its last save stands in the order of saves.
struct State {
    payload: Vec<u8>,
    position: i64,
    written: SystemTime,
}

/// Everything the store holds, behind one lock so that a batch is seen whole
/// or not at all.
#[derive(Default)]
struct Inner {
    journals: HashMap<PersistenceId, Journal>,
    /// The global order of events: position to (id, sequence).
    log: BTreeMap<i64, (Arc<PersistenceId>, i64)>,
    /// The positions of the events carrying each tag.
    tags: HashMap<String, BTreeSet<i64>>,
    /// The last position given to an event (never reused).
    last_position: i64,
    snapshots: HashMap<PersistenceId, BTreeMap<i64, Vec<u8>>>,
    states: HashMap<PersistenceId, State>,
    /// The order of state saves: position to id (only the latest of each id).
    state_log: BTreeMap<i64, PersistenceId>,
    last_state_position: i64,
    projections: BTreeMap<String, ProjectionRecord>,
}

/// A journal, snapshot and state store kept in memory.
///
/// Nothing survives the process; use it in tests, or where state may be lost.
/// It keeps the full storage contract (see [`crate::storage`]), answers every
/// query of the read side ([`EventQueries`]), and is the reference the other
/// backends' conformance runs are compared with. Offsets are one counter, so
/// commit order is offset order; positions of deleted events are never
/// reused.
///
/// The lock is a `std::sync::Mutex`: every critical section is a map lookup
/// with no `.await` inside.
pub struct InMemoryStorage {
    inner: Mutex<Inner>,
    commits: watch::Sender<u64>,
    /// The projections whose lease is held.
    leases: Arc<Mutex<BTreeSet<String>>>,
}

impl Default for InMemoryStorage {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            commits: watch::Sender::new(0),
            leases: Arc::default(),
        }
    }
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

    /// Wakes live queries.
    fn committed(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
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

fn envelope(pid: &PersistenceId, seq: i64, stored: &Stored) -> EventEnvelope {
    EventEnvelope {
        persistence_id: pid.clone(),
        sequence_id: SequenceId(seq),
        offset: Offset::position(stored.position),
        event_type: stored.event_type.clone(),
        payload: stored.payload.clone(),
        timestamp: stored.written,
        tags: stored.tags.clone(),
        metadata: stored.metadata.clone(),
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
        self.write_events(
            persistence_id,
            &[NewEvent::new(sequence_id, event_type, payload)],
        )
        .await
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        let events: Vec<NewEvent<'_>> = entries
            .iter()
            .map(|(seq, event_type, payload)| NewEvent::new(*seq, event_type, payload))
            .collect();
        self.write_events(persistence_id, &events).await
    }

    async fn write_events(
        &self,
        persistence_id: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        let entries: Vec<(SequenceId, &str, &[u8])> = events
            .iter()
            .map(|e| (e.sequence_id, e.event_type, e.payload))
            .collect();
        validate_batch(persistence_id, &entries)?;
        if events.is_empty() {
            return Ok(());
        }
        let written = SystemTime::now();
        {
            let mut inner = self.lock();
            let Inner {
                journals,
                log,
                tags,
                last_position,
                ..
            } = &mut *inner;
            let journal = journals
                .entry(persistence_id.clone())
                .or_insert_with(|| Journal::new(persistence_id));
            // Check every entry before storing any: all or nothing.
            if let Some(e) = events.iter().find(|e| journal.is_taken(e.sequence_id)) {
                return Err(conflict(persistence_id, e.sequence_id));
            }
            for event in events {
                *last_position += 1;
                let position = *last_position;
                let seq = event.sequence_id.0;
                journal.events.insert(
                    seq,
                    Stored {
                        event_type: event.event_type.to_owned(),
                        payload: event.payload.to_vec(),
                        position,
                        written,
                        tags: event.tags.to_vec(),
                        metadata: event.metadata.cloned().unwrap_or_default(),
                    },
                );
                journal.highest = journal.highest.max(seq);
                log.insert(position, (journal.pid.clone(), seq));
                for tag in event.tags {
                    tags.entry(tag.clone()).or_default().insert(position);
                }
            }
        }
        self.committed();
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
            .map(|(seq, stored)| JournalEntry {
                sequence_id: SequenceId(*seq),
                event_type: stored.event_type.clone(),
                payload: stored.payload.clone(),
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
        let Inner {
            journals,
            log,
            tags,
            ..
        } = &mut *inner;
        if let Some(journal) = journals.get_mut(persistence_id) {
            // Keep everything above `to_sequence`; `highest` is untouched.
            let kept = journal.events.split_off(&to_sequence.0.saturating_add(1));
            let removed = std::mem::replace(&mut journal.events, kept);
            for stored in removed.values() {
                log.remove(&stored.position);
                for tag in &stored.tags {
                    if let Some(positions) = tags.get_mut(tag) {
                        positions.remove(&stored.position);
                    }
                }
            }
            journal.deleted_to = journal.deleted_to.max(to_sequence.0.min(journal.highest));
        }
        Ok(())
    }
}

#[async_trait]
impl EventQueries for InMemoryStorage {
    async fn read_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError> {
        let inner = self.lock();
        let from = after.as_position().saturating_add(1);
        let event_at = |position: &i64| -> Option<EventEnvelope> {
            let (pid, seq) = inner.log.get(position)?;
            let stored = inner.journals.get(&**pid)?.events.get(seq)?;
            Some(envelope(pid, *seq, stored))
        };
        let events: Vec<EventEnvelope> = match filter {
            EventFilter::All => inner
                .log
                .range(from..)
                .take(max)
                .filter_map(|(p, _)| event_at(p))
                .collect(),
            EventFilter::EntityType(entity) => inner
                .log
                .range(from..)
                .filter(|(_, (pid, _))| pid.entity_type() == entity)
                .take(max)
                .filter_map(|(p, _)| event_at(p))
                .collect(),
            EventFilter::Tag(tag) => inner
                .tags
                .get(tag)
                .map(|positions| {
                    positions
                        .range(from..)
                        .take(max)
                        .filter_map(event_at)
                        .collect()
                })
                .unwrap_or_default(),
        };
        // One writer at a time: everything up to the last position is final.
        let horizon = match events.last() {
            Some(last) if events.len() >= max => last.offset,
            _ => Offset::position(inner.last_position),
        };
        Ok(EventPage::new(events, horizon))
    }

    async fn event_head(&self) -> Result<Offset, PersistError> {
        Ok(Offset::position(self.lock().last_position))
    }

    async fn read_envelopes(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError> {
        let inner = self.lock();
        let Some(journal) = inner.journals.get(persistence_id) else {
            return Ok(Vec::new());
        };
        Ok(journal
            .events
            .range(from.0..)
            .take(max)
            .map(|(seq, stored)| envelope(persistence_id, *seq, stored))
            .collect())
    }

    async fn read_persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError> {
        let inner = self.lock();
        let mut ids: Vec<&PersistenceId> = inner
            .journals
            .iter()
            .filter(|(pid, j)| {
                j.highest > 0
                    && entity_type.is_none_or(|t| pid.entity_type() == t)
                    && after.is_none_or(|a| pid.0.as_bytes() > a.0.as_bytes())
            })
            .map(|(pid, _)| pid)
            .collect();
        ids.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(ids.into_iter().take(max).cloned().collect())
    }

    async fn read_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError> {
        let inner = self.lock();
        let from = after.as_position().saturating_add(1);
        let changes: Vec<StateChange> = inner
            .state_log
            .range(from..)
            .filter(|(_, pid)| entity_type.is_none_or(|t| pid.entity_type() == t))
            .take(max)
            .filter_map(|(position, pid)| {
                let state = inner.states.get(pid)?;
                Some(StateChange {
                    persistence_id: pid.clone(),
                    offset: Offset::position(*position),
                    payload: state.payload.clone(),
                    timestamp: state.written,
                })
            })
            .collect();
        let horizon = match changes.last() {
            Some(last) if changes.len() >= max => last.offset,
            _ => Offset::position(inner.last_state_position),
        };
        Ok(StatePage::new(changes, horizon))
    }

    async fn state_head(&self) -> Result<Offset, PersistError> {
        Ok(Offset::position(self.lock().last_state_position))
    }

    fn watch_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
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
        {
            let mut inner = self.lock();
            inner.last_state_position += 1;
            let position = inner.last_state_position;
            let state = State {
                payload: payload.to_vec(),
                position,
                written: SystemTime::now(),
            };
            if let Some(old) = inner.states.insert(persistence_id.clone(), state) {
                inner.state_log.remove(&old.position);
            }
            inner.state_log.insert(position, persistence_id.clone());
        }
        self.committed();
        Ok(())
    }

    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        Ok(self
            .lock()
            .states
            .get(persistence_id)
            .map(|s| s.payload.clone()))
    }

    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError> {
        let mut inner = self.lock();
        if let Some(old) = inner.states.remove(persistence_id) {
            inner.state_log.remove(&old.position);
        }
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

/// A projection's lease in memory: its name in the store's set while held.
struct MemoryLease {
    name: String,
    leases: Arc<Mutex<BTreeSet<String>>>,
}

impl LeaseGuard for MemoryLease {}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

#[async_trait]
impl ProjectionStore for InMemoryStorage {
    async fn load_projection(&self, name: &str) -> Result<ProjectionRecord, PersistError> {
        check_name(name)?;
        Ok(self
            .lock()
            .projections
            .get(name)
            .cloned()
            .unwrap_or_default())
    }

    async fn advance_projection(
        &self,
        name: &str,
        expected: Option<Offset>,
        to: Offset,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        let mut inner = self.lock();
        let record = inner.projections.entry(name.to_owned()).or_default();
        if record.offset != expected {
            return Err(offset_conflict(name, expected, record.offset));
        }
        record.offset = Some(to);
        Ok(())
    }

    async fn set_projection_offset(
        &self,
        name: &str,
        offset: Option<Offset>,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        self.lock()
            .projections
            .entry(name.to_owned())
            .or_default()
            .offset = offset;
        Ok(())
    }

    async fn set_projection_paused(&self, name: &str, paused: bool) -> Result<(), PersistError> {
        check_name(name)?;
        self.lock()
            .projections
            .entry(name.to_owned())
            .or_default()
            .paused = paused;
        Ok(())
    }

    async fn register_projection(
        &self,
        name: &str,
        source: &EventFilter,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        self.lock()
            .projections
            .entry(name.to_owned())
            .or_default()
            .source = Some(source.clone());
        Ok(())
    }

    async fn projection_names(&self) -> Result<Vec<String>, PersistError> {
        Ok(self.lock().projections.keys().cloned().collect())
    }

    async fn try_lease(&self, name: &str) -> Result<Option<ProjectionLease>, PersistError> {
        check_name(name)?;
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if !leases.insert(name.to_owned()) {
            return Ok(None);
        }
        Ok(Some(ProjectionLease::new(MemoryLease {
            name: name.to_owned(),
            leases: self.leases.clone(),
        })))
    }
}
