//! Opening the database file: checking it is one this code may use, setting
//! the connection up, and migrating the schema.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::{Durability, sqlite_error, v2, v3};
use crate::PersistError;

/// A migration's step in Rust, run after its SQL in the same transaction.
type Step = fn(&Connection, &Path) -> Result<(), PersistError>;

/// One schema migration: its SQL file, then (when the change cannot be
/// written in SQL) a step in Rust, both in the transaction that records it.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
    then: Option<Step>,
}

/// The schema migrations, in order. Each is applied once, in the same
/// transaction as the row recording its version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../../migrations/sqlite/0001_init.sql"),
        then: None,
    },
    Migration {
        version: 2,
        name: "checksums_cover_ids",
        sql: include_str!("../../../migrations/sqlite/0002_checksums_cover_ids.sql"),
        then: Some(v2::rewrite_checksums),
    },
    Migration {
        version: 3,
        name: "journal_log",
        sql: include_str!("../../../migrations/sqlite/0003_journal_log.sql"),
        then: Some(v3::move_journal),
    },
    Migration {
        version: 4,
        name: "projections",
        sql: include_str!("../../../migrations/sqlite/0004_projections.sql"),
        then: None,
    },
];

/// The newest schema version this code knows.
pub(super) const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The table recording which migrations were applied. It is created before
/// any migration runs, so it cannot live in one of them.
const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS dactor_persist_schema (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)";

/// Opens (creating when missing) the writer's connection, refuses a file that
/// is not a SQLite database or whose schema is newer than this code, then
/// switches the file to WAL and applies the pending migrations.
///
/// The checks run before anything is written, so a refused file is left
/// exactly as it was.
pub(super) fn open_writer(
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<Connection, PersistError> {
    create_parent(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_error(path, "cannot open or create the database", &e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| sqlite_error(path, "cannot set the busy timeout", &e))?;
    check_usable(&conn, path)?;

    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| sqlite_error(path, "cannot switch the database to WAL mode", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %path.display(),
            journal_mode = %mode,
            "SQLite refused WAL mode; readers will wait behind writes"
        );
    }
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Relaxed => "NORMAL",
    };
    for (pragma, value) in [
        ("synchronous", synchronous),
        // Only macOS reads these: there, plain fsync does not reach the disk.
        (
            "fullfsync",
            if durability == Durability::Full {
                "ON"
            } else {
                "OFF"
            },
        ),
        (
            "checkpoint_fullfsync",
            if durability == Durability::Full {
                "ON"
            } else {
                "OFF"
            },
        ),
        // 16 MiB of page cache: a group commit touches many pages.
        ("cache_size", "-16384"),
        // The writer moves the checkpoint threshold with its load; see
        // `Checkpoints` in writer.rs. It starts at SQLite's default.
        ("wal_autocheckpoint", "1000"),
        // Keep up to 64 MiB of WAL file after a checkpoint: rewriting blocks
        // already allocated makes a commit's flush cheaper than growing it.
        ("journal_size_limit", "67108864"),
    ] {
        conn.pragma_update(None, pragma, value)
            .map_err(|e| sqlite_error(path, &format!("cannot set PRAGMA {pragma}"), &e))?;
    }
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens one reader connection on a database the writer has already set up.
pub(super) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, PersistError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_error(path, "cannot open a reader connection", &e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| sqlite_error(path, "cannot set the busy timeout", &e))?;
    // A reader never writes; SQLite enforces it.
    conn.pragma_update(None, "query_only", "ON")
        .map_err(|e| sqlite_error(path, "cannot make the reader read-only", &e))?;
    conn.pragma_update(None, "cache_size", "-8192")
        .map_err(|e| sqlite_error(path, "cannot set the reader's cache size", &e))?;
    Ok(conn)
}

/// Creates the directories above the database file, when missing.
fn create_parent(path: &Path) -> Result<(), PersistError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() || parent.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(parent).map_err(|e| {
        PersistError::StorageUnavailable(format!(
            "cannot create the directory {} for the SQLite store {}: {e}",
            parent.display(),
            path.display()
        ))
    })
}

/// Refuses a file that is not a SQLite database, or whose schema is newer
/// than this code knows. Reads only.
fn check_usable(conn: &Connection, path: &Path) -> Result<(), PersistError> {
    let has_schema_table = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dactor_persist_schema'",
            [],
            |_| Ok(()),
        )
        .optional();
    let has_schema_table = match has_schema_table {
        Ok(found) => found.is_some(),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(PersistError::IncompatibleStore(format!(
                "{} is not a SQLite database ({e}); it was left untouched",
                path.display()
            )));
        }
        Err(e) => return Err(sqlite_error(path, "cannot read the database schema", &e)),
    };
    if has_schema_table {
        let version = schema_version(conn, path)?;
        refuse_newer(version, path)?;
    }
    Ok(())
}

fn schema_version(conn: &Connection, path: &Path) -> Result<i64, PersistError> {
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM dactor_persist_schema",
        [],
        |row| row.get(0),
    )
    .map_err(|e| sqlite_error(path, "cannot read the schema version", &e))
}

fn refuse_newer(version: i64, path: &Path) -> Result<(), PersistError> {
    if version > LATEST_VERSION {
        return Err(PersistError::IncompatibleStore(format!(
            "{} has schema version {version}, newer than the newest this dactor-persist \
             knows ({LATEST_VERSION}); open it with a newer dactor-persist. It was left untouched",
            path.display()
        )));
    }
    Ok(())
}

/// Applies every migration newer than the recorded version, in one
/// transaction, so a crash mid-way leaves the previous schema.
fn migrate(conn: &Connection, path: &Path) -> Result<(), PersistError> {
    let fail = |what: &str, e: rusqlite::Error| sqlite_error(path, what, &e);
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| fail("cannot start the migration transaction", e))?;
    let result = (|| {
        conn.execute_batch(SCHEMA_TABLE)
            .map_err(|e| fail("cannot create the schema version table", e))?;
        // Read again under the write lock: another process may have migrated.
        let current = schema_version(conn, path)?;
        refuse_newer(current, path)?;
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            let Migration {
                version,
                name,
                sql,
                then,
            } = migration;
            conn.execute_batch(sql)
                .map_err(|e| fail(&format!("migration {version:04}_{name} failed"), e))?;
            if let Some(step) = then {
                step(conn, path)?;
            }
            conn.execute(
                "INSERT INTO dactor_persist_schema (version, name) VALUES (?1, ?2)",
                rusqlite::params![version, name],
            )
            .map_err(|e| fail("cannot record the schema version", e))?;
            tracing::info!(path = %path.display(), version, name, "applied SQLite migration");
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn
            .execute_batch("COMMIT")
            .map_err(|e| fail("cannot commit the migrations", e)),
        Err(err) => {
            // The transaction is rolled back whole; nothing of it stays.
            let _ = conn.execute_batch("ROLLBACK");
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_up_from_one() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i64 + 1);
        }
    }
}
