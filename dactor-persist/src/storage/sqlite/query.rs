//! The read side of the SQLite store: events across ids in the order of the
//! log, persistence ids, and state changes, each page read in one read
//! transaction on a reader connection, so that a page and the head it
//! reports agree.
//!
//! One writer commits at a time, so the order of `events.position`
//! (AUTOINCREMENT: never reused, even after deletes) is commit order: every
//! event up to the last position committed is final, and a reader that
//! resumes after an offset misses nothing.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};

use super::read::{blob, checked_event, column, in_snapshot, shown, type_name};
use super::{checksum, sqlite_error, streams};
use crate::query::{
    EventEnvelope, EventFilter, EventPage, Offset, StateChange, StatePage, from_micros,
};
use crate::{PersistError, PersistenceId, SequenceId};

/// The columns every event query selects: the event row as
/// `read::checked_event` reads it, then its persistence id.
macro_rules! event_columns {
    () => {
        "e.sequence, e.event_type, e.payload, e.tags, e.metadata, e.checksum, e.position,
         e.written_at, s.persistence_id"
    };
}

const ALL_AFTER: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e LEFT JOIN streams s ON s.id = e.stream
     WHERE e.position > ?1 ORDER BY e.position LIMIT ?2"
);

const ENTITY_AFTER: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e JOIN streams s ON s.id = e.stream
     WHERE e.position > ?1 AND s.entity_type = ?3 ORDER BY e.position LIMIT ?2"
);

const TAG_AFTER: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", t.position FROM event_tags t
     LEFT JOIN events e ON e.position = t.position
     LEFT JOIN streams s ON s.id = e.stream
     WHERE t.tag = ?3 AND t.position > ?1 ORDER BY t.position LIMIT ?2"
);

/// The largest position ever given to an event (0 when none).
const EVENT_HEAD: &str =
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)";

const IDS: &str = "SELECT persistence_id, highest, deleted_to, checksum FROM streams
     WHERE (?1 IS NULL OR entity_type = ?1) AND (?2 IS NULL OR persistence_id > ?2)
     ORDER BY persistence_id LIMIT ?3";

const STATES_AFTER: &str = "SELECT persistence_id, position, payload, checksum, written_at
     FROM states
     WHERE position > ?1 AND (?2 IS NULL OR persistence_id = ?2
         OR (persistence_id >= ?2 || ':' AND persistence_id < ?2 || ';'))
     ORDER BY position LIMIT ?3";

const STATE_HEAD: &str = "SELECT coalesce(
         (SELECT value FROM counters WHERE name = 'state_position'), 0)";

fn head(conn: &Connection, path: &Path, sql: &str) -> Result<i64, PersistError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(|e| sqlite_error(path, "cannot read the head of the log", &e))
}

/// The head of the event log.
pub(super) fn event_head(conn: &Connection, path: &Path) -> Result<Offset, PersistError> {
    Ok(Offset::position(head(conn, path, EVENT_HEAD)?))
}

/// The head of the order of state saves.
pub(super) fn state_head(conn: &Connection, path: &Path) -> Result<Offset, PersistError> {
    Ok(Offset::position(head(conn, path, STATE_HEAD)?))
}

/// One page of events after `after` passing `filter`.
pub(super) fn events_after(
    conn: &Connection,
    path: &Path,
    filter: &EventFilter,
    after: Offset,
    max: usize,
) -> Result<EventPage, PersistError> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    in_snapshot(conn, path, || {
        let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the event log", &e);
        let (sql, key) = match filter {
            EventFilter::All => (ALL_AFTER, None),
            EventFilter::EntityType(entity) => (ENTITY_AFTER, Some(entity.as_str())),
            EventFilter::Tag(tag) => (TAG_AFTER, Some(tag.as_str())),
        };
        let mut stmt = conn.prepare_cached(sql).map_err(fail)?;
        let mut rows = match key {
            None => stmt.query(params![after.as_position(), limit]),
            Some(key) => stmt.query(params![after.as_position(), limit, key]),
        }
        .map_err(fail)?;
        let mut events = Vec::with_capacity(max.min(1024));
        let mut damaged = false;
        while let Some(row) = rows.next().map_err(fail)? {
            match envelope_of(row, path) {
                Ok(event) => events.push(event),
                // The events before the damage are delivered; the next page
                // starts at the damage, and fails there.
                Err(_) if !events.is_empty() => {
                    damaged = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        drop(rows);
        let horizon = match events.last() {
            Some(last) if damaged || events.len() >= max => last.offset,
            _ => event_head(conn, path)?,
        };
        Ok(EventPage::new(events, horizon))
    })
}

/// One row of a page of the log as an envelope, checked.
fn envelope_of(row: &rusqlite::Row<'_>, path: &Path) -> Result<EventEnvelope, PersistError> {
    if let ValueRef::Null = column(row, 6) {
        // A tag whose event is gone.
        return Err(PersistError::CorruptEntry {
            sequence_id: SequenceId::ZERO,
            detail: format!(
                "the SQLite file {} tags an event at position {} that is not stored",
                path.display(),
                shown(column(row, 9))
            ),
        });
    }
    let ValueRef::Text(pid) = column(row, 8) else {
        return Err(PersistError::CorruptEntry {
            sequence_id: SequenceId::ZERO,
            detail: format!(
                "the event at position {} of the SQLite file {} belongs to no stream: \
                 its bookkeeping is damaged",
                shown(column(row, 6)),
                path.display()
            ),
        });
    };
    let pid = PersistenceId(String::from_utf8_lossy(pid).into_owned());
    checked_event(row, 0, &pid)?.envelope(&pid, row, 0)
}

/// One page of persistence ids.
pub(super) fn persistence_ids(
    conn: &Connection,
    path: &Path,
    entity_type: Option<&str>,
    after: Option<&PersistenceId>,
    max: usize,
) -> Result<Vec<PersistenceId>, PersistError> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the persistence ids", &e);
    let mut stmt = conn.prepare_cached(IDS).map_err(fail)?;
    let mut rows = stmt
        .query(params![
            entity_type,
            after.map(PersistenceId::as_str),
            limit
        ])
        .map_err(fail)?;
    let mut ids = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        let (ValueRef::Text(pid), ValueRef::Integer(highest), ValueRef::Integer(deleted_to)) =
            (column(row, 0), column(row, 1), column(row, 2))
        else {
            return Err(PersistError::CorruptEntry {
                sequence_id: SequenceId::ZERO,
                detail: format!(
                    "a stream of the SQLite file {} has a {} where its persistence id belongs",
                    path.display(),
                    type_name(column(row, 0))
                ),
            });
        };
        let pid = PersistenceId(String::from_utf8_lossy(pid).into_owned());
        let sum = i64::from(streams::row_checksum(pid.as_str(), highest, deleted_to));
        if !matches!(column(row, 3), ValueRef::Integer(stored) if stored == sum) {
            return Err(PersistError::CorruptEntry {
                sequence_id: SequenceId::ZERO,
                detail: format!(
                    "the journal bookkeeping of `{pid}` in the SQLite file {} fails its checksum",
                    path.display()
                ),
            });
        }
        if highest > 0 {
            ids.push(pid);
        }
    }
    Ok(ids)
}

/// One page of state changes.
pub(super) fn state_changes(
    conn: &Connection,
    path: &Path,
    entity_type: Option<&str>,
    after: Offset,
    max: usize,
) -> Result<StatePage, PersistError> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    in_snapshot(conn, path, || {
        let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the state changes", &e);
        let mut stmt = conn.prepare_cached(STATES_AFTER).map_err(fail)?;
        let mut rows = stmt
            .query(params![after.as_position(), entity_type, limit])
            .map_err(fail)?;
        let mut changes = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let (ValueRef::Text(pid), ValueRef::Integer(position)) =
                (column(row, 0), column(row, 1))
            else {
                return Err(PersistError::CorruptEntry {
                    sequence_id: SequenceId::ZERO,
                    detail: format!("a state of the SQLite file {} is damaged", path.display()),
                });
            };
            let pid = PersistenceId(String::from_utf8_lossy(pid).into_owned());
            let damaged = |detail: String| PersistError::CorruptState {
                persistence_id: pid.clone(),
                detail,
            };
            let payload =
                blob(column(row, 2)).ok_or_else(|| damaged("the payload is not bytes".into()))?;
            let expected = checksum::state(pid.as_str(), payload);
            if !matches!(column(row, 3), ValueRef::Integer(sum) if sum == i64::from(expected)) {
                return Err(damaged(format!(
                    "the payload fails its checksum (stored {}, computed {expected}): the row is damaged",
                    shown(column(row, 3))
                )));
            }
            let written_at = match column(row, 4) {
                ValueRef::Integer(micros) => micros,
                _ => 0,
            };
            changes.push(StateChange {
                persistence_id: pid.clone(),
                offset: Offset::position(position),
                payload: payload.to_vec(),
                timestamp: from_micros(written_at),
            });
        }
        drop(rows);
        let horizon = match changes.last() {
            Some(last) if changes.len() >= max => last.offset,
            _ => state_head(conn, path)?,
        };
        Ok(StatePage::new(changes, horizon))
    })
}
