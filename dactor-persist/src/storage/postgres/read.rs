//! Turning rows back into entries, each checked against its checksum before
//! it is handed out.

use tokio_postgres::Row;

use super::{checksum, extras};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::query::{EventEnvelope, Offset};
use crate::{JournalBounds, Metadata, PersistError, PersistenceId, SequenceId, SnapshotEntry};

/// The next row of a journal read in ascending order (`sequence,
/// event_type, payload, checksum, tags, metadata`), checked, and above
/// `after`, the sequence of the row before it (or the one before the start
/// asked): a row at or below it means a damaged index.
pub(super) fn next_event<'r>(
    row: &'r Row,
    pid: &PersistenceId,
    after: i64,
    target: &str,
) -> Result<CheckedEvent<'r>, PersistError> {
    let event = checked_event(row, 0, pid)?;
    if event.sequence <= after {
        return Err(PersistError::CorruptEntry {
            sequence_id: SequenceId(event.sequence),
            detail: format!(
                "{target} returned event {} of `{pid}` after {after}: its index is damaged",
                event.sequence
            ),
        });
    }
    Ok(event)
}

/// A journal row read back and checked; tags and metadata still in their
/// stored form.
pub(super) struct CheckedEvent<'r> {
    pub(super) sequence: i64,
    pub(super) event_type: &'r str,
    pub(super) payload: &'r [u8],
    pub(super) tags: Option<&'r [u8]>,
    pub(super) metadata: Option<&'r [u8]>,
}

/// The event columns of a row from column `at` on (`sequence, event_type,
/// payload, checksum, tags, metadata`), checked against the checksum as an
/// event of `pid`.
pub(super) fn checked_event<'r>(
    row: &'r Row,
    at: usize,
    pid: &PersistenceId,
) -> Result<CheckedEvent<'r>, PersistError> {
    let sequence: i64 = row.try_get(at).map_err(|e| PersistError::CorruptEntry {
        sequence_id: SequenceId::ZERO,
        detail: format!("an event of `{pid}` has no readable sequence: {e}"),
    })?;
    let corrupt = |detail: String| PersistError::CorruptEntry {
        sequence_id: SequenceId(sequence),
        detail,
    };
    let event_type: &str = row.try_get(at + 1).map_err(|e| {
        corrupt(format!(
            "the event type of `{pid}` at {sequence} cannot be read: {e}"
        ))
    })?;
    let payload: &[u8] = row.try_get(at + 2).map_err(|e| {
        corrupt(format!(
            "the payload of event `{event_type}` of `{pid}` at {sequence} cannot be read: {e}"
        ))
    })?;
    let stored: i64 = row.try_get(at + 3).map_err(|e| {
        corrupt(format!(
            "the checksum of event `{event_type}` of `{pid}` at {sequence} cannot be read: {e}"
        ))
    })?;
    let extras = (
        row.try_get::<_, Option<&[u8]>>(at + 4),
        row.try_get::<_, Option<&[u8]>>(at + 5),
    );
    let (Ok(tags), Ok(metadata)) = extras else {
        return Err(corrupt(format!(
            "the tags or metadata of event `{event_type}` of `{pid}` at {sequence} cannot be read"
        )));
    };
    let expected =
        checksum::event_with(pid.as_str(), sequence, event_type, payload, tags, metadata);
    if stored != i64::from(expected) {
        return Err(corrupt(format!(
            "event `{event_type}` of `{pid}` at {sequence} fails its checksum \
             (stored {stored}, computed {expected}): the row is damaged"
        )));
    }
    Ok(CheckedEvent {
        sequence,
        event_type,
        payload,
        tags,
        metadata,
    })
}

/// An envelope from a row: the event columns from `at`, then `tx_id,
/// position, written_at`.
pub(super) fn envelope(
    row: &Row,
    at: usize,
    pid: &PersistenceId,
) -> Result<EventEnvelope, PersistError> {
    let event = checked_event(row, at, pid)?;
    let corrupt = |what: &str, e: String| PersistError::CorruptEntry {
        sequence_id: SequenceId(event.sequence),
        detail: format!("the {what} of event {} of `{pid}`: {e}", event.sequence),
    };
    let place = (
        row.try_get::<_, i64>(at + 6),
        row.try_get::<_, i64>(at + 7),
        row.try_get::<_, Option<SystemTime>>(at + 8),
    );
    let (Ok(tx_id), Ok(position), Ok(written_at)) = place else {
        return Err(corrupt(
            "place in the global order",
            "cannot be read".into(),
        ));
    };
    let tags = match event.tags {
        Some(bytes) => extras::decode_tags(bytes).map_err(|e| corrupt("tags", e.to_string()))?,
        None => Vec::new(),
    };
    let metadata = match event.metadata {
        Some(bytes) => Metadata::decode(bytes).map_err(|e| corrupt("metadata", e.to_string()))?,
        None => Metadata::default(),
    };
    Ok(EventEnvelope {
        persistence_id: pid.clone(),
        sequence_id: SequenceId(event.sequence),
        offset: Offset::pair(tx_id, position),
        event_type: event.event_type.to_owned(),
        payload: event.payload.to_vec(),
        timestamp: written_at.unwrap_or(UNIX_EPOCH),
        tags,
        metadata,
    })
}

/// One snapshot row (`sequence, payload, checksum`), checked.
pub(super) fn snapshot(row: &Row, pid: &PersistenceId) -> Result<SnapshotEntry, PersistError> {
    let sequence: i64 = row.try_get(0).map_err(|e| PersistError::CorruptSnapshot {
        persistence_id: pid.clone(),
        sequence_id: SequenceId::ZERO,
        detail: format!("the snapshot's sequence cannot be read: {e}"),
    })?;
    let corrupt = |detail: String| PersistError::CorruptSnapshot {
        persistence_id: pid.clone(),
        sequence_id: SequenceId(sequence),
        detail,
    };
    let payload: &[u8] = row
        .try_get(1)
        .map_err(|e| corrupt(format!("the payload cannot be read: {e}")))?;
    let stored: i64 = row
        .try_get(2)
        .map_err(|e| corrupt(format!("the checksum cannot be read: {e}")))?;
    let expected = checksum::snapshot(pid.as_str(), sequence, payload);
    if stored != i64::from(expected) {
        return Err(corrupt(format!(
            "the payload fails its checksum (stored {stored}, computed {expected}): the row is damaged"
        )));
    }
    Ok(SnapshotEntry {
        sequence_id: SequenceId(sequence),
        payload: payload.to_vec(),
    })
}

/// One state row (`payload, checksum` from column `at`), checked.
pub(super) fn state(row: &Row, pid: &PersistenceId, at: usize) -> Result<Vec<u8>, PersistError> {
    let corrupt = |detail: String| PersistError::CorruptState {
        persistence_id: pid.clone(),
        detail,
    };
    let payload: &[u8] = row
        .try_get(at)
        .map_err(|e| corrupt(format!("the payload cannot be read: {e}")))?;
    let stored: i64 = row
        .try_get(at + 1)
        .map_err(|e| corrupt(format!("the checksum cannot be read: {e}")))?;
    let expected = checksum::state(pid.as_str(), payload);
    if stored != i64::from(expected) {
        return Err(corrupt(format!(
            "the payload fails its checksum (stored {stored}, computed {expected}): the row is damaged"
        )));
    }
    Ok(payload.to_vec())
}

/// The bounds row (`highest, deleted_to, checksum holds, largest stored
/// sequence`), checked: the bookkeeping row exists once events were deleted
/// (or removed behind the store's back, which the journal's triggers
/// record), and must pass its checksum. The highest sequence is the larger
/// of the row's and the largest stored.
pub(super) fn bounds(
    row: &Row,
    pid: &PersistenceId,
    target: &str,
) -> Result<JournalBounds, PersistError> {
    let damaged = |detail: String| PersistError::CorruptEntry {
        sequence_id: SequenceId::ZERO,
        detail: format!("the journal bookkeeping of `{pid}` in {target} {detail}"),
    };
    let get = |i: usize| {
        row.try_get::<_, Option<i64>>(i)
            .map_err(|e| damaged(format!("cannot be read: {e}")))
    };
    let (highest, deleted_to, max) = (get(0)?, get(1)?, get(3)?.unwrap_or(0));
    let intact: Option<bool> = row
        .try_get(2)
        .map_err(|e| damaged(format!("cannot be read: {e}")))?;
    let (highest, deleted_to) = match (highest, deleted_to, intact) {
        (None, None, None) => (0, 0),
        (Some(h), Some(d), Some(true)) => (h, d),
        (h, d, _) => {
            return Err(damaged(format!(
                "fails its checksum (highest {h:?}, deleted to {d:?})"
            )));
        }
    };
    Ok(JournalBounds {
        deleted_to: SequenceId(deleted_to),
        highest: SequenceId(highest.max(max)),
    })
}
