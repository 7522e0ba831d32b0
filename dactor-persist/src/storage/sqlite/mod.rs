//! The embedded durable store: [`SqliteStorage`], one SQLite file holding
//! journals, snapshots and durable state.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};

use super::{
    JournalBounds, JournalStorage, NewEvent, SharedStoreProvider, SnapshotStorage, StateStorage,
    validate_batch, validate_snapshot_sequence,
};
use crate::query::{EventEnvelope, EventFilter, EventPage, EventQueries, Offset, StatePage};
use crate::{JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

use super::in_flight::InFlight;
use super::{checksum, extras};
mod projection;
mod query;
mod read;
mod schema;
mod streams;
mod v2;
mod v3;
mod verify;
mod writer;

use writer::{Counters, Event, GroupLimits, Message, Op, Request};

/// How far a write is on its way to the disk when it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Acknowledged once flushed to disk (`synchronous=FULL`): it survives a
    /// crash of the process and of the machine. The default.
    #[default]
    Full,
    /// Acknowledged once in the WAL file, flushed at the next checkpoint
    /// (`synchronous=NORMAL`): it survives the process being killed, but the
    /// last moments of writes may be lost if the machine loses power. Faster
    /// when one writer persists sequentially.
    Relaxed,
}

/// What a [`SqliteStorage`]'s writer has done since the store was opened: a
/// view for monitoring, and the proof that group commit groups.
///
/// # Examples
///
/// ```
/// use dactor_persist::*;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("dactor-doc-stats-{}", std::process::id()));
/// let store = SqliteStorage::open(dir.join("app.db")).await?;
/// store.save_state(&PersistenceId::new("Settings", "s"), b"on").await?;
/// let stats = store.stats();
/// assert_eq!((stats.commits, stats.requests), (1, 1));
/// # store.close().await;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SqliteStats {
    /// Transactions committed.
    pub commits: u64,
    /// Write requests (single events, batches, deletes, snapshot and state
    /// saves) in those transactions, failed ones included.
    pub requests: u64,
}

/// The defaults of [`SqliteStorageBuilder`].
const DEFAULT_READERS: usize = 4;
const DEFAULT_MAX_GROUP: usize = 2048;
const DEFAULT_MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CHANGE_POLL: Duration = Duration::from_millis(100);

/// Options for opening a [`SqliteStorage`]; made by [`SqliteStorage::builder`].
///
/// # Examples
///
/// ```
/// use dactor_persist::{Durability, SqliteStorage};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("dactor-doc-builder-{}", std::process::id()));
/// let store = SqliteStorage::builder(dir.join("app.db"))
///     .durability(Durability::Relaxed)
///     .readers(2)
///     .open()
///     .await?;
/// assert_eq!(store.durability(), Durability::Relaxed);
/// # store.close().await;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), dactor_persist::PersistError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteStorageBuilder {
    path: PathBuf,
    durability: Durability,
    readers: usize,
    max_group_size: usize,
    busy_timeout: Duration,
    change_poll: Duration,
    poll_interval: Duration,
    inline_reads: bool,
}

impl SqliteStorageBuilder {
    /// Sets how durable an acknowledged write is. Default: [`Durability::Full`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets how many reads may run at once, each on its own connection
    /// (at least 1). Default: 4.
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// Sets how many write requests at most one commit holds (at least 1;
    /// 1 turns group commit off). Default: 2048.
    pub fn max_group_size(mut self, requests: usize) -> Self {
        self.max_group_size = requests.max(1);
        self
    }

    /// Sets how long a connection waits for a lock held by another process
    /// before failing with [`PersistError::StorageUnavailable`]. Default: 5 s.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets how often live queries look for commits by other processes
    /// sharing the file (through SQLite's `data_version`; commits of this
    /// store wake them at once). Default: 100 ms.
    pub fn change_poll_interval(mut self, interval: Duration) -> Self {
        self.change_poll = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets how often a live query that is caught up reads again when
    /// nothing woke it (commits wake it, see
    /// [`change_poll_interval`](SqliteStorageBuilder::change_poll_interval)).
    /// Default: 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Whether reads run on the calling tokio worker (under
    /// `tokio::task::block_in_place`, on a multi-threaded runtime) rather
    /// than on the blocking pool. Inline, a small read costs microseconds
    /// instead of two thread wake-ups (about 30 µs here); turn it off when
    /// the store is used from tasks of a `tokio::task::LocalSet`, where
    /// tokio does not support `block_in_place`. On a current-thread runtime
    /// reads always go to the blocking pool. Default: on.
    pub fn inline_reads(mut self, inline: bool) -> Self {
        self.inline_reads = inline;
        self
    }

    /// Opens the store: creates the file (and its directories) when missing,
    /// checks and migrates its schema, and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`] when the file or its directory
    /// cannot be created or opened; [`PersistError::IncompatibleStore`] when the
    /// file is not a SQLite database or has a schema newer than this code
    /// knows (the file is then left untouched). Both name the path.
    pub async fn open(self) -> Result<SqliteStorage, PersistError> {
        let path: Arc<Path> = Arc::from(self.path.as_path());
        let opening = path.clone();
        let (durability, busy_timeout) = (self.durability, self.busy_timeout);
        let (conn, readers) = tokio::task::spawn_blocking(move || {
            let conn = schema::open_writer(&opening, durability, busy_timeout)?;
            // One reader up front, to fail now rather than at the first read.
            let reader = schema::open_reader(&opening, busy_timeout)?;
            Ok::<_, PersistError>((conn, vec![reader]))
        })
        .await
        .map_err(|e| {
            PersistError::StorageUnavailable(format!(
                "opening the SQLite store {} did not finish: {e}",
                path.display()
            ))
        })??;

        let (tx, rx) = mpsc::channel();
        let limits = GroupLimits {
            max_requests: self.max_group_size,
            max_bytes: DEFAULT_MAX_GROUP_BYTES,
        };
        let thread_path = path.clone();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let commits = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let thread_commits = commits.clone();
        let thread = std::thread::Builder::new()
            .name("dactor-sqlite-writer".into())
            .spawn(move || {
                writer::run(
                    conn,
                    rx,
                    limits,
                    thread_path,
                    thread_counters,
                    thread_commits,
                )
            })
            .map_err(|e| unavailable(&path, "cannot start the writer thread", &e))?;
        tracing::info!(path = %path.display(), ?durability, "opened SQLite store");
        Ok(SqliteStorage {
            writer: tx,
            thread: Mutex::new(Some(thread)),
            readers: ReaderPool {
                idle: Mutex::new(readers),
                permits: Semaphore::new(self.readers),
                busy_timeout,
            },
            closed: Arc::new(AtomicBool::new(false)),
            counters,
            durability,
            path,
            commits,
            change_poll: self.change_poll,
            poll_interval: self.poll_interval,
            inline_reads: self.inline_reads,
            in_flight: AtomicUsize::new(0),
            watcher: std::sync::Once::new(),
        })
    }
}

/// A durable journal, snapshot and state store in one SQLite file.
///
/// It implements [`JournalStorage`], [`SnapshotStorage`] and [`StateStorage`]
/// and keeps the whole storage contract (see [`crate::storage`]). Share it as
/// an `Arc`, and hand it to a runtime through [`SqliteStorageProvider`].
///
/// # How it works
///
/// - **One file**, at the path you give, created with its directories when
///   missing. Its schema comes from the versioned SQL files in
///   `migrations/sqlite/`, applied in order and recorded in the
///   `dactor_persist_schema` table. The file is in WAL mode.
/// - **One writer thread** owns the only writing connection. Every write is
///   sent to it; the async caller waits on a channel and never blocks the
///   tokio runtime.
/// - **Group commit.** The writer takes every write already waiting (up to
///   [`SqliteStorageBuilder::max_group_size`]) into one transaction and commits
///   it with one disk flush. Each caller is answered only after the commit that
///   holds its write. A write that fails (a sequence conflict) is undone alone
///   and its neighbours in the group commit.
/// - **Readers** use their own connections (a small pool, run on tokio's
///   blocking threads), so a replay does not wait behind writes; a read sees
///   each write whole or not at all.
/// - **Checksums.** Every event, snapshot and state is stored with a CRC-32; a
///   damaged one reads back as [`PersistError::CorruptEntry`],
///   [`PersistError::CorruptSnapshot`] or [`PersistError::CorruptState`], never
///   as wrong bytes.
///
/// # Durability
///
/// By default ([`Durability::Full`]) SQLite runs with `synchronous=FULL`: in
/// WAL mode that flushes the log to disk at every commit, so a write is
/// acknowledged only once it would survive a power cut. `synchronous=NORMAL`
/// flushes only at checkpoints: a commit then survives the process being
/// killed but may be lost with the machine, so it is the opt-in
/// [`Durability::Relaxed`]. Group commit makes the flush cheap per event when
/// many actors write at once; `BENCHMARKS.md` has the figures of both.
///
/// # Closing
///
/// Dropping the store commits every write already sent, closes the file and
/// waits for the writer thread (blocking for at most one commit);
/// [`close`](SqliteStorage::close) does the same without blocking. No
/// acknowledged write is ever lost by either.
///
/// # Examples
///
/// ```
/// use dactor_persist::*;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("dactor-doc-open-{}", std::process::id()));
/// # let path = dir.join("app.db");
/// let store = SqliteStorage::open(&path).await?;
/// let id = PersistenceId::new("Account", "a-1");
/// store.write_event(&id, SequenceId(1), "Opened", b"{}").await?;
/// assert_eq!(store.read_highest_sequence(&id).await?, Some(SequenceId(1)));
/// store.close().await;
///
/// // The event survived: open the file again.
/// let again = SqliteStorage::open(&path).await?;
/// assert_eq!(again.read_events(&id, SequenceId(1)).await?.len(), 1);
/// # drop(again);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
pub struct SqliteStorage {
    writer: mpsc::Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: ReaderPool,
    closed: Arc<AtomicBool>,
    counters: Arc<Counters>,
    durability: Durability,
    path: Arc<Path>,
    /// Bumped after every commit of this store, and by the watcher for
    /// commits of other processes: live queries wait on it.
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    change_poll: Duration,
    poll_interval: Duration,
    /// Reads on the calling worker (see `SqliteStorageBuilder::inline_reads`).
    inline_reads: bool,
    /// Starts the watcher of other processes' commits, once.
    watcher: std::sync::Once,
    /// Writes submitted and not yet acknowledged.
    in_flight: AtomicUsize,
}

/// How long a lone `Relaxed` write waits for its acknowledgement on the
/// calling worker before it parks (see `SqliteStorage::submit`).
const LONE_WRITE_SPIN: Duration = Duration::from_micros(150);

impl SqliteStorage {
    /// Opens (or creates) the store at `path` with the default options:
    /// [`Durability::Full`], 4 readers, groups of up to 2048 writes.
    ///
    /// # Errors
    ///
    /// As [`SqliteStorageBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, PersistError> {
        Self::builder(path).open().await
    }

    /// Options for opening the store at `path`; finish with
    /// [`open`](SqliteStorageBuilder::open).
    pub fn builder(path: impl AsRef<Path>) -> SqliteStorageBuilder {
        SqliteStorageBuilder {
            path: path.as_ref().to_path_buf(),
            durability: Durability::default(),
            readers: DEFAULT_READERS,
            max_group_size: DEFAULT_MAX_GROUP,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            change_poll: DEFAULT_CHANGE_POLL,
            poll_interval: Duration::from_secs(1),
            inline_reads: true,
        }
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How durable an acknowledged write is.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// What the writer has done since the store was opened.
    pub fn stats(&self) -> SqliteStats {
        SqliteStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            requests: self.counters.requests.load(Ordering::Relaxed),
        }
    }

    /// The schema version this code writes (the newest it can open).
    pub fn schema_version() -> i64 {
        schema::LATEST_VERSION
    }

    /// Checks the whole file and repairs nothing: runs SQLite's own
    /// `PRAGMA integrity_check`, verifies the checksum of every event,
    /// snapshot, state and journal bookkeeping row, and checks that every
    /// journal holds exactly the events its bookkeeping promises
    /// (`deleted_to + 1 ..= highest`). It reads in one transaction on a
    /// reader connection, so writes go on meanwhile.
    ///
    /// From the command line: `dactor-persist verify <file>` (the `cli`
    /// feature's binary).
    ///
    /// # Errors
    ///
    /// Only when the check cannot start ([`PersistError::StorageUnavailable`]
    /// for a closed store); damage found is in the report, and an engine
    /// error midway is its [`stopped`](crate::storage::VerifyReport::stopped).
    ///
    /// # Examples
    ///
    /// ```
    /// use dactor_persist::*;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("dactor-doc-verify-{}", std::process::id()));
    /// let store = SqliteStorage::open(dir.join("app.db")).await?;
    /// store.write_event(&PersistenceId::new("Account", "a-1"), SequenceId(1), "Opened", b"").await?;
    /// let report = store.verify().await?;
    /// assert!(report.is_intact(), "{report}");
    /// assert_eq!((report.journals_checked, report.events_checked), (1, 1));
    /// # store.close().await;
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), PersistError>(()) }).unwrap();
    /// ```
    pub async fn verify(&self) -> Result<crate::storage::VerifyReport, PersistError> {
        self.read(verify::run).await
    }

    /// Commits every write already sent, closes the file and stops the writer
    /// thread. Afterwards every operation fails with
    /// [`PersistError::StorageUnavailable`]. Calling it again does nothing.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.readers.permits.close();
        self.readers.idle().clear();
        let (ack, done) = oneshot::channel();
        if self.writer.send(Message::Close(ack)).is_ok() {
            let _ = done.await;
        }
        let thread = self.take_thread();
        if let Some(thread) = thread {
            // The thread has answered and is returning: this join is short.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!(path = %self.path.display(), "closed SQLite store");
    }

    fn take_thread(&self) -> Option<JoinHandle<()>> {
        self.thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    fn closed_error(&self) -> PersistError {
        PersistError::StorageUnavailable(format!(
            "the SQLite store {} is closed",
            self.path.display()
        ))
    }

    /// Sends a write to the writer thread and waits for its commit.
    async fn submit(&self, op: Op) -> Result<(), PersistError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(self.closed_error());
        }
        let in_flight = InFlight::enter(&self.in_flight);
        let (ack, mut outcome) = oneshot::channel();
        self.writer
            .send(Message::Write(Request { op, ack }))
            .map_err(|_| self.closed_error())?;
        // A lone write under `Relaxed` commits without a flush in tens of
        // microseconds: waiting for it here costs less than parking this
        // worker and having the writer thread wake it (the two hand-offs
        // that made a sequential `Relaxed` writer 0.4x of raw SQLite).
        // With other writes in flight, or a flush to wait for, the task
        // parks as usual, so group commit and other tasks are unaffected.
        if in_flight.alone && self.durability == Durability::Relaxed {
            let deadline = std::time::Instant::now() + LONE_WRITE_SPIN;
            while std::time::Instant::now() < deadline {
                match outcome.try_recv() {
                    Ok(result) => return result,
                    Err(oneshot::error::TryRecvError::Empty) => std::hint::spin_loop(),
                    Err(oneshot::error::TryRecvError::Closed) => break,
                }
            }
        }
        outcome.await.map_err(|_| {
            PersistError::StorageUnavailable(format!(
                "the SQLite store {} closed before the write was committed; it was not stored",
                self.path.display()
            ))
        })?
    }

    /// Starts, once, a thread that watches the file for commits of other
    /// processes (SQLite's `PRAGMA data_version` changes when another
    /// connection commits) and wakes live queries; it ends with the store.
    fn watch_other_processes(&self) {
        self.watcher.call_once(|| {
            let path = self.path.clone();
            let closed = self.closed.clone();
            let commits = Arc::downgrade(&self.commits);
            let period = self.change_poll;
            let busy = self.readers.busy_timeout;
            let spawned = std::thread::Builder::new()
                .name("dactor-sqlite-watcher".into())
                .spawn(move || {
                    let Ok(conn) = schema::open_reader(&path, busy) else {
                        tracing::warn!(path = %path.display(), "cannot watch the file for other processes' commits; live queries poll");
                        return;
                    };
                    let mut last: Option<i64> = None;
                    while !closed.load(Ordering::Relaxed) {
                        std::thread::sleep(period);
                        let Some(commits) = commits.upgrade() else { return };
                        let version = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok();
                        if version.is_some() && last.is_some() && version != last {
                            commits.send_modify(|n| *n = n.wrapping_add(1));
                        }
                        last = version.or(last);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the SQLite watcher thread; live queries poll");
            }
        });
    }

    /// Runs `read` on a reader connection, on tokio's blocking threads.
    async fn read<T, F>(&self, read: F) -> Result<T, PersistError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, PersistError> + Send + 'static,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| self.closed_error())?;
        let conn = self.readers.idle().pop();
        let path = self.path.clone();
        let busy_timeout = self.readers.busy_timeout;
        let job = move || {
            let conn = match conn {
                Some(conn) => conn,
                None => match schema::open_reader(&path, busy_timeout) {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = read(&conn, &path);
            (Some(conn), result)
        };
        // On a multi-threaded runtime the read runs on this worker thread,
        // whose other tasks tokio hands to another thread meanwhile: a read
        // of a small actor then costs microseconds, not the two thread
        // wake-ups of a hop to the blocking pool (about 30 µs, more than the
        // read). A current-thread runtime cannot block, so it hops; so does
        // a store told not to (LocalSet tasks).
        let inline = self.inline_reads
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let (conn, result) = if inline {
            tokio::task::block_in_place(job)
        } else {
            tokio::task::spawn_blocking(job)
                .await
                .map_err(|e| unavailable(&self.path, "a read did not finish", &e))?
        };
        if let Some(conn) = conn
            && !self.closed.load(Ordering::SeqCst)
        {
            self.readers.idle().push(conn);
        }
        result
    }
}

impl fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        let Some(thread) = self.take_thread() else {
            return;
        };
        // The writer commits what is queued before the close, then stops.
        let (ack, _done) = oneshot::channel();
        if self.writer.send(Message::Close(ack)).is_ok() {
            let _ = thread.join();
        }
    }
}

/// The reader connections, each used by one read at a time.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    busy_timeout: Duration,
}

impl ReaderPool {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Only pushes and pops happen under this lock: a poisoned one is intact.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A failure that is not SQLite's, as the error every caller sees: naming the file.
fn unavailable(path: &Path, what: &str, err: &dyn fmt::Display) -> PersistError {
    PersistError::StorageUnavailable(format!("{what} (SQLite store {}): {err}", path.display()))
}

/// A SQLite failure, as the error every caller sees, naming the file: a
/// damaged file is [`PersistError::StoreDamaged`] and a format this SQLite
/// cannot read [`PersistError::IncompatibleStore`], neither of which a retry
/// can fix; anything else (a lock held too long, a full disk, an I/O error)
/// is [`PersistError::StorageUnavailable`].
fn sqlite_error(path: &Path, what: &str, err: &rusqlite::Error) -> PersistError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => PersistError::StoreDamaged {
            store: format!("SQLite file {}", path.display()),
            detail: format!(
                "{what}: {err}; `SqliteStorage::verify` reports what can still be read"
            ),
        },
        _ if err.to_string().contains("unsupported file format") => {
            PersistError::IncompatibleStore(format!(
                "{what}: {err}: {} is damaged, or was written by a newer SQLite",
                path.display()
            ))
        }
        _ => unavailable(path, what, err),
    }
}

#[async_trait]
impl JournalStorage for SqliteStorage {
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.write_events(
            persistence_id,
            &[NewEvent::new(sequence_id, event_type, payload)],
        )
        .await
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        let events: Vec<NewEvent<'_>> = entries
            .iter()
            .map(|(seq, event_type, payload)| NewEvent::new(*seq, event_type, payload))
            .collect();
        self.write_events(persistence_id, &events).await
    }

    async fn write_events(
        &self,
        persistence_id: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        let entries: Vec<(SequenceId, &str, &[u8])> = events
            .iter()
            .map(|e| (e.sequence_id, e.event_type, e.payload))
            .collect();
        validate_batch(persistence_id, &entries)?;
        if events.is_empty() {
            return Ok(());
        }
        let events = events
            .iter()
            .map(|e| {
                let tags_blob = extras::encode_tags(e.tags);
                let metadata = e.some_metadata().map(crate::Metadata::encode);
                Event {
                    sequence: e.sequence_id.0,
                    checksum: checksum::event_with(
                        persistence_id.as_str(),
                        e.sequence_id.0,
                        e.event_type,
                        e.payload,
                        tags_blob.as_deref(),
                        metadata.as_deref(),
                    ),
                    event_type: e.event_type.to_owned(),
                    payload: e.payload.to_vec(),
                    tags: e.tags.to_vec(),
                    tags_blob,
                    metadata,
                }
            })
            .collect();
        self.submit(Op::Events {
            pid: persistence_id.clone(),
            events,
        })
        .await
    }

    async fn read_events(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        self.read_events_page(persistence_id, from_sequence, usize::MAX)
            .await
    }

    async fn read_events_page(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        let pid = persistence_id.clone();
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn, path| read::events(conn, path, &pid, from_sequence.0, limit))
            .await
    }

    async fn read_highest_sequence(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError> {
        let bounds = self.read_bounds(persistence_id).await?;
        Ok((bounds.highest > SequenceId::ZERO).then_some(bounds.highest))
    }

    async fn read_bounds(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<JournalBounds, PersistError> {
        let pid = persistence_id.clone();
        self.read(move |conn, path| read::bounds(conn, path, &pid))
            .await
    }

    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError> {
        self.submit(Op::DeleteEventsTo {
            pid: persistence_id.clone(),
            to: to_sequence.0,
        })
        .await
    }
}

#[async_trait]
impl EventQueries for SqliteStorage {
    async fn read_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError> {
        let filter = filter.clone();
        self.read(move |conn, path| query::events_after(conn, path, &filter, after, max.max(1)))
            .await
    }

    async fn event_head(&self) -> Result<Offset, PersistError> {
        self.read(query::event_head).await
    }

    async fn read_envelopes(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError> {
        let pid = persistence_id.clone();
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn, path| read::envelopes(conn, path, &pid, from.0, limit))
            .await
    }

    async fn read_persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError> {
        let entity_type = entity_type.map(str::to_owned);
        let after = after.cloned();
        self.read(move |conn, path| {
            query::persistence_ids(conn, path, entity_type.as_deref(), after.as_ref(), max)
        })
        .await
    }

    async fn read_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError> {
        let entity_type = entity_type.map(str::to_owned);
        self.read(move |conn, path| {
            query::state_changes(conn, path, entity_type.as_deref(), after, max.max(1))
        })
        .await
    }

    async fn state_head(&self) -> Result<Offset, PersistError> {
        self.read(query::state_head).await
    }

    fn watch_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.watch_other_processes();
        self.commits.subscribe()
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }
}

#[async_trait]
impl SnapshotStorage for SqliteStorage {
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        validate_snapshot_sequence(persistence_id, sequence_id)?;
        self.submit(Op::SaveSnapshot {
            pid: persistence_id.clone(),
            sequence: sequence_id.0,
            checksum: checksum::snapshot(persistence_id.as_str(), sequence_id.0, payload),
            payload: payload.to_vec(),
        })
        .await
    }

    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        let pid = persistence_id.clone();
        self.read(move |conn, path| read::latest_snapshot(conn, path, &pid))
            .await
    }

    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError> {
        self.submit(Op::DeleteSnapshotsBefore {
            pid: persistence_id.clone(),
            sequence: sequence_id.0,
        })
        .await
    }
}

#[async_trait]
impl StateStorage for SqliteStorage {
    async fn save_state(
        &self,
        persistence_id: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.submit(Op::SaveState {
            pid: persistence_id.clone(),
            checksum: checksum::state(persistence_id.as_str(), payload),
            payload: payload.to_vec(),
        })
        .await
    }

    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        let pid = persistence_id.clone();
        self.read(move |conn, path| read::state(conn, path, &pid))
            .await
    }

    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError> {
        self.submit(Op::DeleteState {
            pid: persistence_id.clone(),
        })
        .await
    }
}

/// A [`StorageProvider`](crate::StorageProvider) that hands out one [`SqliteStorage`] for every id:
/// its journal, snapshots and state all live in the one file.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use dactor_persist::*;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("dactor-doc-provider-{}", std::process::id()));
/// let store = Arc::new(SqliteStorage::open(dir.join("app.db")).await?);
/// let provider = SqliteStorageProvider::from_storage(store.clone());
/// let id = PersistenceId::new("Account", "a-1");
/// assert!(provider.journal(&id).is_some());
/// assert!(provider.snapshots(&id).is_some());
/// assert!(provider.state(&id).is_some());
/// # store.close().await;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
pub type SqliteStorageProvider = SharedStoreProvider<SqliteStorage>;

impl SharedStoreProvider<SqliteStorage> {
    /// Opens the store at `path` with the default options and provides it.
    ///
    /// # Errors
    ///
    /// As [`SqliteStorageBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, PersistError> {
        Ok(Self::from_storage(Arc::new(
            SqliteStorage::open(path).await?,
        )))
    }
}
