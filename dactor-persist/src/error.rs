//! The one error type of every persistence operation.

use std::fmt;

use crate::{PersistenceId, SequenceId};

/// Errors from persistence operations.
///
/// The first four variants are those of dactor 0.2.0 and keep their meaning and
/// Display text. The others name situations a caller can act on differently:
/// a [`SequenceConflict`](PersistError::SequenceConflict) means another writer
/// owns the persistence id, which no retry will fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistError {
    /// The backing store is unreachable or returned an error.
    StorageUnavailable(String),
    /// Serializing or deserializing a payload failed.
    SerializationFailed(String),
    /// A stored entry is damaged or cannot be decoded.
    CorruptEntry {
        /// Sequence of the entry.
        sequence_id: SequenceId,
        /// What was wrong with it, naming the persistence id.
        detail: String,
    },
    /// No storage provider (or no store of the needed kind) is configured.
    NotConfigured,
    /// A write at a sequence that already holds an event was refused; nothing was
    /// overwritten. Another writer has persisted for this id: the writer that got
    /// this error is no longer the single writer and must stop.
    SequenceConflict {
        /// The journal written to.
        persistence_id: PersistenceId,
        /// The sequence that was already taken.
        sequence_id: SequenceId,
    },
    /// A request was malformed (for example a sequence below 1); nothing was stored.
    InvalidInput {
        /// The persistence id the request named.
        persistence_id: PersistenceId,
        /// What was wrong.
        detail: String,
    },
    /// A stored snapshot is damaged (its checksum does not match, or it cannot be
    /// read back). Snapshots are a cache: recovery ignores a corrupt snapshot and
    /// replays the journal instead.
    CorruptSnapshot {
        /// The snapshot's persistence id.
        persistence_id: PersistenceId,
        /// The snapshot's sequence.
        sequence_id: SequenceId,
        /// What was wrong with it.
        detail: String,
    },
    /// A stored durable state is damaged (its checksum does not match).
    CorruptState {
        /// The state's persistence id.
        persistence_id: PersistenceId,
        /// What was wrong with it.
        detail: String,
    },
    /// The store itself is damaged: the database engine reports a damaged file,
    /// page or index ("database disk image is malformed" from SQLite,
    /// `XX001`/`XX002` from PostgreSQL). Not transient: trying again reads the
    /// same damage. `store` names the file or table, `detail` what the engine
    /// said; run the store's `verify()` to see what was lost.
    StoreDamaged {
        /// The damaged file or table.
        store: String,
        /// What was being done, and what the engine reported.
        detail: String,
    },
    /// The store cannot be used as it is: a file that is not a database, a
    /// schema newer than this code knows, a setting out of range. Nothing was
    /// changed; the message names the store and the problem.
    IncompatibleStore(String),
    /// A snapshot (or a durable state) was written by an incompatible version
    /// of the state type.
    ///
    /// Returned by `restore_snapshot`; recovery then ignores the snapshot and
    /// replays the journal from its start instead. Returned by
    /// `restore_state` too: a durable state has no journal to fall back on,
    /// so its recovery fails. The message says which it was ("the stored
    /// state of ..." or "the stored snapshot of ...") and what to declare so
    /// that the old layout reads back (see the evolution guide in
    /// [`codec`](crate::codec)).
    SnapshotIncompatible(String),
    /// A stored event was written for another layout of its type: a variant
    /// this build does not have, fields it does not expect, fewer fields
    /// than it needs, or a field whose type changed. A planned change that
    /// was not declared, not damage (a damaged row is
    /// [`CorruptEntry`](PersistError::CorruptEntry)); `detail` names the
    /// variant, the fields found against those expected, and the remedy.
    IncompatibleEvent {
        /// The entry's sequence (`SequenceId::ZERO` when a payload was
        /// decoded outside a journal).
        sequence_id: SequenceId,
        /// What did not fit, and what to declare.
        detail: String,
    },
    /// The actor is not running (it stopped, failed recovery, or was never started).
    ActorStopped {
        /// The actor's persistence id.
        persistence_id: PersistenceId,
        /// Why it stopped.
        reason: String,
    },
    /// An actor with this persistence id is already running in this runtime.
    AlreadyRunning(PersistenceId),
    /// The actor's mailbox is full (from `try_tell`; `tell` waits instead).
    MailboxFull(PersistenceId),
    /// The handler of this message panicked; a supervised actor was restarted
    /// with its state recovered from storage (what it had not persisted is
    /// gone), an unsupervised one stopped.
    HandlerPanicked {
        /// The actor's persistence id.
        persistence_id: PersistenceId,
        /// The panic's message.
        detail: String,
    },
    /// A projection's stored offset was not the one this instance last saw:
    /// another instance of the projection advanced it (or an operator set
    /// it). Nothing was saved; this instance must stop and load the offset
    /// again.
    OffsetConflict {
        /// The projection's name.
        projection: String,
        /// The offset this instance expected (`none`: the start).
        expected: String,
        /// The offset stored.
        found: String,
    },
    /// A projection cannot run, or stopped: a bad name, a handler that kept
    /// failing under a `Stop` policy, a store that cannot host it.
    ProjectionFailed {
        /// The projection's name.
        projection: String,
        /// What happened, naming the event (persistence id and sequence)
        /// where there was one.
        detail: String,
    },
}

impl PersistError {
    /// True for errors that may pass if the same operation is tried again
    /// (the store was unreachable); false for conflicts, bad input and damaged
    /// data, which a retry reads or writes the same way.
    pub fn is_transient(&self) -> bool {
        matches!(self, PersistError::StorageUnavailable(_))
    }

    /// The error for a persistence id that has used up its sequences: the
    /// next event would come after [`SequenceId::LAST`].
    pub(crate) fn sequence_exhausted(persistence_id: &PersistenceId, at: SequenceId) -> Self {
        PersistError::InvalidInput {
            persistence_id: persistence_id.clone(),
            detail: format!(
                "sequence space exhausted: the journal is at {at:?} and no sequence after \
                 {:?} can be stored",
                SequenceId::LAST
            ),
        }
    }

    /// A journal that is not what its store says it holds: `first_missing` is
    /// the first sequence recovery needed and did not get.
    pub(crate) fn incomplete_journal(
        persistence_id: &PersistenceId,
        first_missing: SequenceId,
        why: impl fmt::Display,
    ) -> Self {
        PersistError::CorruptEntry {
            sequence_id: first_missing,
            detail: format!(
                "the journal of `{persistence_id}` is incomplete: event {} is missing ({why}); \
                 rows were removed or damaged behind the store's back",
                first_missing.0
            ),
        }
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StorageUnavailable(msg) => write!(f, "storage unavailable: {msg}"),
            Self::SerializationFailed(msg) => write!(f, "serialization failed: {msg}"),
            Self::CorruptEntry {
                sequence_id,
                detail,
            } => write!(f, "corrupt entry at {sequence_id:?}: {detail}"),
            Self::NotConfigured => f.write_str("no storage provider configured"),
            Self::SequenceConflict {
                persistence_id,
                sequence_id,
            } => write!(
                f,
                "sequence conflict: `{persistence_id}` already has an event at {sequence_id:?} \
                 (another writer persisted for this id)"
            ),
            Self::InvalidInput {
                persistence_id,
                detail,
            } => write!(f, "invalid request for `{persistence_id}`: {detail}"),
            Self::CorruptSnapshot {
                persistence_id,
                sequence_id,
                detail,
            } => write!(
                f,
                "corrupt snapshot of `{persistence_id}` at {sequence_id:?}: {detail}"
            ),
            Self::CorruptState {
                persistence_id,
                detail,
            } => write!(f, "corrupt state of `{persistence_id}`: {detail}"),
            Self::StoreDamaged { store, detail } => {
                write!(f, "damaged store {store}: {detail}")
            }
            Self::IncompatibleStore(msg) => write!(f, "incompatible store: {msg}"),
            Self::OffsetConflict {
                projection,
                expected,
                found,
            } => write!(
                f,
                "offset conflict: projection `{projection}` expected its offset at {expected} \
                 but it is at {found} (another instance advanced it)"
            ),
            Self::ProjectionFailed { projection, detail } => {
                write!(f, "projection `{projection}` failed: {detail}")
            }
            Self::SnapshotIncompatible(msg) => write!(f, "incompatible layout: {msg}"),
            Self::IncompatibleEvent {
                sequence_id,
                detail,
            } => write!(f, "incompatible event at {sequence_id:?}: {detail}"),
            Self::ActorStopped {
                persistence_id,
                reason,
            } => write!(f, "actor `{persistence_id}` is stopped: {reason}"),
            Self::AlreadyRunning(id) => {
                write!(f, "an actor with persistence id `{id}` is already running")
            }
            Self::HandlerPanicked {
                persistence_id,
                detail,
            } => write!(f, "the handler of `{persistence_id}` panicked: {detail}"),
            Self::MailboxFull(id) => write!(
                f,
                "the mailbox of `{id}` is full; retry later or use `tell`, which waits for room"
            ),
        }
    }
}

impl std::error::Error for PersistError {}
