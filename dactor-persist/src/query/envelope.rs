//! What a query yields: [`EventEnvelope`] (and its typed form) and
//! [`StateChange`].

use std::time::SystemTime;
#[cfg(feature = "sqlite")]
use std::time::{Duration, UNIX_EPOCH};

use super::Offset;
use crate::{JournalEntry, Metadata, PersistError, PersistenceId, PersistentEvent, SequenceId};

/// One stored event as a query yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventEnvelope {
    /// Whose event it is.
    pub persistence_id: PersistenceId,
    /// Its place in that id's journal.
    pub sequence_id: SequenceId,
    /// Its place in the store's global order.
    pub offset: Offset,
    /// Its stored type name.
    pub event_type: String,
    /// The encoded event.
    pub payload: Vec<u8>,
    /// When the store wrote it (`UNIX_EPOCH` for events written before the
    /// store kept write times).
    pub timestamp: SystemTime,
    /// Its tags (none for events written without).
    pub tags: Vec<String>,
    /// Its metadata (empty for events written without).
    pub metadata: Metadata,
}

impl EventEnvelope {
    /// A key naming this event uniquely and for good, for sinks that must
    /// not apply an event twice (a projection that runs at least once hands
    /// an event again after a crash): `persistence id#sequence`. The id may
    /// hold `#` itself; the sequence after the last one is unambiguous.
    pub fn dedup_key(&self) -> String {
        format!("{}#{}", self.persistence_id, self.sequence_id.0)
    }

    /// The entity type of its persistence id (see [`PersistenceId::entity_type`]).
    pub fn entity_type(&self) -> &str {
        self.persistence_id.entity_type()
    }

    /// Decodes the payload through the entity's event type, checked against
    /// the stored type name as recovery does.
    ///
    /// # Errors
    ///
    /// [`PersistError::CorruptEntry`] naming the id and sequence when the
    /// payload does not decode as an `E`, or
    /// [`PersistError::IncompatibleEvent`] when it was written for another
    /// layout of `E`; [`PersistError::SerializationFailed`] for an old event
    /// an upcaster turns into several or none (read those with
    /// [`decode_each`](EventEnvelope::decode_each)).
    pub fn decode<E: PersistentEvent>(self) -> Result<TypedEnvelope<E>, PersistError> {
        let (pid, sequence) = (self.persistence_id.clone(), self.sequence_id);
        let mut events = self.decode_each::<E>()?;
        match (events.pop(), events.is_empty()) {
            (Some(one), true) => Ok(one),
            (last, _) => Err(PersistError::SerializationFailed(format!(
                "the event of `{pid}` at {} stands for {} events once upcast, not one: read it \
                 with `decode_each`",
                sequence.0,
                events.len() + usize::from(last.is_some())
            ))),
        }
    }

    /// Decodes the payload into the events it stands for: one, or, for an
    /// old event an upcaster turns into several or none, those, each with
    /// this envelope's id, sequence, offset, time, tags and metadata.
    ///
    /// # Errors
    ///
    /// As [`decode`](EventEnvelope::decode), but for the count.
    pub fn decode_each<E: PersistentEvent>(self) -> Result<Vec<TypedEnvelope<E>>, PersistError> {
        let mut events = Vec::with_capacity(1);
        E::decode_entry_into(&self.event_type, &self.payload, &mut events).map_err(
            |e| match e {
                PersistError::IncompatibleEvent { detail, .. } => PersistError::IncompatibleEvent {
                    sequence_id: self.sequence_id,
                    detail: format!(
                        "event `{}` of `{}`: {detail}",
                        self.event_type, self.persistence_id
                    ),
                },
                e => PersistError::CorruptEntry {
                    sequence_id: self.sequence_id,
                    detail: format!(
                        "event `{}` of `{}` does not decode: {e}",
                        self.event_type, self.persistence_id
                    ),
                },
            },
        )?;
        Ok(events
            .into_iter()
            .map(|event| TypedEnvelope {
                event,
                persistence_id: self.persistence_id.clone(),
                sequence_id: self.sequence_id,
                offset: self.offset,
                timestamp: self.timestamp,
                tags: self.tags.clone(),
                metadata: self.metadata.clone(),
            })
            .collect())
    }

    /// The journal entry inside (what recovery reads).
    pub fn to_entry(&self) -> JournalEntry {
        JournalEntry {
            sequence_id: self.sequence_id,
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// An [`EventEnvelope`] whose payload was decoded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TypedEnvelope<E> {
    /// The event.
    pub event: E,
    /// Whose event it is.
    pub persistence_id: PersistenceId,
    /// Its place in that id's journal.
    pub sequence_id: SequenceId,
    /// Its place in the store's global order.
    pub offset: Offset,
    /// When the store wrote it.
    pub timestamp: SystemTime,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its metadata.
    pub metadata: Metadata,
}

/// The newest state of one durable-state actor, as a changes query yields
/// it: a changes stream, not a log, so an id saved several times since the
/// offset appears once, with its latest state, at its latest offset; a
/// deleted state no longer appears.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange {
    /// Whose state it is.
    pub persistence_id: PersistenceId,
    /// Its place in the store's global order of state changes.
    pub offset: Offset,
    /// The encoded state.
    pub payload: Vec<u8>,
    /// When the store saved it (`UNIX_EPOCH` when unknown).
    pub timestamp: SystemTime,
}

/// Microseconds since the Unix epoch, as stored (0 before the epoch).
#[cfg(feature = "sqlite")]
pub(crate) fn to_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A stored microsecond count back to a time (the epoch for 0 or less).
#[cfg(feature = "sqlite")]
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros.max(0).unsigned_abs())
}
