//! The Rust part of schema migration 3: the journal moved into the log.
//!
//! Runs inside the migration transaction, after
//! `migrations/sqlite/0003_journal_log.sql`. Every persistence id gets its
//! stream (the first free slot from its home, as the store finds it), with
//! its bookkeeping row as it was (checksum included); then every event is
//! copied, in (persistence id, sequence) order, with its checksum as it was
//! (checksums cover the id's text, not its stream); then the old tables go.
//! Ids are read a batch at a time, so that memory stays bounded.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::sqlite_error;
use super::streams::{WINDOW, home};
use crate::{PersistError, PersistenceId};

const BATCH: i64 = 4096;

/// Moves `journal` and `journal_meta` into `streams` and `events`.
pub(super) fn move_journal(conn: &Connection, path: &Path) -> Result<(), PersistError> {
    let fail =
        |what: &str, e: rusqlite::Error| sqlite_error(path, &format!("migration 3: {what}"), &e);
    let mut assign = Slots::new(conn).map_err(|e| fail("cannot prepare", e))?;

    // Every id with bookkeeping (after migration 2, every id with events).
    let mut select = conn
        .prepare(
            "SELECT persistence_id, highest, deleted_to, checksum FROM journal_meta
             WHERE persistence_id > ?1 ORDER BY persistence_id LIMIT ?2",
        )
        .map_err(|e| fail("cannot read the bookkeeping", e))?;
    let mut after = Value::Text(String::new());
    // The empty id first: `> ''` leaves it out.
    let empty: Option<[Value; 3]> = conn
        .query_row(
            "SELECT highest, deleted_to, checksum FROM journal_meta WHERE persistence_id = ''",
            [],
            |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]),
        )
        .optional()
        .map_err(|e| fail("cannot read the bookkeeping", e))?;
    if let Some([h, d, c]) = empty {
        assign
            .add(String::new(), h, d, c)
            .map_err(|e| fail("cannot add a stream", e))?;
    }
    loop {
        let rows: Vec<[Value; 4]> = select
            .query_map(params![after, BATCH], |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
            })
            .map_err(|e| fail("cannot read the bookkeeping", e))?
            .collect::<Result<_, _>>()
            .map_err(|e| fail("cannot read the bookkeeping", e))?;
        let Some(last) = rows.last() else { break };
        after = last[0].clone();
        for [pid, h, d, c] in rows {
            assign
                .add(text(&pid), h, d, c)
                .map_err(|e| fail("cannot add a stream", e))?;
        }
    }

    // Ids with events and no bookkeeping (damage): a stream with a checksum
    // that never matches, so that they keep reading as damaged.
    let orphans: Vec<Value> = conn
        .prepare(
            "SELECT DISTINCT persistence_id FROM journal j WHERE NOT EXISTS
                 (SELECT 1 FROM journal_meta m WHERE m.persistence_id = j.persistence_id)",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| fail("cannot read the journal's ids", e))?;
    for pid in orphans {
        assign
            .add(
                text(&pid),
                Value::Integer(0),
                Value::Integer(0),
                Value::Integer(-1),
            )
            .map_err(|e| fail("cannot add a stream", e))?;
    }
    drop(assign);

    let before: i64 = conn
        .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
        .map_err(|e| fail("cannot count the journal", e))?;
    let moved = conn
        .execute(
            "INSERT INTO events (stream, sequence, event_type, payload, written_at, checksum)
             SELECT s.id, j.sequence, j.event_type, j.payload, 0, j.checksum
             FROM journal j JOIN streams s ON s.persistence_id = j.persistence_id
             ORDER BY j.persistence_id, j.sequence",
            [],
        )
        .map_err(|e| fail("cannot move the events", e))?;
    if i64::try_from(moved).unwrap_or(i64::MAX) != before {
        tracing::warn!(path = %path.display(), before, moved, "migration 3: rows of the journal whose persistence id is not text could not be moved");
    }
    conn.execute_batch("DROP TABLE journal; DROP TABLE journal_meta;")
        .map_err(|e| fail("cannot drop the old tables", e))?;
    Ok(())
}

/// A stored persistence id as text (damaged ones as they read).
fn text(value: &Value) -> String {
    match value {
        Value::Text(t) => t.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Integer(n) => n.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Null => String::new(),
    }
}

/// Gives each id the first free slot of its window, as the store looks.
struct Slots<'c> {
    taken: rusqlite::Statement<'c>,
    insert: rusqlite::Statement<'c>,
}

impl<'c> Slots<'c> {
    fn new(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            taken: conn.prepare("SELECT id FROM streams WHERE id >= ?1 AND id < ?1 + ?2 ORDER BY id")?,
            insert: conn.prepare(
                "INSERT INTO streams (id, persistence_id, entity_type, highest, deleted_to, checksum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
        })
    }

    fn add(
        &mut self,
        pid: String,
        highest: Value,
        deleted_to: Value,
        checksum: Value,
    ) -> rusqlite::Result<()> {
        let home = home(&pid);
        let taken: Vec<i64> = self
            .taken
            .query_map(params![home, WINDOW], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut slot = home;
        for id in taken {
            if id != slot {
                break;
            }
            slot += 1;
        }
        if slot >= home + WINDOW {
            // Not seen with real ids; the id's events stay readable by verify only.
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "every slot of the window of `{pid}` is taken"
            )));
        }
        let entity = PersistenceId(pid.clone()).entity_type().to_owned();
        self.insert
            .execute(params![slot, pid, entity, highest, deleted_to, checksum])?;
        Ok(())
    }
}
