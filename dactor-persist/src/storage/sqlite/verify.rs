//! [`SqliteStorage::verify`](super::SqliteStorage::verify): SQLite's own
//! integrity check, then every row of the file, in one read transaction.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use super::read::{blob, checked_event, column, shown, type_name};
use super::{checksum, sqlite_error, streams};
use crate::storage::verify::{Bookkeeping, EngineCheck, JournalWalk, MetaRead, VerifyReport};
use crate::{PersistError, PersistenceId};

/// Every event beside its stream's bookkeeping row, sorted by stream and
/// sequence. A stream without events has one row with a NULL event; events
/// whose stream row is missing have NULL bookkeeping columns.
const JOURNAL_WALK: &str = "SELECT coalesce(s.id, e.stream), s.persistence_id,
         s.id IS NOT NULL, s.highest, s.deleted_to, s.checksum,
         e.sequence, e.event_type, e.payload, e.tags, e.metadata, e.checksum
     FROM streams s FULL JOIN events e ON e.stream = s.id
     ORDER BY 1, e.sequence";

const SNAPSHOTS: &str = "SELECT persistence_id, sequence, payload, checksum FROM snapshots";

const STATES: &str = "SELECT persistence_id, payload, checksum FROM states";

/// The most findings of `PRAGMA integrity_check` reported.
const ENGINE_FINDINGS: i64 = 100;

/// Runs the whole check on a reader connection.
pub(super) fn run(conn: &Connection, path: &Path) -> Result<VerifyReport, PersistError> {
    let mut report = VerifyReport::new(format!("SQLite file {}", path.display()));
    report.engine_check = engine_check(conn);
    conn.execute_batch("BEGIN")
        .map_err(|e| sqlite_error(path, "verify: cannot begin a read transaction", &e))?;
    let walked = walk(conn, &mut report);
    let _ = conn.execute_batch("COMMIT");
    if let Err(e) = walked {
        report.stopped = Some(e.to_string());
    }
    Ok(report)
}

fn engine_check(conn: &Connection) -> EngineCheck {
    let findings = conn
        .prepare(&format!("PRAGMA integrity_check({ENGINE_FINDINGS})"))
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<String>, _>>()
        });
    match findings {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => EngineCheck::Passed,
        Ok(lines) => EngineCheck::Failed(lines),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            EngineCheck::Failed(vec![e.to_string()])
        }
        Err(e) => EngineCheck::NotRun(e.to_string()),
    }
}

/// Walks the journal, snapshots and states; an engine error stops it.
fn walk(conn: &Connection, report: &mut VerifyReport) -> rusqlite::Result<()> {
    let mut journals = JournalWalk::new(Bookkeeping::Exact);
    let mut stmt = conn.prepare(JOURNAL_WALK)?;
    let mut rows = stmt.query([])?;
    let walked: rusqlite::Result<()> = (|| {
        while let Some(row) = rows.next()? {
            let stream = match column(row, 0) {
                ValueRef::Integer(id) => id,
                _ => 0,
            };
            let has_meta = matches!(column(row, 2), ValueRef::Integer(1));
            // Events without their stream row show under their stream's number.
            let pid = if has_meta {
                text(column(row, 1))
            } else {
                format!("<stream {stream} without bookkeeping>")
            };
            let meta = has_meta.then(|| meta(row, &pid, stream));
            let event = match column(row, 6) {
                ValueRef::Null => None,
                ValueRef::Integer(seq) => Some((
                    seq,
                    checked_event(row, 6, &PersistenceId(pid.clone()))
                        .map(drop)
                        .map_err(|e| e.to_string()),
                )),
                other => Some((0, Err(format!("its sequence is a {}", type_name(other))))),
            };
            journals.row(&pid, meta, event);
        }
        Ok(())
    })();
    journals.finish(report);
    walked?;

    let mut stmt = conn.prepare(SNAPSHOTS)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        report.snapshots_checked += 1;
        let pid = text(column(row, 0));
        let (seq, problem) = match column(row, 1) {
            ValueRef::Integer(seq) => (
                seq,
                checked(column(row, 2), column(row, 3), |payload| {
                    checksum::snapshot(&pid, seq, payload)
                }),
            ),
            other => (0, Err(format!("its sequence is a {}", type_name(other)))),
        };
        if let Err(detail) = problem {
            report.damaged(false, &pid, seq, detail);
        }
    }

    let mut stmt = conn.prepare(STATES)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        report.states_checked += 1;
        let pid = text(column(row, 0));
        if let Err(detail) = checked(column(row, 1), column(row, 2), |payload| {
            checksum::state(&pid, payload)
        }) {
            report.damaged(true, &pid, 0, detail);
        }
    }
    Ok(())
}

/// A persistence id as stored; damaged text shows as it reads.
fn text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        ValueRef::Integer(n) => n.to_string(),
        other => format!("<{}>", type_name(other)),
    }
}

fn meta(row: &Row<'_>, pid: &str, stream: i64) -> MetaRead {
    let home = streams::home(pid);
    if !(home..home + streams::WINDOW).contains(&stream) {
        return Err(format!(
            "it is stored as stream {stream}, outside the slots of its id ({home} and the \
             {} after): the id cannot find it",
            streams::WINDOW - 1
        ));
    }
    match (column(row, 3), column(row, 4), column(row, 5)) {
        (ValueRef::Integer(highest), ValueRef::Integer(deleted_to), stored) => {
            let expected = streams::row_checksum(pid, highest, deleted_to);
            if matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
                Ok((highest, deleted_to))
            } else {
                Err(format!(
                    "fails its checksum (stored {}, computed {expected})",
                    shown(stored)
                ))
            }
        }
        (h, d, _) => Err(format!(
            "holds a {} and a {} where its sequences belong",
            type_name(h),
            type_name(d)
        )),
    }
}

/// A payload column checked against its stored checksum.
fn checked(
    payload: ValueRef<'_>,
    stored: ValueRef<'_>,
    expected: impl FnOnce(&[u8]) -> u32,
) -> Result<(), String> {
    let Some(payload) = blob(payload) else {
        return Err(format!("its payload is a {}", type_name(payload)));
    };
    let expected = expected(payload);
    if matches!(stored, ValueRef::Integer(sum) if sum == i64::from(expected)) {
        Ok(())
    } else {
        Err(format!(
            "fails its checksum (stored {}, computed {expected})",
            shown(stored)
        ))
    }
}
