//! Turning rows back into entries, each checked against its checksum before
//! it is handed out.

use tokio_postgres::Row;

use super::checksum;
use crate::{JournalBounds, JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

/// One journal row (`sequence, event_type, payload, checksum`), checked.
pub(super) fn event(row: &Row, pid: &PersistenceId) -> Result<JournalEntry, PersistError> {
    let sequence: i64 = row.try_get(0).map_err(|e| PersistError::CorruptEntry {
        sequence_id: SequenceId::ZERO,
        detail: format!("an event of `{pid}` has no readable sequence: {e}"),
    })?;
    let corrupt = |detail: String| PersistError::CorruptEntry {
        sequence_id: SequenceId(sequence),
        detail,
    };
    let event_type: &str = row.try_get(1).map_err(|e| {
        corrupt(format!(
            "the event type of `{pid}` at {sequence} cannot be read: {e}"
        ))
    })?;
    let payload: &[u8] = row.try_get(2).map_err(|e| {
        corrupt(format!(
            "the payload of event `{event_type}` of `{pid}` at {sequence} cannot be read: {e}"
        ))
    })?;
    let stored: i64 = row.try_get(3).map_err(|e| {
        corrupt(format!(
            "the checksum of event `{event_type}` of `{pid}` at {sequence} cannot be read: {e}"
        ))
    })?;
    let expected = checksum::event(pid.as_str(), sequence, event_type, payload);
    if stored != i64::from(expected) {
        return Err(corrupt(format!(
            "event `{event_type}` of `{pid}` at {sequence} fails its checksum \
             (stored {stored}, computed {expected}): the row is damaged"
        )));
    }
    Ok(JournalEntry {
        sequence_id: SequenceId(sequence),
        event_type: event_type.to_owned(),
        payload: payload.to_vec(),
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

/// One state row (`payload, checksum`), checked.
pub(super) fn state(row: &Row, pid: &PersistenceId) -> Result<Vec<u8>, PersistError> {
    let corrupt = |detail: String| PersistError::CorruptState {
        persistence_id: pid.clone(),
        detail,
    };
    let payload: &[u8] = row
        .try_get(0)
        .map_err(|e| corrupt(format!("the payload cannot be read: {e}")))?;
    let stored: i64 = row
        .try_get(1)
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
