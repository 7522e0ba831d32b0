//! Projections in the SQLite file: their records (`projections`, schema 4),
//! exactly-once batches run on the writer's connection with the offset in
//! the same transaction, and leases as locks on files beside the database.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::writer::Op;
use super::{SqliteStorage, sqlite_error};
use crate::PersistError;
use crate::projection::store::{
    LeaseGuard, ProjectionLease, ProjectionRecord, ProjectionStore, check_name, conflict,
    parse_offset, parse_source, record_checksum,
};
use crate::projection::{BatchError, HandlerError, SqliteHandler};
use crate::query::{EventEnvelope, EventFilter, Offset, to_micros};

const LOAD: &str = "SELECT resume_after, paused, source, checksum FROM projections WHERE name = ?1";

const SAVE: &str = "INSERT INTO projections
         (name, resume_after, paused, source, updated_at, checksum)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (name) DO UPDATE SET
         resume_after = excluded.resume_after, paused = excluded.paused,
         source = excluded.source, updated_at = excluded.updated_at,
         checksum = excluded.checksum";

const NAMES: &str = "SELECT name FROM projections ORDER BY name";

/// The record of `name`, checked against its checksum.
fn load(conn: &Connection, path: &Path, name: &str) -> Result<ProjectionRecord, PersistError> {
    type Row = (Option<String>, i64, Option<String>, i64);
    let row: Option<Row> = conn
        .prepare_cached(LOAD)
        .and_then(|mut stmt| {
            stmt.query_row(params![name], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()
        })
        .map_err(|e| sqlite_error(path, "cannot read a projection's offset", &e))?;
    let Some((offset, paused, source, stored)) = row else {
        return Ok(ProjectionRecord::default());
    };
    let paused = paused != 0;
    let expected = i64::from(record_checksum(
        name,
        offset.as_deref(),
        paused,
        source.as_deref(),
    ));
    if stored != expected {
        return Err(PersistError::CorruptEntry {
            sequence_id: crate::SequenceId::ZERO,
            detail: format!(
                "the record of projection `{name}` in the SQLite file {} fails its checksum \
                 (stored {stored}, computed {expected}): it was changed behind the store's back",
                path.display()
            ),
        });
    }
    Ok(ProjectionRecord {
        offset: parse_offset(name, offset.as_deref())?,
        paused,
        source: parse_source(name, source.as_deref())?,
    })
}

/// Stores `record` as the record of `name`.
fn save(
    conn: &Connection,
    path: &Path,
    name: &str,
    record: &ProjectionRecord,
) -> Result<(), PersistError> {
    let offset = record.offset.map(|o| o.to_string());
    let source = record.source.as_ref().map(ToString::to_string);
    let sum = record_checksum(name, offset.as_deref(), record.paused, source.as_deref());
    conn.prepare_cached(SAVE)
        .and_then(|mut stmt| {
            stmt.execute(params![
                name,
                offset,
                record.paused,
                source,
                to_micros(std::time::SystemTime::now()),
                sum
            ])
        })
        .map(drop)
        .map_err(|e| sqlite_error(path, "cannot save a projection's offset", &e))
}

/// Moves the offset of `name` from `expected` to `to`, in the caller's
/// transaction.
fn advance(
    conn: &Connection,
    path: &Path,
    name: &str,
    expected: Option<Offset>,
    to: Offset,
) -> Result<(), PersistError> {
    let mut record = load(conn, path, name)?;
    if record.offset != expected {
        return Err(conflict(name, expected, record.offset));
    }
    record.offset = Some(to);
    save(conn, path, name, &record)
}

impl SqliteStorage {
    /// Runs `job` on the writer's connection in a transaction of its own.
    async fn in_write(
        &self,
        job: impl FnOnce(&Connection, &Path) -> Result<(), PersistError> + Send + 'static,
    ) -> Result<(), PersistError> {
        self.submit(Op::Run(Mutex::new(Some(Box::new(job))))).await
    }

    /// One exactly-once batch: `handler` writes its read model on the
    /// writer's connection and the offset of `name` moves from `expected` to
    /// the last event's, in one transaction. A handler error rolls back
    /// both.
    pub(crate) async fn project_batch(
        &self,
        name: &str,
        expected: Option<Offset>,
        events: Arc<Vec<EventEnvelope>>,
        handler: Arc<Mutex<dyn SqliteHandler>>,
    ) -> Result<(), BatchError> {
        let Some(to) = events.last().map(|e| e.offset) else {
            return Ok(());
        };
        let failed: Arc<Mutex<Option<HandlerError>>> = Arc::default();
        let failure = failed.clone();
        let name = name.to_owned();
        let result = self
            .in_write(move |conn, path| {
                let mut record = load(conn, path, &name)?;
                if record.offset != expected {
                    return Err(conflict(&name, expected, record.offset));
                }
                let outcome = match handler.lock() {
                    Ok(mut handler) => handler.handle(conn, &events),
                    Err(_) => Err("the handler panicked in an earlier batch".into()),
                };
                if let Err(e) = outcome {
                    let detail = e.to_string();
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return Err(PersistError::ProjectionFailed {
                        projection: name,
                        detail,
                    });
                }
                record.offset = Some(to);
                save(conn, path, &name, &record)
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(store) => match failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(handler) => Err(BatchError::Handler(handler)),
                None => Err(BatchError::Store(store)),
            },
        }
    }

    /// Where the lock files of this store's projections live: a directory
    /// beside the database file.
    fn lease_dir(&self) -> PathBuf {
        let mut dir = self.path.as_os_str().to_owned();
        dir.push(".projections");
        PathBuf::from(dir)
    }
}

/// A projection's lock file, locked; unlocked when dropped (or when the
/// process dies: the operating system releases it).
struct FileLease {
    _file: File,
}

impl LeaseGuard for FileLease {}

#[async_trait]
impl ProjectionStore for SqliteStorage {
    async fn load_projection(&self, name: &str) -> Result<ProjectionRecord, PersistError> {
        check_name(name)?;
        let name = name.to_owned();
        self.read(move |conn, path| load(conn, path, &name)).await
    }

    async fn advance_projection(
        &self,
        name: &str,
        expected: Option<Offset>,
        to: Offset,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        let name = name.to_owned();
        self.in_write(move |conn, path| advance(conn, path, &name, expected, to))
            .await
    }

    async fn set_projection_offset(
        &self,
        name: &str,
        offset: Option<Offset>,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        let name = name.to_owned();
        self.in_write(move |conn, path| {
            let mut record = load(conn, path, &name)?;
            record.offset = offset;
            save(conn, path, &name, &record)
        })
        .await
    }

    async fn set_projection_paused(&self, name: &str, paused: bool) -> Result<(), PersistError> {
        check_name(name)?;
        let name = name.to_owned();
        self.in_write(move |conn, path| {
            let mut record = load(conn, path, &name)?;
            record.paused = paused;
            save(conn, path, &name, &record)
        })
        .await
    }

    async fn register_projection(
        &self,
        name: &str,
        source: &EventFilter,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        let name = name.to_owned();
        let source = source.clone();
        self.in_write(move |conn, path| {
            let mut record = load(conn, path, &name)?;
            record.source = Some(source);
            save(conn, path, &name, &record)
        })
        .await
    }

    async fn projection_names(&self) -> Result<Vec<String>, PersistError> {
        self.read(|conn, path| {
            let fail = |e: rusqlite::Error| sqlite_error(path, "cannot list the projections", &e);
            let mut stmt = conn.prepare_cached(NAMES).map_err(fail)?;
            let names = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(fail)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            Ok(names)
        })
        .await
    }

    async fn try_lease(&self, name: &str) -> Result<Option<ProjectionLease>, PersistError> {
        check_name(name)?;
        let dir = self.lease_dir();
        let name = name.to_owned();
        let db = self.path.clone();
        tokio::task::spawn_blocking(move || lock_file(&dir, &name, &db))
            .await
            .map_err(|e| {
                PersistError::StorageUnavailable(format!("a projection lease did not finish: {e}"))
            })?
    }
}

/// Locks the lock file of projection `name` in `dir`, without waiting.
fn lock_file(dir: &Path, name: &str, db: &Path) -> Result<Option<ProjectionLease>, PersistError> {
    let unavailable = |what: &str, e: std::io::Error| {
        PersistError::StorageUnavailable(format!(
            "cannot {what} for projection `{name}` of the SQLite store {}: {e}",
            db.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| unavailable("create the lock directory", e))?;
    // The name hashed: any name is a valid file name.
    let path = dir.join(format!("{:016x}.lock", fnv64(name.as_bytes())));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| unavailable("open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(unavailable("lock the lock file", e)),
    }
    // For whoever looks in the directory.
    let _ = file.set_len(0).and_then(|()| {
        writeln!(
            file,
            "projection {name:?}, held by process {}",
            std::process::id()
        )
    });
    Ok(Some(ProjectionLease::new(FileLease { _file: file })))
}

/// FNV-1a, 64 bits.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
