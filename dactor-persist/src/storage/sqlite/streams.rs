//! Streams: a persistence id as the small integer its events are stored
//! under, and its bookkeeping row.
//!
//! A stream's id is the first free slot from the *home slot* of its
//! persistence id (a 31-bit hash of it) in a window of [`WINDOW`] slots.
//! Finding an id's stream therefore never rests on one row: when no row of
//! the window names the id, the events stored at its home slot and at the
//! free slot found are checked (their checksums cover the id's text), so a
//! stream whose bookkeeping row was damaged or removed is reported as such,
//! not taken for a new, empty one.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::read::{blob, column};
use super::{checksum, sqlite_error};
use crate::{PersistError, PersistenceId, SequenceId};

/// How many slots from its home a stream may be stored at.
pub(super) const WINDOW: i64 = 64;

/// The largest home slot: every slot of a window stays below 2^31, a 4-byte
/// integer in SQLite's records.
const SLOTS: u64 = (1 << 31) - 1 - WINDOW as u64;

/// The home slot of `persistence_id`: FNV-1a of its bytes, into 1 ..= SLOTS.
pub(super) fn home(persistence_id: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in persistence_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Below 2^31: fits an i64.
    i64::try_from(1 + hash % SLOTS).unwrap_or(1)
}

/// One stream's bookkeeping, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stream {
    pub(super) id: i64,
    pub(super) highest: i64,
    pub(super) deleted_to: i64,
}

/// Where a persistence id's stream is, or would go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    Found(Stream),
    /// The id has no stream; a new one would take this slot.
    Free(i64),
}

const WINDOW_ROWS: &str = "SELECT id, persistence_id, highest, deleted_to, checksum FROM streams
     WHERE id >= ?1 AND id < ?1 + ?2 ORDER BY id";

/// One event of a stream, to tell whose it is.
const ONE_EVENT: &str = "SELECT sequence, event_type, payload, tags, metadata, checksum
     FROM events WHERE stream = ?1 ORDER BY sequence LIMIT 1";

/// The bookkeeping row's checksum.
pub(super) fn row_checksum(persistence_id: &str, highest: i64, deleted_to: i64) -> u32 {
    checksum::bounds(persistence_id, highest, deleted_to)
}

fn damaged(path: &Path, pid: &PersistenceId, why: String) -> PersistError {
    PersistError::CorruptEntry {
        sequence_id: SequenceId::ZERO,
        detail: format!(
            "the journal bookkeeping of `{pid}` in the SQLite file {} {why}",
            path.display()
        ),
    }
}

/// Finds the stream of `pid`.
///
/// # Errors
///
/// [`PersistError::CorruptEntry`] when its bookkeeping row fails its
/// checksum, or is missing while events of `pid` are stored; a SQLite error;
/// [`PersistError::InvalidInput`] when every slot of its window holds
/// another id (not seen with real ids: it takes 64 ids hashing within 64
/// slots of each other).
pub(super) fn lookup(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
) -> Result<Lookup, PersistError> {
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the journal bookkeeping", &e);
    let home = home(pid.as_str());
    let mut stmt = conn.prepare_cached(WINDOW_ROWS).map_err(fail)?;
    let mut rows = stmt.query(params![home, WINDOW]).map_err(fail)?;
    let mut slot = home;
    while let Some(row) = rows.next().map_err(fail)? {
        let ValueRef::Integer(id) = column(row, 0) else {
            return Err(damaged(
                path,
                pid,
                "window holds a row without an integer id".into(),
            ));
        };
        if id != slot {
            // A free slot before this row.
            break;
        }
        let name = match column(row, 1) {
            ValueRef::Text(bytes) => bytes,
            _ => &[][..],
        };
        if name == pid.as_str().as_bytes() {
            return match (column(row, 2), column(row, 3), column(row, 4)) {
                (
                    ValueRef::Integer(highest),
                    ValueRef::Integer(deleted_to),
                    ValueRef::Integer(sum),
                ) if sum == i64::from(row_checksum(pid.as_str(), highest, deleted_to)) => {
                    Ok(Lookup::Found(Stream {
                        id,
                        highest,
                        deleted_to,
                    }))
                }
                _ => Err(damaged(path, pid, "fails its checksum".into())),
            };
        }
        slot += 1;
    }
    if slot >= home + WINDOW {
        return Err(PersistError::InvalidInput {
            persistence_id: pid.clone(),
            detail: format!(
                "the {WINDOW} stream slots of this persistence id all hold other ids in {}",
                path.display()
            ),
        });
    }
    drop(rows);
    for at in [home, slot] {
        if owns_events(conn, path, pid, at)? {
            return Err(damaged(
                path,
                pid,
                format!("is missing or damaged although its events are stored (stream {at})"),
            ));
        }
    }
    Ok(Lookup::Free(slot))
}

/// True when the first event stored under `stream` is an event of `pid`
/// (its checksum, which covers the id's text, says so).
fn owns_events(
    conn: &Connection,
    path: &Path,
    pid: &PersistenceId,
    stream: i64,
) -> Result<bool, PersistError> {
    let fail = |e: rusqlite::Error| sqlite_error(path, "cannot read the journal", &e);
    let mut stmt = conn.prepare_cached(ONE_EVENT).map_err(fail)?;
    let owned = stmt
        .query_row(params![stream], |row| {
            let (ValueRef::Integer(seq), ValueRef::Text(event_type), Some(payload)) =
                (column(row, 0), column(row, 1), blob(column(row, 2)))
            else {
                return Ok(false);
            };
            let Ok(event_type) = std::str::from_utf8(event_type) else {
                return Ok(false);
            };
            let expected = checksum::event_with(
                pid.as_str(),
                seq,
                event_type,
                payload,
                blob(column(row, 3)),
                blob(column(row, 4)),
            );
            Ok(matches!(column(row, 5), ValueRef::Integer(sum) if sum == i64::from(expected)))
        })
        .optional()
        .map_err(fail)?;
    Ok(owned == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_slots_stay_in_range_and_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let slot = home(&format!("Counter:{i}"));
            assert!((1..=SLOTS as i64).contains(&slot));
            assert!(slot + WINDOW < 1 << 31);
            seen.insert(slot);
        }
        assert!(seen.len() > 9_990, "{} distinct slots of 10000", seen.len());
        assert_eq!(home("A:1"), home("A:1"));
    }
}
