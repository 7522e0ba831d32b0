//! The storage traits every backend implements, and the backends.
//!
//! # The contract every store keeps
//!
//! These rules are stricter than dactor 0.2.0's in-memory store, and every
//! backend of this crate passes the same conformance suite for them:
//!
//! - **No overwrite.** A write at a (persistence id, sequence) that already holds
//!   an event, or held one that [`delete_events_to`](JournalStorage::delete_events_to)
//!   removed, is refused with [`PersistError::SequenceConflict`] naming both;
//!   nothing is overwritten. A batch containing such an entry (or the same
//!   sequence twice) stores none of its entries. The key (persistence id,
//!   sequence) is the single-writer fence: of two writers racing for a
//!   sequence, exactly one wins.
//! - **One range of sequences.** Events and snapshots live at sequences 1 to
//!   [`SequenceId::LAST`] (`i64::MAX - 1`, the last with a successor); a
//!   write outside it is refused with [`PersistError::InvalidInput`] and
//!   nothing is stored.
//! - **The highest sequence never goes down.** After
//!   [`delete_events_to`](JournalStorage::delete_events_to) removes some or all
//!   events, [`read_highest_sequence`](JournalStorage::read_highest_sequence)
//!   still returns the highest ever written, so a recovered actor never reuses a
//!   sequence.
//! - **Snapshots are ordered by sequence.**
//!   [`load_latest_snapshot`](SnapshotStorage::load_latest_snapshot) returns the
//!   one with the highest sequence, not the last one written; saving at a
//!   sequence that already has a snapshot replaces it.
//! - **Bounds are reported.** [`JournalStorage::read_bounds`] says how far
//!   events were deleted and the highest sequence ever written, so that a
//!   reader can prove it got every event in between (see [`JournalBounds`]).
//!
//! # Reading back
//!
//! Nothing read back is trusted: the durable stores checksum every row
//! (covering its persistence id, sequence, type and payload), and recovery
//! checks that the events it applies are exactly those the store's bounds
//! promise, contiguous and in order. Damage is reported as
//! [`PersistError::CorruptEntry`], [`PersistError::CorruptSnapshot`],
//! [`PersistError::CorruptState`] or [`PersistError::StoreDamaged`], never as
//! a wrong state.

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{JournalEntry, Metadata, PersistError, PersistenceId, SequenceId, SnapshotEntry};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod checksum;
pub(crate) mod complete;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "nats"))]
mod extras;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod in_flight;
mod memory;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
mod provider;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod verify;

pub use memory::{InMemoryStorage, InMemoryStorageProvider};
#[cfg(feature = "nats")]
pub use nats::{NatsServer, NatsStorage, NatsStorageBuilder, NatsStorageProvider};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStorage, PostgresStorageBuilder, PostgresStorageProvider};
pub use provider::SharedStoreProvider;
#[cfg(feature = "sqlite")]
pub use sqlite::{
    Durability, SqliteStats, SqliteStorage, SqliteStorageBuilder, SqliteStorageProvider,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use verify::{DamagedRow, EngineCheck, JournalReport, Problem, VerifyReport};

/// The most events the default
/// [`read_events_each`](JournalStorage::read_events_each) reads at a time:
/// a store without its own holds at most this many entries at once.
pub const EACH_PAGE: usize = 8192;

/// What [`JournalStorage::read_events_each`] hands each event to: it
/// answers whether to go on, or an error that stops the read.
pub type EntrySink<'a> =
    dyn for<'e> FnMut(&'e JournalEntry) -> Result<ControlFlow<()>, PersistError> + Send + 'a;

/// The event journal of event-sourced actors.
#[async_trait]
pub trait JournalStorage: Send + Sync + 'static {
    /// Appends one event at `sequence_id`.
    ///
    /// # Errors
    ///
    /// [`PersistError::SequenceConflict`] when the sequence already holds an
    /// event (nothing is overwritten); [`PersistError::InvalidInput`] for a
    /// sequence below 1; [`PersistError::StorageUnavailable`] when the store
    /// cannot be reached.
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError>;

    /// Appends several events atomically: all of them are stored, or none.
    ///
    /// # Errors
    ///
    /// As [`write_event`](JournalStorage::write_event); one conflicting entry
    /// fails the whole batch.
    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError>;

    /// Appends events with their tags and metadata, atomically like
    /// [`write_event_batch`](JournalStorage::write_event_batch): all of them
    /// are stored, or none. What the runtime's `Context` writes with.
    ///
    /// The default stores events without tags or metadata through
    /// `write_event` / `write_event_batch`, and refuses the others: a store
    /// that keeps them (every built-in one) overrides it.
    ///
    /// # Errors
    ///
    /// As [`write_event_batch`](JournalStorage::write_event_batch), and
    /// [`PersistError::InvalidInput`] from a store that keeps no tags or
    /// metadata when some are given.
    async fn write_events(
        &self,
        persistence_id: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        if events.iter().any(|e| !e.is_plain()) {
            return Err(PersistError::InvalidInput {
                persistence_id: persistence_id.clone(),
                detail: "this store keeps no tags or metadata (it does not override \
                         JournalStorage::write_events)"
                    .into(),
            });
        }
        match events {
            [one] => {
                self.write_event(persistence_id, one.sequence_id, one.event_type, one.payload)
                    .await
            }
            _ => {
                let entries: Vec<(SequenceId, &str, &[u8])> = events
                    .iter()
                    .map(|e| (e.sequence_id, e.event_type, e.payload))
                    .collect();
                self.write_event_batch(persistence_id, &entries).await
            }
        }
    }

    /// Reads every event with sequence `>= from_sequence`, in ascending order.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`], or [`PersistError::CorruptEntry`]
    /// when a stored event is damaged.
    async fn read_events(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError>;

    /// Reads the next events with sequence `>= from_sequence`, ascending, about
    /// `max` of them: one page of a long journal, so that a replay need not
    /// hold every stored entry at once. An empty page means the end.
    ///
    /// A page is always a prefix of what [`read_events`](JournalStorage::read_events)
    /// would return. The default returns all of it (a store that cannot bound
    /// its reads may); backends override it with a bounded query.
    ///
    /// # Errors
    ///
    /// As [`read_events`](JournalStorage::read_events).
    async fn read_events_page(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        let _ = max;
        self.read_events(persistence_id, from_sequence).await
    }

    /// Reads a page like [`read_events_page`](JournalStorage::read_events_page)
    /// (about `max` events), handing each event to `each` as it is read
    /// instead of collecting the page: recovery decodes events while the store is still reading the
    /// rest, and never holds a page of payloads. The entry lent to `each` is
    /// valid for that call only (a store may reuse it for the next event).
    ///
    /// `each` may stop the read early with [`ControlFlow::Break`], or with an
    /// error, which the read returns as it is. Answers how many events were
    /// handed to `each`: none means nothing is stored from `from_sequence` on.
    /// A store that retries a read (after a transient error) resumes after
    /// the last event it handed out, never handing one out twice.
    ///
    /// The default reads one page of at most [`EACH_PAGE`] events through
    /// [`read_events_page`](JournalStorage::read_events_page) and hands out
    /// every event of it, one by one: a page may hold more than `max` (a
    /// store may answer whole records) or fewer, as for `read_events_page`.
    /// Readers check what they are handed, all of it: an event above the
    /// journal's highest sequence is damage even where `max` ended earlier.
    ///
    /// # Errors
    ///
    /// As [`read_events`](JournalStorage::read_events), and whatever `each`
    /// returns.
    async fn read_events_each(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
        each: &mut EntrySink<'_>,
    ) -> Result<usize, PersistError> {
        let page = self
            .read_events_page(persistence_id, from_sequence, max.min(EACH_PAGE))
            .await?;
        let mut handed = 0;
        for entry in &page {
            handed += 1;
            if each(entry)?.is_break() {
                break;
            }
        }
        Ok(handed)
    }

    /// The highest sequence ever written for the id (even if since deleted), or
    /// `None` when nothing was ever written.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`].
    async fn read_highest_sequence(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError>;

    /// How far events of `persistence_id` were deleted and the highest
    /// sequence ever written: the events a complete read must return are
    /// exactly `deleted_to + 1 ..= highest`.
    ///
    /// The default answers the highest from
    /// [`read_highest_sequence`](JournalStorage::read_highest_sequence) and
    /// `deleted_to` 0: correct for a store that never deletes. A store that
    /// implements [`delete_events_to`](JournalStorage::delete_events_to) must
    /// override it, or recovery reports the deleted events as missing.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`], or [`PersistError::CorruptEntry`]
    /// when the store's record of them is damaged.
    async fn read_bounds(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<JournalBounds, PersistError> {
        let highest = self
            .read_highest_sequence(persistence_id)
            .await?
            .unwrap_or(SequenceId::ZERO);
        Ok(JournalBounds {
            deleted_to: SequenceId::ZERO,
            highest,
        })
    }

    /// Removes every event with sequence `<= to_sequence`. The highest sequence
    /// is kept.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`].
    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError>;
}

/// One event to write with [`JournalStorage::write_events`]: the journal
/// entry, its tags and its metadata.
///
/// # Examples
///
/// ```
/// use dactor_persist::{Metadata, NewEvent, SequenceId};
///
/// let tags = vec!["checkout".to_owned()];
/// let meta = Metadata::new().with_correlation_id("order-7");
/// let event = NewEvent::new(SequenceId(3), "CheckedOut", b"...").tags(&tags).metadata(&meta);
/// assert_eq!(event.tags, ["checkout"]);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct NewEvent<'a> {
    /// Where it goes in its journal.
    pub sequence_id: SequenceId,
    /// Its stored type name.
    pub event_type: &'a str,
    /// The encoded event.
    pub payload: &'a [u8],
    /// Its tags (none by default).
    pub tags: &'a [String],
    /// Its metadata (none by default).
    pub metadata: Option<&'a Metadata>,
}

impl<'a> NewEvent<'a> {
    /// An event without tags or metadata.
    pub fn new(sequence_id: SequenceId, event_type: &'a str, payload: &'a [u8]) -> Self {
        Self {
            sequence_id,
            event_type,
            payload,
            tags: &[],
            metadata: None,
        }
    }

    /// With these tags.
    #[must_use]
    pub fn tags(mut self, tags: &'a [String]) -> Self {
        self.tags = tags;
        self
    }

    /// With this metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: &'a Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// True without tags and metadata.
    pub fn is_plain(&self) -> bool {
        self.tags.is_empty() && self.metadata.is_none_or(Metadata::is_empty)
    }

    /// The metadata, when there is some.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "nats"))]
    pub(crate) fn some_metadata(&self) -> Option<&'a Metadata> {
        self.metadata.filter(|m| !m.is_empty())
    }
}

/// What a journal holds for one persistence id, as its store reports it:
/// events `deleted_to + 1 ..= highest`, every one of them. Both are 0 when
/// nothing was ever written.
///
/// # Examples
///
/// ```
/// use dactor_persist::*;
/// use dactor_persist::storage::JournalBounds;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryStorage::new();
/// let id = PersistenceId::new("Account", "a-1");
/// for seq in 1..=5 {
///     store.write_event(&id, SequenceId(seq), "E", b"").await?;
/// }
/// store.delete_events_to(&id, SequenceId(2)).await?;
/// let bounds = store.read_bounds(&id).await?;
/// assert_eq!(bounds, JournalBounds { deleted_to: SequenceId(2), highest: SequenceId(5) });
/// assert_eq!(bounds.first_retained(), SequenceId(3));
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalBounds {
    /// Events up to here were deleted by
    /// [`delete_events_to`](JournalStorage::delete_events_to) (0: none).
    pub deleted_to: SequenceId,
    /// The highest sequence ever written (0: none), kept when events are deleted.
    pub highest: SequenceId,
}

impl JournalBounds {
    /// The first sequence the journal still holds an event at (when
    /// `highest` is at least that).
    pub fn first_retained(&self) -> SequenceId {
        self.deleted_to.next()
    }
}

/// Snapshots of event-sourced actors' state.
#[async_trait]
pub trait SnapshotStorage: Send + Sync + 'static {
    /// Saves a snapshot taken at `sequence_id`, replacing one saved at the same
    /// sequence.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`].
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError>;

    /// The snapshot with the highest sequence, if any.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`], or an error naming the snapshot when
    /// it is damaged.
    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError>;

    /// Removes the snapshots with sequence `< sequence_id`.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`].
    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError>;
}

/// Whole-state storage of durable-state actors.
#[async_trait]
pub trait StateStorage: Send + Sync + 'static {
    /// Saves the state, replacing the previous one.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`].
    async fn save_state(
        &self,
        persistence_id: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError>;

    /// The saved state, if any.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`], or an error naming the id when the
    /// stored state is damaged.
    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError>;

    /// Deletes the saved state (nothing happens when there is none).
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`].
    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError>;
}

/// Finds the stores of each persistent actor. A runtime asks it once per actor;
/// `None` means that kind of store is not configured
/// ([`PersistError::NotConfigured`]).
pub trait StorageProvider: Send + Sync + 'static {
    /// The journal for `id`.
    fn journal(&self, id: &PersistenceId) -> Option<Arc<dyn JournalStorage>>;

    /// The snapshot store for `id`.
    fn snapshots(&self, id: &PersistenceId) -> Option<Arc<dyn SnapshotStorage>>;

    /// The state store for `id`.
    fn state(&self, id: &PersistenceId) -> Option<Arc<dyn StateStorage>>;
}

/// Checks the parts of a write that every store refuses the same way: a
/// sequence out of range, and the same sequence twice in one batch.
pub(crate) fn validate_batch(
    persistence_id: &PersistenceId,
    entries: &[(SequenceId, &str, &[u8])],
) -> Result<(), PersistError> {
    let mut seen: Vec<SequenceId> = Vec::with_capacity(entries.len());
    for (seq, _, _) in entries {
        validate_sequence(persistence_id, *seq)?;
        seen.push(*seq);
    }
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|w| w[0] == w[1]) {
        return Err(PersistError::SequenceConflict {
            persistence_id: persistence_id.clone(),
            sequence_id: pair[0],
        });
    }
    Ok(())
}

/// Refuses an event's sequence outside 1 ..= [`SequenceId::LAST`].
pub(crate) fn validate_sequence(
    persistence_id: &PersistenceId,
    sequence_id: SequenceId,
) -> Result<(), PersistError> {
    check_range(persistence_id, sequence_id, "events")
}

/// Refuses a snapshot's sequence outside 1 ..= [`SequenceId::LAST`].
pub(crate) fn validate_snapshot_sequence(
    persistence_id: &PersistenceId,
    sequence_id: SequenceId,
) -> Result<(), PersistError> {
    check_range(persistence_id, sequence_id, "snapshots")
}

fn check_range(
    persistence_id: &PersistenceId,
    sequence_id: SequenceId,
    what: &str,
) -> Result<(), PersistError> {
    if sequence_id.is_storable() {
        return Ok(());
    }
    let detail = if sequence_id.0 < 1 {
        format!("{what} are numbered from 1, got {sequence_id:?}")
    } else {
        format!(
            "{what} are numbered up to {:?} (a sequence with a successor), got {sequence_id:?}",
            SequenceId::LAST
        )
    };
    Err(PersistError::InvalidInput {
        persistence_id: persistence_id.clone(),
        detail,
    })
}
