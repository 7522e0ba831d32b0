//! The reads, run on a reader connection: each is one statement, so it sees
//! one committed state of the file, and each row's checksum is verified
//! before it is handed out.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{checksum, unavailable, writer::HIGHEST};
use crate::{JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

const READ_EVENTS: &str = "SELECT sequence, event_type, payload, checksum FROM journal
     WHERE persistence_id = ?1 AND sequence >= ?2 ORDER BY sequence LIMIT ?3";

const LATEST_SNAPSHOT: &str = "SELECT sequence, payload, checksum FROM snapshots
     WHERE persistence_id = ?1 ORDER BY sequence DESC LIMIT 1";

const LOAD_STATE: &str = "SELECT payload, checksum FROM states WHERE persistence_id = ?1";

/// Rows reserved up front for a page of events, whatever `limit` says.
const RESERVE: usize = 8192;

/// Up to `limit` events of `pid` from `from` on, ascending.
pub(super) fn events(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
    from: i64,
    limit: i64,
) -> Result<Vec<JournalEntry>, PersistError> {
    let fail = |e: rusqlite::Error| unavailable(path, "cannot read events", &e);
    let mut stmt = conn.prepare_cached(READ_EVENTS).map_err(fail)?;
    let mut rows = stmt
        .query(params![pid.as_str(), from, limit])
        .map_err(fail)?;
    let mut entries = Vec::with_capacity(usize::try_from(limit).unwrap_or(RESERVE).min(RESERVE));
    while let Some(row) = rows.next().map_err(fail)? {
        entries.push(event(row, pid)?);
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
    let expected = checksum::event(sequence, event_type, payload);
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

/// The highest sequence ever written for `pid`, even if since deleted.
pub(super) fn highest(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<Option<SequenceId>, PersistError> {
    let highest: i64 = conn
        .prepare_cached(HIGHEST)
        .and_then(|mut stmt| stmt.query_row(params![pid.as_str()], |row| row.get(0)))
        .map_err(|e| unavailable(path, "cannot read the highest sequence", &e))?;
    Ok((highest > 0).then_some(SequenceId(highest)))
}

/// The snapshot of `pid` with the highest sequence, checked.
pub(super) fn latest_snapshot(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<Option<SnapshotEntry>, PersistError> {
    let fail = |e: rusqlite::Error| unavailable(path, "cannot read the latest snapshot", &e);
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
    let expected = checksum::snapshot(sequence, payload);
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
    let fail = |e: rusqlite::Error| unavailable(path, "cannot read the state", &e);
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
            let expected = checksum::state(payload);
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
fn column<'r>(row: &'r Row<'_>, index: usize) -> ValueRef<'r> {
    row.get_ref(index).unwrap_or(ValueRef::Null)
}

/// The bytes of a BLOB column (an empty payload is a zero-length BLOB);
/// anything else is damage.
fn blob(value: ValueRef<'_>) -> Option<&[u8]> {
    match value {
        ValueRef::Blob(bytes) => Some(bytes),
        _ => None,
    }
}

fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "integer",
        ValueRef::Real(_) => "real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "blob",
    }
}

fn shown(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Integer(n) => n.to_string(),
        other => type_name(other).to_owned(),
    }
}
