//! The reads, run on a reader connection: each is one statement, so it sees
//! one committed state of the file, and each row's checksum is verified
//! before it is handed out.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{checksum, sqlite_error};
use crate::{JournalBounds, JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

const READ_EVENTS: &str = "SELECT sequence, event_type, payload, checksum FROM journal
     WHERE persistence_id = ?1 AND sequence >= ?2 ORDER BY sequence LIMIT ?3";

const LATEST_SNAPSHOT: &str = "SELECT sequence, payload, checksum FROM snapshots
     WHERE persistence_id = ?1 ORDER BY sequence DESC LIMIT 1";

const LOAD_STATE: &str = "SELECT payload, checksum FROM states WHERE persistence_id = ?1";

/// Rows reserved up front for a page of events, whatever `limit` says.
const RESERVE: usize = 8192;

/// The bookkeeping of one id and its highest stored event: (highest,
/// deleted_to, checksum) of its `journal_meta` row, if any, and the largest
/// sequence in `journal`.
const BOUNDS: &str = "SELECT m.highest, m.deleted_to, m.checksum,
         (SELECT max(sequence) FROM journal WHERE persistence_id = ?1)
     FROM (SELECT 1) LEFT JOIN journal_meta m ON m.persistence_id = ?1";

/// Up to `limit` events of `pid` from `from` on, ascending: checked one by
/// one, and refused when the rows come back out of order.
pub(super) fn events(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
    from: i64,
    limit: i64,
) -> Result<Vec<JournalEntry>, PersistError> {
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read events", &e);
    let mut stmt = conn.prepare_cached(READ_EVENTS).map_err(fail)?;
    let mut rows = stmt
        .query(params![pid.as_str(), from, limit])
        .map_err(fail)?;
    let mut entries: Vec<JournalEntry> =
        Vec::with_capacity(usize::try_from(limit).unwrap_or(RESERVE).min(RESERVE));
    while let Some(row) = rows.next().map_err(fail)? {
        let entry = event(row, pid)?;
        let after = entries
            .last()
            .map_or(from.saturating_sub(1), |e| e.sequence_id.0);
        if entry.sequence_id.0 <= after {
            return Err(PersistError::CorruptEntry {
                sequence_id: entry.sequence_id,
                detail: format!(
                    "the SQLite file {} returned event {} of `{pid}` after {after}: its index \
                     is damaged",
                    path.display(),
                    entry.sequence_id.0
                ),
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// One journal row, checked against its checksum.
fn event(row: &Row<'_>, pid: &PersistenceId) -> Result<JournalEntry, PersistError> {
    let sequence = match column(row, 0) {
        ValueRef::Integer(seq) => seq,
        other => {
            // Without a sequence there is nothing to name but the id.
            return Err(PersistError::CorruptEntry {
                sequence_id: SequenceId::ZERO,
                detail: format!(
                    "an event of `{pid}` has a {} where its sequence belongs",
                    type_name(other)
                ),
            });
        }
    };
    let corrupt = |detail: String| PersistError::CorruptEntry {
        sequence_id: SequenceId(sequence),
        detail,
    };
    let event_type = match column(row, 1) {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|_| {
            corrupt(format!(
                "the event type of `{pid}` at {sequence} is not UTF-8"
            ))
        })?,
        other => {
            return Err(corrupt(format!(
                "the event type of `{pid}` at {sequence} is a {}, not text",
                type_name(other)
            )));
        }
    };
    let payload = blob(column(row, 2)).ok_or_else(|| {
        corrupt(format!(
            "the payload of event `{event_type}` of `{pid}` at {sequence} is a {}, not bytes",
            type_name(column(row, 2))
        ))
    })?;
    let stored = column(row, 3);
    let expected = checksum::event(pid.as_str(), sequence, event_type, payload);
    if !matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
        return Err(corrupt(format!(
            "event `{event_type}` of `{pid}` at {sequence} fails its checksum \
             (stored {}, computed {expected}): the row is damaged",
            shown(stored)
        )));
    }
    Ok(JournalEntry {
        sequence_id: SequenceId(sequence),
        event_type: event_type.to_owned(),
        payload: payload.to_vec(),
    })
}

/// How far the events of `pid` were deleted and the highest ever written,
/// from its bookkeeping row, checked: against its checksum, and against the
/// events actually stored (none may be above the highest, and events without
/// a bookkeeping row mean the row was lost).
pub(super) fn bounds(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<JournalBounds, PersistError> {
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the journal's bounds", &e);
    let mut stmt = conn.prepare_cached(BOUNDS).map_err(fail)?;
    let mut rows = stmt.query(params![pid.as_str()]).map_err(fail)?;
    let Some(row) = rows.next().map_err(fail)? else {
        return Ok(JournalBounds::default());
    };
    let damaged = |detail: String| PersistError::CorruptEntry {
        sequence_id: SequenceId::ZERO,
        detail: format!(
            "the journal bookkeeping of `{pid}` in the SQLite file {} {detail}",
            path.display()
        ),
    };
    let stored_max = match column(row, 3) {
        ValueRef::Null => None,
        ValueRef::Integer(max) => Some(max),
        other => {
            return Err(damaged(format!(
                "has a {} as its largest sequence",
                type_name(other)
            )));
        }
    };
    let (highest, deleted_to) = match (column(row, 0), column(row, 1), column(row, 2)) {
        (ValueRef::Null, ValueRef::Null, ValueRef::Null) => match stored_max {
            None => return Ok(JournalBounds::default()),
            Some(max) => {
                return Err(damaged(format!(
                    "is missing although events up to {max} are stored: it was removed or \
                     its key damaged"
                )));
            }
        },
        (ValueRef::Integer(h), ValueRef::Integer(d), stored) => {
            let expected = checksum::bounds(pid.as_str(), h, d);
            if !matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
                return Err(damaged(format!(
                    "fails its checksum (stored {}, computed {expected})",
                    shown(stored)
                )));
            }
            (h, d)
        }
        (h, d, _) => {
            return Err(damaged(format!(
                "holds a {} and a {} where its sequences belong",
                type_name(h),
                type_name(d)
            )));
        }
    };
    if let Some(max) = stored_max.filter(|max| *max > highest) {
        return Err(damaged(format!(
            "says the highest sequence is {highest} but event {max} is stored"
        )));
    }
    Ok(JournalBounds {
        deleted_to: SequenceId(deleted_to),
        highest: SequenceId(highest),
    })
}

/// The snapshot of `pid` with the highest sequence, checked.
pub(super) fn latest_snapshot(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<Option<SnapshotEntry>, PersistError> {
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the latest snapshot", &e);
    let mut stmt = conn.prepare_cached(LATEST_SNAPSHOT).map_err(fail)?;
    let mut rows = stmt.query(params![pid.as_str()]).map_err(fail)?;
    let Some(row) = rows.next().map_err(fail)? else {
        return Ok(None);
    };
    let ValueRef::Integer(sequence) = column(row, 0) else {
        return Err(PersistError::CorruptSnapshot {
            persistence_id: pid.clone(),
            sequence_id: SequenceId::ZERO,
            detail: "the snapshot's sequence is not an integer".into(),
        });
    };
    let corrupt = |detail: String| PersistError::CorruptSnapshot {
        persistence_id: pid.clone(),
        sequence_id: SequenceId(sequence),
        detail,
    };
    let payload = blob(column(row, 1)).ok_or_else(|| {
        corrupt(format!(
            "the payload is a {}, not bytes",
            type_name(column(row, 1))
        ))
    })?;
    let stored = column(row, 2);
    let expected = checksum::snapshot(pid.as_str(), sequence, payload);
    if !matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
        return Err(corrupt(format!(
            "the payload fails its checksum (stored {}, computed {expected}): the row is damaged",
            shown(stored)
        )));
    }
    Ok(Some(SnapshotEntry {
        sequence_id: SequenceId(sequence),
        payload: payload.to_vec(),
    }))
}

/// The durable state of `pid`, checked.
pub(super) fn state(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<Option<Vec<u8>>, PersistError> {
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the state", &e);
    let mut stmt = conn.prepare_cached(LOAD_STATE).map_err(fail)?;
    let checked = stmt
        .query_row(params![pid.as_str()], |row| {
            let corrupt = |detail: String| PersistError::CorruptState {
                persistence_id: pid.clone(),
                detail,
            };
            let Some(payload) = blob(column(row, 0)) else {
                return Ok(Err(corrupt(format!(
                    "the payload is a {}, not bytes",
                    type_name(column(row, 0))
                ))));
            };
            let stored = column(row, 1);
            let expected = checksum::state(pid.as_str(), payload);
            if !matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
                return Ok(Err(corrupt(format!(
                    "the payload fails its checksum (stored {}, computed {expected}): the row is damaged",
                    shown(stored)
                ))));
            }
            Ok(Ok(payload.to_vec()))
        })
        .optional()
        .map_err(fail)?;
    checked.transpose()
}

/// A column of a row this module selected: it exists, so a failure cannot
/// happen; answer NULL if it ever did, which every caller reports as damage.
pub(super) fn column<'r>(row: &'r Row<'_>, index: usize) -> ValueRef<'r> {
    row.get_ref(index).unwrap_or(ValueRef::Null)
}

/// The bytes of a BLOB column (an empty payload is a zero-length BLOB);
/// anything else is damage.
pub(super) fn blob(value: ValueRef<'_>) -> Option<&[u8]> {
    match value {
        ValueRef::Blob(bytes) => Some(bytes),
        _ => None,
    }
}

pub(super) fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "integer",
        ValueRef::Real(_) => "real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "blob",
    }
}

pub(super) fn shown(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Integer(n) => n.to_string(),
        other => type_name(other).to_owned(),
    }
}
