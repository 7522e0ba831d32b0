//! The reads of the write side (journal pages, bounds, snapshots, states),
//! run on a reader connection; each row's checksum is verified before it is
//! handed out.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::streams::{self, Lookup};
use super::{checksum, extras, sqlite_error};
use crate::query::{EventEnvelope, Offset, from_micros};
use crate::{
    JournalBounds, JournalEntry, Metadata, PersistError, PersistenceId, SequenceId, SnapshotEntry,
};

/// One id's events, in the column order [`checked_event`] reads.
const READ_EVENTS: &str = "SELECT sequence, event_type, payload, tags, metadata, checksum
     FROM events WHERE stream = ?1 AND sequence >= ?2 ORDER BY sequence LIMIT ?3";

/// As [`READ_EVENTS`], with the columns of an envelope after them.
const READ_ENVELOPES: &str = "SELECT sequence, event_type, payload, tags, metadata, checksum,
         position, written_at
     FROM events WHERE stream = ?1 AND sequence >= ?2 ORDER BY sequence LIMIT ?3";

const MAX_SEQUENCE: &str = "SELECT max(sequence) FROM events WHERE stream = ?1";

const LATEST_SNAPSHOT: &str = "SELECT sequence, payload, checksum FROM snapshots
     WHERE persistence_id = ?1 ORDER BY sequence DESC LIMIT 1";

const LOAD_STATE: &str = "SELECT payload, checksum FROM states WHERE persistence_id = ?1";

/// Rows reserved up front for a page of events, whatever `limit` says.
const RESERVE: usize = 8192;

/// An event row read back, its checksum verified; tags and metadata still
/// in their stored form.
pub(super) struct CheckedEvent<'r> {
    pub(super) sequence: i64,
    pub(super) event_type: &'r str,
    pub(super) payload: &'r [u8],
    pub(super) tags: Option<&'r [u8]>,
    pub(super) metadata: Option<&'r [u8]>,
}

impl CheckedEvent<'_> {
    pub(super) fn entry(&self) -> JournalEntry {
        JournalEntry {
            sequence_id: SequenceId(self.sequence),
            event_type: self.event_type.to_owned(),
            payload: self.payload.to_vec(),
        }
    }

    /// The envelope, tags and metadata decoded; `position` and
    /// `written_at` are the two columns after the event's.
    pub(super) fn envelope(
        &self,
        pid: &PersistenceId,
        row: &Row<'_>,
        at: usize,
    ) -> Result<EventEnvelope, PersistError> {
        let ValueRef::Integer(position) = column(row, at + 6) else {
            return Err(PersistError::CorruptEntry {
                sequence_id: SequenceId(self.sequence),
                detail: format!(
                    "event {} of `{pid}` has no position in the log",
                    self.sequence
                ),
            });
        };
        let written_at = match column(row, at + 7) {
            ValueRef::Integer(micros) => micros,
            _ => 0,
        };
        let corrupt = |what: &str, e: PersistError| PersistError::CorruptEntry {
            sequence_id: SequenceId(self.sequence),
            detail: format!("the {what} of event {} of `{pid}`: {e}", self.sequence),
        };
        let tags = match self.tags {
            Some(bytes) => extras::decode_tags(bytes).map_err(|e| corrupt("tags", e))?,
            None => Vec::new(),
        };
        let metadata = match self.metadata {
            Some(bytes) => Metadata::decode(bytes).map_err(|e| corrupt("metadata", e))?,
            None => Metadata::default(),
        };
        Ok(EventEnvelope {
            persistence_id: pid.clone(),
            sequence_id: SequenceId(self.sequence),
            offset: Offset::position(position),
            event_type: self.event_type.to_owned(),
            payload: self.payload.to_vec(),
            timestamp: from_micros(written_at),
            tags,
            metadata,
        })
    }
}

/// The event row starting at column `at` (sequence, event_type, payload,
/// tags, metadata, checksum), checked against its checksum as an event of
/// `pid`.
pub(super) fn checked_event<'r>(
    row: &'r Row<'_>,
    at: usize,
    pid: &PersistenceId,
) -> Result<CheckedEvent<'r>, PersistError> {
    let ValueRef::Integer(sequence) = column(row, at) else {
        // Without a sequence there is nothing to name but the id.
        return Err(PersistError::CorruptEntry {
            sequence_id: SequenceId::ZERO,
            detail: format!(
                "an event of `{pid}` has a {} where its sequence belongs",
                type_name(column(row, at))
            ),
        });
    };
    let corrupt = |detail: String| PersistError::CorruptEntry {
        sequence_id: SequenceId(sequence),
        detail,
    };
    let event_type = match column(row, at + 1) {
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
    let payload = blob(column(row, at + 2)).ok_or_else(|| {
        corrupt(format!(
            "the payload of event `{event_type}` of `{pid}` at {sequence} is a {}, not bytes",
            type_name(column(row, at + 2))
        ))
    })?;
    let (tags, metadata) = (blob(column(row, at + 3)), blob(column(row, at + 4)));
    let stored = column(row, at + 5);
    let expected =
        checksum::event_with(pid.as_str(), sequence, event_type, payload, tags, metadata);
    if !matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
        return Err(corrupt(format!(
            "event `{event_type}` of `{pid}` at {sequence} fails its checksum \
             (stored {}, computed {expected}): the row is damaged",
            shown(stored)
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

/// Up to `limit` events of `pid` from `from` on, ascending, each handed to
/// `each` once checked; refused when the rows come back out of order.
fn each_event(
    conn: &Connection,
    path: &Path,
    (sql, pid): (&str, &PersistenceId),
    from: i64,
    limit: i64,
    mut each: impl FnMut(CheckedEvent<'_>, &Row<'_>) -> Result<(), PersistError>,
) -> Result<(), PersistError> {
    let stream = match streams::lookup(conn, path, pid)? {
        Lookup::Found(stream) => stream,
        Lookup::Free(_) => return Ok(()),
    };
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read events", &e);
    let mut stmt = conn.prepare_cached(sql).map_err(fail)?;
    let mut rows = stmt.query(params![stream.id, from, limit]).map_err(fail)?;
    let mut after = from.saturating_sub(1);
    while let Some(row) = rows.next().map_err(fail)? {
        let event = checked_event(row, 0, pid)?;
        if event.sequence <= after {
            return Err(PersistError::CorruptEntry {
                sequence_id: SequenceId(event.sequence),
                detail: format!(
                    "the SQLite file {} returned event {} of `{pid}` after {after}: its index \
                     is damaged",
                    path.display(),
                    event.sequence
                ),
            });
        }
        after = event.sequence;
        each(event, row)?;
    }
    Ok(())
}

fn reserve(limit: i64) -> usize {
    usize::try_from(limit).unwrap_or(RESERVE).min(RESERVE)
}

/// Runs `read` in one read transaction: every statement in it sees the same
/// committed state of the file (a stream's bookkeeping and its events agree
/// even while the writer commits).
pub(super) fn in_snapshot<T>(
    conn: &Connection,
    path: &Path,
    read: impl FnOnce() -> Result<T, PersistError>,
) -> Result<T, PersistError> {
    conn.execute_batch("BEGIN")
        .map_err(|e| sqlite_error(path, "cannot begin a read transaction", &e))?;
    let result = read();
    // A read transaction has nothing to keep: ending it cannot lose anything.
    let _ = conn.execute_batch("COMMIT");
    result
}

/// Up to `limit` events of `pid` from `from` on, ascending, checked.
pub(super) fn events(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
    from: i64,
    limit: i64,
) -> Result<Vec<JournalEntry>, PersistError> {
    let mut entries = Vec::with_capacity(reserve(limit));
    in_snapshot(conn, path, || {
        each_event(conn, path, (READ_EVENTS, pid), from, limit, |e, _| {
            entries.push(e.entry());
            Ok(())
        })
    })?;
    Ok(entries)
}

/// As [`events`], as envelopes.
pub(super) fn envelopes(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
    from: i64,
    limit: i64,
) -> Result<Vec<EventEnvelope>, PersistError> {
    let mut envelopes = Vec::with_capacity(reserve(limit));
    in_snapshot(conn, path, || {
        each_event(conn, path, (READ_ENVELOPES, pid), from, limit, |e, row| {
            envelopes.push(e.envelope(pid, row, 0)?);
            Ok(())
        })
    })?;
    Ok(envelopes)
}

/// How far the events of `pid` were deleted and the highest ever written,
/// from its stream's bookkeeping, checked: against its checksum, and against
/// the events actually stored (none may be above the highest).
pub(super) fn bounds(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<JournalBounds, PersistError> {
    in_snapshot(conn, path, || bounds_in(conn, path, pid))
}

fn bounds_in(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<JournalBounds, PersistError> {
    let stream = match streams::lookup(conn, path, pid)? {
        Lookup::Found(stream) => stream,
        Lookup::Free(_) => return Ok(JournalBounds::default()),
    };
    let stored_max: Option<i64> = conn
        .prepare_cached(MAX_SEQUENCE)
        .and_then(|mut stmt| stmt.query_row(params![stream.id], |row| row.get(0)))
        .map_err(|e| sqlite_error(path, "cannot read the highest stored sequence", &e))?;
    if let Some(max) = stored_max.filter(|max| *max > stream.highest) {
        return Err(PersistError::CorruptEntry {
            sequence_id: SequenceId(max),
            detail: format!(
                "the journal bookkeeping of `{pid}` in the SQLite file {} says the highest \
                 sequence is {} but event {max} is stored",
                path.display(),
                stream.highest
            ),
        });
    }
    Ok(JournalBounds {
        deleted_to: SequenceId(stream.deleted_to),
        highest: SequenceId(stream.highest),
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
