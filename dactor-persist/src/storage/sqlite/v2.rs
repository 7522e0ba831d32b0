//! The Rust part of schema migration 2: every checksum rewritten to cover its
//! row's persistence id, each row's version-1 checksum verified first.
//!
//! Runs inside the migration transaction, after
//! `migrations/sqlite/0002_checksums_cover_ids.sql`. Tables are walked in key
//! order, a batch at a time, so that memory stays bounded on a large file. A
//! row that fails its old checksum is not healed: it gets a checksum that can
//! never match, so that it keeps reading back as damaged, and it is counted in
//! a warning.

use std::path::Path;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params};

use super::{checksum, sqlite_error};
use crate::PersistError;

/// Rows read and rewritten at a time.
const BATCH: i64 = 4096;

/// Rewrites the checksums of the journal, snapshots, states and bookkeeping.
pub(super) fn rewrite_checksums(conn: &Connection, path: &Path) -> Result<(), PersistError> {
    let journal = journal(conn, path)?;
    let snapshots = by_rowid(conn, path, "snapshots", |row| {
        let (ValueRef::Text(pid), ValueRef::Integer(seq), ValueRef::Blob(payload)) = (
            ValueRef::from(&row[0]),
            ValueRef::from(&row[1]),
            ValueRef::from(&row[2]),
        ) else {
            return None;
        };
        let pid = std::str::from_utf8(pid).ok()?;
        Some((
            checksum::v1::snapshot(seq, payload),
            checksum::snapshot(pid, seq, payload),
        ))
    })?;
    let states = by_rowid(conn, path, "states", |row| {
        let (ValueRef::Text(pid), ValueRef::Blob(payload)) =
            (ValueRef::from(&row[0]), ValueRef::from(&row[2]))
        else {
            return None;
        };
        let pid = std::str::from_utf8(pid).ok()?;
        Some((checksum::v1::state(payload), checksum::state(pid, payload)))
    })?;
    meta(conn, path)?;
    let damaged = journal + snapshots + states;
    if damaged > 0 {
        tracing::warn!(
            path = %path.display(),
            events = journal,
            snapshots,
            states,
            "rows that failed their checksum before the migration to schema 2 still read back as damaged"
        );
    }
    Ok(())
}

/// The new checksum of a row: the version-2 one when the stored checksum is
/// the version-1 one, else one that never matches.
fn rewritten(stored: &Value, (old, new): (u32, u32)) -> u32 {
    match stored {
        Value::Integer(sum) if *sum == i64::from(old) => new,
        _ => checksum::poisoned(new),
    }
}

/// The journal, by its key (it has no rowid). Returns how many rows failed.
fn journal(conn: &Connection, path: &Path) -> Result<u64, PersistError> {
    let fail =
        |e: rusqlite::Error| sqlite_error(path, "migration 2: cannot rewrite the journal", &e);
    let mut select = conn
        .prepare(
            "SELECT persistence_id, sequence, event_type, payload, checksum FROM journal
             WHERE (persistence_id, sequence) > (?1, ?2)
             ORDER BY persistence_id, sequence LIMIT ?3",
        )
        .map_err(fail)?;
    let mut update = conn
        .prepare("UPDATE journal SET checksum = ?3 WHERE persistence_id = ?1 AND sequence = ?2")
        .map_err(fail)?;
    let mut after: (Value, Value) = (Value::Text(String::new()), Value::Integer(i64::MIN));
    let mut damaged = 0;
    loop {
        let rows: Vec<[Value; 5]> = select
            .query_map(params![after.0, after.1, BATCH], |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
            })
            .map_err(fail)?
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let Some(last) = rows.last() else {
            return Ok(damaged);
        };
        after = (last[0].clone(), last[1].clone());
        for [pid, seq, event_type, payload, stored] in &rows {
            let (Value::Text(pid_text), Value::Integer(s), Value::Text(t), Value::Blob(p)) =
                (pid, seq, event_type, payload)
            else {
                // Its types are damaged: reads refuse it whatever its checksum.
                damaged += 1;
                continue;
            };
            let sums = (
                checksum::v1::event(*s, t, p),
                checksum::event(pid_text, *s, t, p),
            );
            let new = rewritten(stored, sums);
            if new != sums.1 {
                damaged += 1;
            }
            update.execute(params![pid, seq, new]).map_err(fail)?;
        }
    }
}

/// A rowid table whose columns 0..3 are `persistence_id, <sequence or
/// nothing>, payload` and whose `checksum` is rewritten from `sums` (the old
/// and new checksums of a well-typed row). Returns how many rows failed.
fn by_rowid(
    conn: &Connection,
    path: &Path,
    table: &str,
    sums: impl Fn(&[Value; 3]) -> Option<(u32, u32)>,
) -> Result<u64, PersistError> {
    let what = format!("migration 2: cannot rewrite the {table}");
    let fail = |e: rusqlite::Error| sqlite_error(path, &what, &e);
    let middle = if table == "snapshots" {
        "sequence"
    } else {
        "NULL"
    };
    let mut select = conn
        .prepare(&format!(
            "SELECT rowid, persistence_id, {middle}, payload, checksum FROM {table}
             WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
        ))
        .map_err(fail)?;
    let mut update = conn
        .prepare(&format!(
            "UPDATE {table} SET checksum = ?2 WHERE rowid = ?1"
        ))
        .map_err(fail)?;
    let mut after = i64::MIN;
    let mut damaged = 0;
    loop {
        let rows: Vec<(i64, [Value; 3], Value)> = select
            .query_map(params![after, BATCH], |r| {
                Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?], r.get(4)?))
            })
            .map_err(fail)?
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let Some(last) = rows.last() else {
            return Ok(damaged);
        };
        after = last.0;
        for (rowid, row, stored) in &rows {
            let Some(pair) = sums(row) else {
                damaged += 1;
                continue;
            };
            let new = rewritten(stored, pair);
            if new != pair.1 {
                damaged += 1;
            }
            update.execute(params![rowid, new]).map_err(fail)?;
        }
    }
}

/// Checksums the bookkeeping rows, which had none.
fn meta(conn: &Connection, path: &Path) -> Result<(), PersistError> {
    let fail =
        |e: rusqlite::Error| sqlite_error(path, "migration 2: cannot checksum the bookkeeping", &e);
    let mut select = conn
        .prepare(
            "SELECT persistence_id, highest, deleted_to FROM journal_meta
             WHERE persistence_id > ?1 ORDER BY persistence_id LIMIT ?2",
        )
        .map_err(fail)?;
    let mut update = conn
        .prepare("UPDATE journal_meta SET checksum = ?2 WHERE persistence_id = ?1")
        .map_err(fail)?;
    let mut after = Value::Text(String::new());
    loop {
        let rows: Vec<[Value; 3]> = select
            .query_map(params![after, BATCH], |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?])
            })
            .map_err(fail)?
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last[0].clone();
        for [pid, highest, deleted_to] in &rows {
            // A row of damaged types keeps checksum 0, which no row has.
            if let (Value::Text(text), Value::Integer(h), Value::Integer(d)) =
                (pid, highest, deleted_to)
            {
                let sum = checksum::bounds(text, *h, *d);
                update.execute(params![pid, sum]).map_err(fail)?;
            }
        }
    }
}
