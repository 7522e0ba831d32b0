//! The server-backed store: [`PostgresStorage`], journals, snapshots and
//! durable state in a PostgreSQL database (13 or newer), shared by every
//! node of an application.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::TryStreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::config::Host;

use super::{
    EACH_PAGE, EntrySink, JournalBounds, JournalStorage, NewEvent, SharedStoreProvider,
    SnapshotStorage, StateStorage, validate_batch, validate_snapshot_sequence,
};
use crate::query::{
    EventEnvelope, EventFilter, EventPage, EventQueries, Offset, StateChange, StatePage,
};
use crate::{JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

use super::in_flight::InFlight;
use super::{checksum, extras};
mod errors;
mod live;
mod read;
mod schema;
mod sql;
mod states;
mod v2;
mod verify;
mod writer;

use writer::{Event, GroupLimits, Message, Request};

/// Runs `$body` (async, answering `Result<T, tokio_postgres::Error>`) with
/// `$conn` bound to a pooled connection, within the operation bound, retrying
/// serialization failures; a connection that broke or timed out is dropped,
/// not returned to the pool. Evaluates to `Result<T, PersistError>`.
///
/// A macro rather than a function taking an async closure: the futures of
/// `#[async_trait]` methods must be `Send`, which a generic async closure
/// cannot yet promise.
macro_rules! with_conn {
    ($store:ident, $what:expr, $pid:expr, |$conn:ident| $body:block) => {{
        let what: &'static str = $what;
        let shared = &$store.shared;
        match $store.check_open() {
            Err(e) => Err(e),
            Ok(()) => {
                let deadline = Instant::now() + shared.op_timeout;
                match shared.connection(what, deadline).await {
                    Err(e) => Err(e),
                    Ok(conn) => {
                        #[allow(unused_mut)]
                        let mut $conn = conn;
                        let mut attempt = 0u32;
                        loop {
                            let result: Result<Result<_, tokio_postgres::Error>, _> =
                                tokio::time::timeout_at(deadline, async { $body }).await;
                            match result {
                                Ok(Ok(value)) => break Ok(value),
                                Ok(Err(e)) if errors::is_retryable(&e) && attempt < 3 => {
                                    attempt += 1;
                                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                                }
                                Ok(Err(e)) => break Err(shared.failed(what, $pid, $conn, &e)),
                                Err(_elapsed) => {
                                    // The statement may still run on the
                                    // server: ask it to stop (best effort).
                                    let cancel = $conn.cancel_token();
                                    tokio::spawn(async move {
                                        let _ = cancel.cancel_query(tokio_postgres::NoTls).await;
                                    });
                                    discard($conn);
                                    break Err(shared.timed_out(what, false));
                                }
                            }
                        }
                    }
                }
            }
        }
    }};
}

mod projection;

const DEFAULT_SCHEMA: &str = "dactor_persist";
const DEFAULT_POOL_SIZE: usize = 16;
const DEFAULT_WRITERS: usize = 2;
const DEFAULT_MAX_GROUP: usize = 1024;
const DEFAULT_MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long readers may be held back by an older transaction before the
/// store says so in its log (and again at most this often), by default.
const DEFAULT_STALL_REPORT: Duration = Duration::from_secs(5);
/// PostgreSQL's longest identifier (NAMEDATALEN - 1).
const MAX_SCHEMA_LEN: usize = 63;
/// Entries reserved up front for a page of events, whatever its bound.
const PAGE_RESERVE: usize = 8192;
/// About how many bytes of events one `read_events_each` query reads.
const READ_BYTES: u64 = 32 * 1024 * 1024;
/// How many writes whose outcome is unknown the store remembers, to settle
/// them when they are retried.
const MAX_UNKNOWN_WRITES: usize = 65_536;

/// Options for connecting a [`PostgresStorage`]; made by
/// [`PostgresStorage::builder`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use dactor_persist::PostgresStorage;
///
/// # async fn example() -> Result<(), dactor_persist::PersistError> {
/// let store = PostgresStorage::builder("postgres://app@db.internal/app")
///     .schema("billing")                          // several applications, one database
///     .pool_size(32)
///     .operation_timeout(Duration::from_secs(3))  // a write fails within 3 s when the server is gone
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct PostgresStorageBuilder {
    url: String,
    schema: String,
    pool_size: usize,
    writers: usize,
    max_group_size: usize,
    max_group_bytes: usize,
    connect_timeout: Duration,
    operation_timeout: Duration,
    poll_interval: Duration,
    notify_commits: bool,
    stall_report: Duration,
    #[cfg(feature = "postgres-tls")]
    tls: Option<rustls::ClientConfig>,
}

impl fmt::Debug for PostgresStorageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never print it.
        let mut s = f.debug_struct("PostgresStorageBuilder");
        s.field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("writers", &self.writers)
            .field("max_group_size", &self.max_group_size)
            .field("max_group_bytes", &self.max_group_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout);
        #[cfg(feature = "postgres-tls")]
        s.field("tls", &self.tls.is_some());
        s.finish_non_exhaustive()
    }
}

impl PostgresStorageBuilder {
    /// Sets the schema that holds the store's tables; it is created when
    /// missing. Several applications share one database by each using its
    /// own schema. The name is taken literally (quoted: case is kept, any
    /// character allowed), at most 63 bytes. Default: `dactor_persist`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets how many connections the pool holds at most (at least 2: the
    /// writers and the readers need theirs). Default: 16.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(2);
        self
    }

    /// Sets how many group-commit writers run at once, each with its own
    /// connection: while one waits for its commit, the next gathers the writes
    /// that arrive meanwhile (at least 1). Default: 2.
    pub fn writers(mut self, writers: usize) -> Self {
        self.writers = writers.max(1);
        self
    }

    /// Sets how many journal writes at most one group commit holds (at least
    /// 1; 1 turns group commit off). Default: 1024.
    pub fn max_group_size(mut self, requests: usize) -> Self {
        self.max_group_size = requests.max(1);
        self
    }

    /// Sets how many payload bytes one group commit gathers before it is
    /// sent, whatever its number of writes (a single larger write still goes
    /// alone). Default: 16 MiB.
    pub fn max_group_bytes(mut self, bytes: usize) -> Self {
        self.max_group_bytes = bytes.max(1);
        self
    }

    /// Sets how long opening one connection may take (unless the URL sets
    /// `connect_timeout` itself). Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the bound on every operation, waiting for a connection included:
    /// past it the operation fails with [`PersistError::StorageUnavailable`]
    /// and the connection it used is dropped, so an outage is reported in
    /// this time instead of hanging. Default: 10 s.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Sets how often a live query that is caught up reads again without a
    /// hint (commits of this store wake it at once, others' through
    /// `LISTEN`/`NOTIFY`). Default: 500 ms.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets whether each burst of commits sends a `NOTIFY` hint (after the
    /// commit) to live queries in other processes. Default: on.
    pub fn notify_commits(mut self, notify: bool) -> Self {
        self.notify_commits = notify;
        self
    }

    /// Sets how long readers may be held back by a transaction still
    /// running (see [`PostgresStorage::readers_held_back`]) before the store
    /// logs a warning naming it; repeated at most this often. Default: 5 s.
    pub fn reader_stall_warning(mut self, after: Duration) -> Self {
        self.stall_report = after;
        self
    }

    /// Connects over TLS, with this rustls 0.23 configuration (its root
    /// certificates decide which servers are trusted); build it with a
    /// crypto provider, e.g. `rustls::ClientConfig::builder_with_provider(
    /// Arc::new(rustls::crypto::ring::default_provider()))`. The URL's
    /// `sslmode` still applies: `require` refuses a server without TLS.
    /// Without this the store connects in plain text, and a URL with
    /// `sslmode=require` fails.
    #[cfg(feature = "postgres-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
    pub fn tls(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Connects: opens a first connection, creates the schema and applies the
    /// pending migrations, and starts the group-commit writers.
    ///
    /// # Errors
    ///
    /// [`PersistError::IncompatibleStore`] for a URL that does not parse, a
    /// schema name that is empty, too long or holds a NUL, or a database whose
    /// schema version is newer than this code knows (nothing is then changed);
    /// [`PersistError::StorageUnavailable`] when the server cannot be reached
    /// or refuses the migrations. Messages name the server and database,
    /// never the password.
    pub async fn connect(self) -> Result<PostgresStorage, PersistError> {
        let mut config: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| PersistError::IncompatibleStore(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("dactor-persist");
        }
        let target = describe_target(&config);
        if self.schema.is_empty()
            || self.schema.len() > MAX_SCHEMA_LEN
            || self.schema.contains('\0')
        {
            return Err(PersistError::IncompatibleStore(format!(
                "invalid schema name {:?} for {target}: it must be 1 to {MAX_SCHEMA_LEN} bytes \
                 without NUL",
                self.schema
            )));
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        #[cfg(feature = "postgres-tls")]
        let manager = match self.tls.clone() {
            Some(tls) => Manager::from_config(
                config.clone(),
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            ),
            None => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
        };
        #[cfg(not(feature = "postgres-tls"))]
        let manager = Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config);
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.operation_timeout))
            .create_timeout(Some(self.operation_timeout))
            .recycle_timeout(Some(self.operation_timeout))
            .build()
            .map_err(|e| {
                PersistError::IncompatibleStore(format!(
                    "cannot build the connection pool for {target}: {e}"
                ))
            })?;

        let quoted_schema = sql::quote_identifier(&self.schema);
        let ping = Arc::new(tokio::sync::Notify::new());
        let shared = Arc::new(Shared {
            pool,
            sql: sql::Statements::new(&quoted_schema),
            target: format!("{target}, schema {quoted_schema}"),
            schema: self.schema,
            quoted_schema,
            op_timeout: self.operation_timeout,
            poll_interval: self.poll_interval,
            stall_report: self.stall_report,
            commits: tokio::sync::watch::Sender::new(0),
            ping: self.notify_commits.then(|| ping.clone()),
            pg_config: config,
            #[cfg(feature = "postgres-tls")]
            tls: self.tls,
            listening: std::sync::Once::new(),
            background: Mutex::new(Vec::new()),
            stall: Mutex::new(None),
        });
        let deadline = Instant::now() + shared.op_timeout;
        let mut conn = shared.connection("connect", deadline).await?;
        shared.migrate(&mut conn).await?;
        shared.warm_up(&conn, deadline).await?;
        drop(conn);

        let (sender, receiver) = mpsc::unbounded_channel();
        let queue: writer::Queue = Arc::new(tokio::sync::Mutex::new(receiver));
        let limits = GroupLimits {
            max_requests: self.max_group_size,
            max_bytes: self.max_group_bytes,
        };
        let writers = (0..self.writers)
            .map(|_| tokio::spawn(writer::run(shared.clone(), queue.clone(), limits)))
            .collect();
        let (state_sender, state_queue) = mpsc::unbounded_channel();
        let state_writer = tokio::spawn(states::run(shared.clone(), state_queue, limits));
        if self.notify_commits {
            let notifier = tokio::spawn(live::notifier(Arc::downgrade(&shared), ping));
            lock(&shared.background).push(notifier);
        }
        tracing::info!(target = %shared.target, "connected PostgreSQL store");
        Ok(PostgresStorage {
            shared,
            sender,
            queue,
            writers: Mutex::new(writers),
            state_sender,
            state_writer: Mutex::new(Some(state_writer)),
            states_in_flight: Arc::new(AtomicUsize::new(0)),
            row_bytes: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            unknown: Mutex::new(UnknownWrites::default()),
            ids: WriteIds::new(),
        })
    }
}

/// A durable journal, snapshot and state store in a PostgreSQL database,
/// which several processes (nodes) may share.
///
/// It implements [`JournalStorage`], [`SnapshotStorage`] and [`StateStorage`]
/// and keeps the whole storage contract (see [`crate::storage`]). Share it as
/// an `Arc`, and hand it to a runtime through [`PostgresStorageProvider`].
/// Its tests run against PostgreSQL 15; it needs PostgreSQL 13 or newer
/// (`pg_current_snapshot()`, for the global order below), and refuses other
/// servers on connect, changing nothing: CockroachDB and YugabyteDB speak
/// the protocol, but have no transaction ids ordered across the cluster, on
/// which the global order stands.
///
/// # How it works
///
/// - **Connections** come from a pool ([deadpool-postgres]) over
///   [tokio-postgres], from a URL such as
///   `postgres://user:password@host:5432/database`. TLS is the
///   `postgres-tls` feature (`PostgresStorageBuilder::tls`).
/// - **Schema.** The tables live in one schema (default `dactor_persist`,
///   created when missing), so several applications can share a database.
///   They come from the versioned SQL files in `migrations/postgres/`,
///   applied in order and recorded in `dactor_persist_schema`; a database
///   with a newer version than this code knows is refused untouched.
/// - **Several nodes.** The journal's primary key (persistence id, sequence)
///   is the single-writer fence: when two processes persist for the same id,
///   exactly one wins each sequence and the other gets
///   [`PersistError::SequenceConflict`] (a unique violation is never reported
///   as [`PersistError::StorageUnavailable`]). No advisory lock is used.
/// - **Group commit.** Concurrent journal writes from many actors are
///   gathered by a few writer tasks into one multi-row `INSERT` (one round
///   trip, one commit); each caller is answered once the commit holding its
///   write is done, and a write that conflicts fails alone.
/// - **Bounded failures.** Every operation, waiting for a connection
///   included, fails with [`PersistError::StorageUnavailable`] after
///   [`PostgresStorageBuilder::operation_timeout`]; the connection it used is
///   dropped and the pool opens new ones when the server is back.
/// - **Unknown outcomes.** When the connection breaks while a write is being
///   committed, nobody can tell whether it was stored: the caller gets
///   `StorageUnavailable`, and the store remembers the write. When the same
///   write (same id, sequences and contents) is tried again on this store and
///   finds its sequences taken by that very attempt, it succeeds instead of
///   reporting a conflict with itself. So a retrying actor carries on after
///   an outage, and another writer's events are still always a conflict.
/// - **Checksums.** Every event, snapshot and state is stored with a CRC-32
///   (the same scheme as the SQLite store); a damaged one reads back as
///   [`PersistError::CorruptEntry`], [`PersistError::CorruptSnapshot`] or
///   [`PersistError::CorruptState`], never as wrong bytes.
///
/// # The global order, and why it never skips
///
/// The read side ([`EventQueries`], through [`crate::query::ReadJournal`])
/// gives every event a place in one order across all ids: (the id of the
/// transaction that wrote it, a position from a sequence). A position is
/// drawn when the row is inserted but becomes visible only when its
/// transaction commits, so positions alone are not commit order: a reader
/// that resumed from "the highest position seen" would skip an event whose
/// transaction committed late. That is how Marten, Eventuous and
/// SQLStreamStore lost events ("wait for the gap, then skip it").
///
/// Here a reader reads only the events of transactions older than the
/// oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`, the
/// readers' *horizon*), in (transaction id, position) order. Every such
/// transaction has ended, and every transaction that writes later gets a
/// larger id, so nothing can appear below what a reader has passed: no
/// timeout ever turns a gap into a skip. Writers wait for nothing and take
/// no lock; the cost is on the write path an index on the order and a
/// sequence (positions are cached a thousand at a time per connection),
/// and on the read side a lag: an event is readable once every transaction
/// that started before its own has ended. With 1,000 actors writing
/// flat out the lag from a transaction's start to a live reader on another
/// node measured p50 12 ms, p99 25 ms (`BENCHMARKS.md`).
///
/// The catch: any long transaction on the *database*, not only this
/// store's, holds every reader back until it ends (it skips nothing; it
/// delays). [`PostgresStorage::readers_held_back`] says for how long, and
/// the store logs a warning naming the transaction's `pg_stat_activity`
/// row once readers are held back longer than
/// [`PostgresStorageBuilder::reader_stall_warning`] (default 5 s).
///
/// Live queries are woken within the process by the commit itself, and
/// across processes by `NOTIFY dactor_persist`, sent by a task of its own
/// on its own connection *after* the commit (a `NOTIFY` inside the append
/// transaction would serialize every commit on the server's notify lock);
/// polling every [`PostgresStorageBuilder::poll_interval`] is the floor
/// should a hint be lost.
///
/// Text columns cannot hold the NUL character: a persistence id or event type
/// containing one is refused with [`PersistError::InvalidInput`], and so is a
/// persistence id too long for a PostgreSQL index entry (about 2.7 KB after
/// compression).
///
/// # Tables
///
/// `journal (persistence_id, sequence, event_type, payload, checksum,
/// write_id, tx_id, position, written_at, tags, metadata)`, `event_tags
/// (tag, tx_id, position, persistence_id, sequence)`, `journal_meta
/// (persistence_id, highest, deleted_to, checksum)` (for an id whose events
/// were deleted, or removed behind the store's back: how far, and the
/// highest sequence it had; the journal's triggers record removals by any
/// statement), `snapshots (persistence_id, sequence, payload, checksum)`,
/// `states (persistence_id, payload, checksum, tx_id, position,
/// written_at)` and `dactor_persist_schema (version, name, applied_at)`, all
/// in the configured schema; see `migrations/postgres/`.
///
/// # Statements
///
/// Every statement the store issues, with `{schema}` standing for the
/// configured schema's quoted name; every value is a parameter. Besides
/// these, only `BEGIN`, `COMMIT` and `ROLLBACK` (around a group commit that
/// holds a batch, around `delete_events_to`, and around migrations) and the
/// migration files themselves.
///
/// Journal writes (group commit; the second when the group is one event),
/// and the undo of a partly refused batch:
/// ```sql
#[doc = sql::insert_events!()]
/// ```
/// ```sql
#[doc = sql::insert_event!()]
/// ```
/// ```sql
#[doc = sql::undoing_batch!()]
/// ```
/// ```sql
#[doc = sql::undo_events!()]
/// ```
/// A group with tagged events writes their tags in the same statement, and
/// undoes them with their batch:
/// ```sql
#[doc = sql::insert_tagged_events!()]
/// ```
/// ```sql
#[doc = sql::undo_tags!()]
/// ```
/// Settling a retried write whose earlier outcome was unknown:
/// ```sql
#[doc = sql::written_by!()]
/// ```
/// Journal reads:
/// ```sql
#[doc = sql::read_events!()]
/// ```
/// ```sql
#[doc = sql::bounds!()]
/// ```
/// The read side ([`EventQueries`]): pages after an offset below the
/// readers' horizon, by entity type or by tag, the heads, persistence ids,
/// state changes, and commit hints:
/// ```sql
#[doc = sql::events_after!()]
/// ```
/// ```sql
#[doc = sql::tagged_after!()]
/// ```
/// ```sql
#[doc = sql::event_head!()]
/// ```
/// ```sql
#[doc = sql::read_envelopes!()]
/// ```
/// ```sql
#[doc = sql::persistence_ids!()]
/// ```
/// ```sql
#[doc = sql::deleted_ids!()]
/// ```
/// ```sql
#[doc = sql::states_after!()]
/// ```
/// ```sql
#[doc = sql::state_head!()]
/// ```
/// ```sql
#[doc = sql::notify!()]
/// ```
/// ```sql
#[doc = sql::oldest_transaction!()]
/// ```
/// `delete_events_to`, in one transaction with the bounds query (and the
/// tags of the events it removes):
/// ```sql
#[doc = sql::delete_tags!()]
/// ```
/// ```sql
#[doc = sql::delete_events!()]
/// ```
/// ```sql
#[doc = sql::upsert_meta!()]
/// ```
/// Snapshots:
/// ```sql
#[doc = sql::save_snapshot!()]
/// ```
/// ```sql
#[doc = sql::latest_snapshot!()]
/// ```
/// ```sql
#[doc = sql::delete_snapshots!()]
/// ```
/// Durable state (a save alone, and the saves of a group of ids at once):
/// ```sql
#[doc = sql::save_state!()]
/// ```
/// ```sql
#[doc = sql::save_states!()]
/// ```
/// ```sql
#[doc = sql::load_state!()]
/// ```
/// ```sql
#[doc = sql::delete_state!()]
/// ```
/// Connecting and migrating:
/// ```sql
#[doc = sql::version_table_exists!()]
/// ```
/// ```sql
#[doc = sql::schema_exists!()]
/// ```
/// ```sql
#[doc = sql::create_schema!()]
/// ```
/// ```sql
#[doc = sql::create_version_table!()]
/// ```
/// ```sql
#[doc = sql::schema_version!()]
/// ```
/// ```sql
#[doc = sql::record_version!()]
/// ```
///
/// # Examples
///
/// ```no_run
/// use dactor_persist::*;
///
/// # async fn example() -> Result<(), PersistError> {
/// let store = PostgresStorage::connect("postgres://postgres@127.0.0.1:5432/app").await?;
/// let id = PersistenceId::new("Account", "a-1");
/// store.write_event(&id, SequenceId(1), "Opened", b"{}").await?;
/// assert_eq!(store.read_highest_sequence(&id).await?, Some(SequenceId(1)));
///
/// // Another node writing at the same sequence is refused.
/// let err = store.write_event(&id, SequenceId(1), "Opened", b"{}").await.unwrap_err();
/// assert!(matches!(err, PersistError::SequenceConflict { .. }));
/// store.close().await;
/// # Ok(()) }
/// ```
///
/// [deadpool-postgres]: https://docs.rs/deadpool-postgres
/// [tokio-postgres]: https://docs.rs/tokio-postgres
pub struct PostgresStorage {
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Message>,
    queue: writer::Queue,
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// The group-commit writer of durable states (`states.rs`).
    state_sender: mpsc::UnboundedSender<states::Message>,
    state_writer: Mutex<Option<JoinHandle<()>>>,
    /// Bytes of payload and type per event in this store's last
    /// `read_events_each` (0: none yet), to size the next.
    row_bytes: AtomicU64,
    /// Saves of states under way (held by their callers or by the state
    /// writer): a save that finds none runs alone.
    states_in_flight: Arc<AtomicUsize>,
    closed: AtomicBool,
    unknown: Mutex<UnknownWrites>,
    ids: WriteIds,
}

impl PostgresStorage {
    /// Connects to the database at `url` with the default options: schema
    /// `dactor_persist`, 16 connections, operations bounded by 10 s.
    ///
    /// # Errors
    ///
    /// As [`PostgresStorageBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, PersistError> {
        Self::builder(url).connect().await
    }

    /// Options for connecting to the database at `url`; finish with
    /// [`connect`](PostgresStorageBuilder::connect).
    pub fn builder(url: impl Into<String>) -> PostgresStorageBuilder {
        PostgresStorageBuilder {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            writers: DEFAULT_WRITERS,
            max_group_size: DEFAULT_MAX_GROUP,
            max_group_bytes: DEFAULT_MAX_GROUP_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            notify_commits: true,
            stall_report: DEFAULT_STALL_REPORT,
            #[cfg(feature = "postgres-tls")]
            tls: None,
        }
    }

    /// How long readers of this store have been held back by a transaction
    /// still running in the database, when they are: events committed after
    /// that transaction started wait until it ends (a reader never skips
    /// them). `None` when readers are not held back, or not for longer than
    /// [`PostgresStorageBuilder::reader_stall_warning`]; the store also logs
    /// a warning naming the transaction then.
    pub fn readers_held_back(&self) -> Option<Duration> {
        let stall = lock(&self.shared.stall);
        stall
            .as_ref()
            .filter(|s| s.confirmed)
            .map(|s| s.since.elapsed())
    }

    /// The schema holding the store's tables, as configured (unquoted).
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The schema version this code writes (the newest it accepts).
    pub fn schema_version() -> i64 {
        schema::LATEST_VERSION
    }

    /// Stores every write already sent, then closes the connections.
    /// Afterwards every operation fails with
    /// [`PersistError::StorageUnavailable`]. Calling it again does nothing.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let writers = std::mem::take(&mut *lock(&self.writers));
        for _ in &writers {
            let _ = self.sender.send(Message::Close);
        }
        for writer in writers {
            let _ = writer.await;
        }
        let state_writer = lock(&self.state_writer).take();
        if let Some(state_writer) = state_writer {
            let _ = self.state_sender.send(states::Message::Close);
            let _ = state_writer.await;
        }
        // Whatever raced past the close flag is answered, not left waiting.
        let mut queue = self.queue.lock().await;
        queue.close();
        while let Ok(message) = queue.try_recv() {
            if let Message::Write(request) = message {
                let _ = request.ack.send(Err(Failure {
                    error: self.closed_error(),
                    unknown: false,
                }));
            }
        }
        for task in std::mem::take(&mut *lock(&self.shared.background)) {
            task.abort();
        }
        self.shared.pool.close();
        tracing::info!(target = %self.shared.target, "closed PostgreSQL store");
    }

    fn closed_error(&self) -> PersistError {
        PersistError::StorageUnavailable(format!(
            "the PostgreSQL store ({}) is closed",
            self.shared.target
        ))
    }

    fn check_open(&self) -> Result<(), PersistError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// Sends a journal write to the group-commit writers and waits for its
    /// commit, within the operation bound.
    async fn submit(&self, pid: &PersistenceId, events: Vec<Event>) -> Result<(), PersistError> {
        self.check_open()?;
        let Some(first) = events.first().map(|e| e.sequence) else {
            return Ok(());
        };
        let key = (pid.clone(), first);
        let earlier = lock(&self.unknown).get(&key);
        let write_id = earlier.unwrap_or_else(|| self.ids.next());
        let (ack, outcome) = oneshot::channel();
        let request = Request {
            pid: pid.clone(),
            events,
            write_id,
            retrying_unknown: earlier.is_some(),
            ack,
        };
        self.sender
            .send(Message::Write(request))
            .map_err(|_| self.closed_error())?;
        let outcome = match tokio::time::timeout(self.shared.op_timeout, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(Failure {
                error: PersistError::StorageUnavailable(format!(
                    "the PostgreSQL store ({}) stopped before the write to `{pid}` finished; \
                     it may or may not have been stored",
                    self.shared.target
                )),
                unknown: true,
            }),
            Err(_) => Err(Failure {
                error: self.shared.timed_out("writing events", true),
                unknown: true,
            }),
        };
        match outcome {
            Ok(()) => {
                if earlier.is_some() {
                    lock(&self.unknown).remove(&key);
                }
                Ok(())
            }
            Err(Failure {
                error,
                unknown: true,
            }) => {
                lock(&self.unknown).insert(key, write_id);
                Err(error)
            }
            // Kept after a conflict: the rows may be that earlier attempt's
            // with other contents than this write's, and the very write may
            // still come to settle it.
            Err(Failure { error, .. }) => Err(error),
        }
    }

    /// Checks the events of a journal write and checksums them.
    fn events(pid: &PersistenceId, entries: &[NewEvent<'_>]) -> Result<Vec<Event>, PersistError> {
        let plain: Vec<(SequenceId, &str, &[u8])> = entries
            .iter()
            .map(|e| (e.sequence_id, e.event_type, e.payload))
            .collect();
        validate_batch(pid, &plain)?;
        refuse_nul(pid, "persistence id", &pid.0)?;
        entries
            .iter()
            .map(|e| {
                refuse_nul(pid, "event type", e.event_type)?;
                for tag in e.tags {
                    refuse_nul(pid, "tag", tag)?;
                }
                let tags_blob = extras::encode_tags(e.tags);
                let metadata = e.some_metadata().map(crate::Metadata::encode);
                Ok(Event {
                    sequence: e.sequence_id.0,
                    checksum: i64::from(checksum::event_with(
                        pid.as_str(),
                        e.sequence_id.0,
                        e.event_type,
                        e.payload,
                        tags_blob.as_deref(),
                        metadata.as_deref(),
                    )),
                    event_type: e.event_type.to_owned(),
                    payload: e.payload.to_vec(),
                    tags: e.tags.to_vec(),
                    tags_blob,
                    metadata,
                })
            })
            .collect()
    }

    /// Notes whether readers are held back by a transaction older than the
    /// events committed after it, and says so in the log when it lasts.
    async fn watch_stall(&self, xmin: i64) {
        let now = Instant::now();
        let report = {
            let mut stall = lock(&self.shared.stall);
            let every = self.shared.stall_report;
            match stall.as_mut() {
                Some(s) if s.xmin == xmin => {
                    let due = s.reported.is_none_or(|at| now - at >= every);
                    if now - s.since >= every && due {
                        s.reported = Some(now);
                        Some(now - s.since)
                    } else {
                        None
                    }
                }
                _ => {
                    *stall = Some(Stall {
                        xmin,
                        since: now,
                        reported: None,
                        confirmed: false,
                    });
                    None
                }
            }
        };
        let Some(held) = report else { return };
        let head = self.event_head().await.ok().map(Offset::as_pair);
        if head.is_none_or(|(tx, _)| tx < xmin) {
            // Nothing waits behind the old transaction.
            return;
        }
        if let Some(s) = lock(&self.shared.stall).as_mut().filter(|s| s.xmin == xmin) {
            s.confirmed = true;
        }
        let deadline = Instant::now() + self.shared.op_timeout;
        let oldest = match self
            .shared
            .connection("find the oldest transaction", deadline)
            .await
        {
            Ok(conn) => conn
                .query_opt(sql::oldest_transaction!(), &[])
                .await
                .ok()
                .flatten()
                .map(|row| {
                    let pid: i32 = row.try_get(0).unwrap_or_default();
                    let age: Option<String> = row.try_get(1).ok();
                    let state: Option<String> = row.try_get(2).ok();
                    let query: Option<String> = row.try_get(3).ok();
                    format!(
                        "backend {pid}, running for {}, {}: {}",
                        age.unwrap_or_default(),
                        state.unwrap_or_default(),
                        query.unwrap_or_default()
                    )
                }),
            Err(_) => None,
        };
        tracing::warn!(
            target = %self.shared.target,
            held_back_ms = held.as_millis() as u64,
            transaction = xmin,
            oldest = oldest.as_deref().unwrap_or("unknown"),
            "readers are held back by a transaction still running: events committed after it \
             are delivered once it ends (nothing is skipped)"
        );
    }
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("target", &self.shared.target)
            .field("operation_timeout", &self.shared.op_timeout)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the store and its writer tasks share.
pub(super) struct Shared {
    pool: Pool,
    sql: sql::Statements,
    /// The schema as configured, and quoted for SQL.
    schema: String,
    quoted_schema: String,
    /// "postgres://host:port/database, schema \"s\"", for messages (no password).
    target: String,
    op_timeout: Duration,
    poll_interval: Duration,
    stall_report: Duration,
    /// Bumped after every commit of this store, and by the listener for
    /// other processes' commit hints: live queries wait on it.
    commits: tokio::sync::watch::Sender<u64>,
    /// Pings the notifier task (when commit hints are on).
    ping: Option<Arc<tokio::sync::Notify>>,
    /// For the listening connection, which is not pooled.
    pg_config: tokio_postgres::Config,
    #[cfg(feature = "postgres-tls")]
    tls: Option<rustls::ClientConfig>,
    /// Starts the listener, once.
    listening: std::sync::Once,
    /// The notifier and listener tasks, aborted on close.
    background: Mutex<Vec<JoinHandle<()>>>,
    /// Since when readers have been held back at one horizon, and when
    /// that was last reported.
    stall: Mutex<Option<Stall>>,
}

/// Readers held back by an old transaction.
struct Stall {
    xmin: i64,
    since: Instant,
    reported: Option<Instant>,
    /// Events were seen waiting behind the transaction.
    confirmed: bool,
}

impl Shared {
    /// After a commit: wakes this process's live queries, and asks the
    /// notifier to hint the others'.
    fn committed(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(ping) = &self.ping {
            ping.notify_one();
        }
    }

    /// Prepares the statements of a recovery on the connection that the
    /// first operations will use, and runs the journal's once, so that
    /// the first recoveries after connecting do not pay for statement
    /// preparation and the server backend's cold catalog caches (a first
    /// recovery of 20,000 events on a new handle took 1.10x the second
    /// without this, 1.04-1.06x with it: medians of 25 handles).
    async fn warm_up(&self, conn: &Object, deadline: Instant) -> Result<(), PersistError> {
        const WHAT: &str = "prepare the store's statements";
        let sql = &self.sql;
        let warm = tokio::time::timeout_at(deadline, async {
            for statement in [
                &sql.bounds,
                &sql.latest_snapshot,
                &sql.read_events,
                &sql.load_state,
            ] {
                conn.prepare_cached(statement).await?;
            }
            // An id (a control character) that reads as nothing: the plan and
            // the tables' catalog entries are loaded all the same.
            let bounds = conn.prepare_cached(&sql.bounds).await?;
            conn.query_opt(&bounds, &[&"\u{1}"]).await.map(drop)
        })
        .await;
        match warm {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.unavailable(WHAT, &e, false)),
            Err(_) => Err(self.timed_out(WHAT, false)),
        }
    }

    /// A pooled connection, waiting no later than `deadline`.
    async fn connection(&self, what: &str, deadline: Instant) -> Result<Object, PersistError> {
        match tokio::time::timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(PersistError::StorageUnavailable(format!(
                "{what}: no connection to the PostgreSQL store ({}): {}",
                self.target,
                pool_error(&e)
            ))),
            Err(_) => Err(self.timed_out(what, false)),
        }
    }

    /// A driver error, as every caller sees it: naming the store. The server
    /// reporting damaged data or a damaged index (`XX001`, `XX002`) is
    /// [`PersistError::StoreDamaged`], which no retry can fix.
    fn unavailable(&self, what: &str, e: &tokio_postgres::Error, unknown: bool) -> PersistError {
        if errors::is_damage(e) {
            return PersistError::StoreDamaged {
                store: format!("PostgreSQL {}", self.target),
                detail: format!(
                    "{what}: {}; `PostgresStorage::verify` reports what can still be read",
                    errors::describe(e)
                ),
            };
        }
        let outcome = if unknown {
            "; the write may or may not have been stored"
        } else {
            ""
        };
        PersistError::StorageUnavailable(format!(
            "{what} (PostgreSQL store {}): {}{outcome}",
            self.target,
            errors::describe(e)
        ))
    }

    /// A failed operation's error; its connection is dropped when broken.
    fn failed(
        &self,
        what: &str,
        pid: &PersistenceId,
        conn: Object,
        e: &tokio_postgres::Error,
    ) -> PersistError {
        if errors::is_connection_broken(e) {
            discard(conn);
        }
        if errors::is_too_large(e) {
            return too_large(pid, e);
        }
        self.unavailable(what, e, false)
    }

    fn timed_out(&self, what: &str, unknown: bool) -> PersistError {
        let outcome = if unknown {
            "; the write may or may not have been stored"
        } else {
            ""
        };
        PersistError::StorageUnavailable(format!(
            "{what} timed out after {:?} (PostgreSQL store {}){outcome}",
            self.op_timeout, self.target
        ))
    }
}

/// Why a journal write failed, and whether it may have been stored anyway.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    error: PersistError,
    unknown: bool,
}

/// Drops a connection instead of returning it to the pool.
fn discard(conn: Object) {
    drop(Object::take(conn));
}

fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => errors::describe(e),
        other => other.to_string(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only map updates happen under these locks: a poisoned one is intact.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// "postgres://host:port/database", from the parsed URL, without user or password.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts.join(",")
    };
    format!(
        "postgres://{hosts}/{}",
        config.get_dbname().unwrap_or_default()
    )
}

/// Refuses text PostgreSQL cannot store: the NUL character.
fn refuse_nul(pid: &PersistenceId, what: &str, text: &str) -> Result<(), PersistError> {
    if text.contains('\0') {
        return Err(PersistError::InvalidInput {
            persistence_id: pid.clone(),
            detail: format!(
                "the {what} contains a NUL character, which PostgreSQL text cannot hold"
            ),
        });
    }
    Ok(())
}

fn too_large(pid: &PersistenceId, e: &tokio_postgres::Error) -> PersistError {
    PersistError::InvalidInput {
        persistence_id: PersistenceId(pid.0.chars().take(64).collect()),
        detail: format!(
            "the persistence id ({} bytes) is too long for a PostgreSQL index entry: {}",
            pid.0.len(),
            errors::describe(e)
        ),
    }
}

/// The writes whose outcome is unknown, by (persistence id, first sequence):
/// the write_id they used, so that a retry can recognise its own rows.
#[derive(Default)]
struct UnknownWrites {
    ids: HashMap<(PersistenceId, i64), i64>,
    order: VecDeque<(PersistenceId, i64)>,
}

impl UnknownWrites {
    fn get(&self, key: &(PersistenceId, i64)) -> Option<i64> {
        if self.ids.is_empty() {
            return None;
        }
        self.ids.get(key).copied()
    }

    fn insert(&mut self, key: (PersistenceId, i64), write_id: i64) {
        if self.ids.insert(key.clone(), write_id).is_none() {
            self.order.push_back(key);
        }
        while self.ids.len() > MAX_UNKNOWN_WRITES {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.ids.remove(&oldest);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, key: &(PersistenceId, i64)) {
        if self.ids.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }
}

/// Draws the write_id of each journal write: random across stores and
/// processes, distinct within one (splitmix64 over a counter is a bijection).
struct WriteIds {
    seed: u64,
    counter: AtomicU64,
}

impl WriteIds {
    fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        std::process::id().hash(&mut hasher);
        std::time::SystemTime::now().hash(&mut hasher);
        Self {
            seed: hasher.finish(),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> i64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut z = self
            .seed
            .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as i64
    }
}

#[async_trait]
impl JournalStorage for PostgresStorage {
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        let events = Self::events(
            persistence_id,
            &[NewEvent::new(sequence_id, event_type, payload)],
        )?;
        self.submit(persistence_id, events).await
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        let entries: Vec<NewEvent<'_>> = entries
            .iter()
            .map(|(seq, event_type, payload)| NewEvent::new(*seq, event_type, payload))
            .collect();
        let events = Self::events(persistence_id, &entries)?;
        self.submit(persistence_id, events).await
    }

    async fn write_events(
        &self,
        persistence_id: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        let events = Self::events(persistence_id, events)?;
        self.submit(persistence_id, events).await
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
        if persistence_id.0.contains('\0') || max == 0 {
            // Nothing can be stored under such an id.
            return Ok(Vec::new());
        }
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        // Rows are checked and converted as they arrive, while the server is
        // still sending the rest: the two run on different cores.
        with_conn!(self, "read events", persistence_id, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.read_events).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&persistence_id.0, &from_sequence.0, &limit];
            let rows = conn.query_raw(&stmt, params).await?;
            futures_util::pin_mut!(rows);
            let mut entries: Vec<JournalEntry> = Vec::with_capacity(max.min(PAGE_RESERVE));
            while let Some(row) = rows.try_next().await? {
                let after = entries
                    .last()
                    .map_or(from_sequence.0.saturating_sub(1), |e| e.sequence_id.0);
                let entry = match read::next_event(&row, persistence_id, after, &self.shared.target)
                {
                    Ok(event) => JournalEntry {
                        sequence_id: SequenceId(event.sequence),
                        event_type: event.event_type.to_owned(),
                        payload: event.payload.to_vec(),
                    },
                    Err(damaged) => return Ok(Err(damaged)),
                };
                entries.push(entry);
            }
            Ok(Ok(entries))
        })?
    }

    async fn read_events_each(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
        each: &mut EntrySink<'_>,
    ) -> Result<usize, PersistError> {
        if persistence_id.0.contains('\0') || max == 0 {
            return Ok(0);
        }
        // One entry, refilled for every row: no allocation per event once
        // its buffers have grown to the largest.
        let mut entry = JournalEntry {
            sequence_id: SequenceId::ZERO,
            event_type: String::new(),
            payload: Vec::new(),
        };
        // One query reads at most about READ_BYTES of rows, judged by the
        // rows this store read last, so that one read of large events stays
        // well within the operation bound.
        let max = match self.row_bytes.load(Ordering::Relaxed) {
            0 => max.min(EACH_PAGE),
            bytes => max.min(
                usize::try_from(READ_BYTES / bytes)
                    .unwrap_or(usize::MAX)
                    .max(64),
            ),
        };
        // What was handed out so far: a retried attempt (after a
        // serialization failure) asks for the rest only.
        let (mut handed, mut after) = (0usize, from_sequence.0.saturating_sub(1));
        let mut bytes = 0u64;
        let read = with_conn!(self, "read events", persistence_id, |conn| {
            if handed > 0 && after == i64::MAX {
                // Nothing can follow the last possible sequence.
                return Ok(Ok(handed));
            }
            let stmt = conn.prepare_cached(&self.shared.sql.read_events).await?;
            let start = after.saturating_add(1);
            let limit = i64::try_from(max.saturating_sub(handed)).unwrap_or(i64::MAX);
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&persistence_id.0, &start, &limit];
            let rows = conn.query_raw(&stmt, params).await?;
            futures_util::pin_mut!(rows);
            // Rows are checked and handed on as they arrive, while the
            // server is still sending the rest.
            while let Some(row) = rows.try_next().await? {
                let event = match read::next_event(&row, persistence_id, after, &self.shared.target)
                {
                    Ok(event) => event,
                    Err(damaged) => return Ok(Err(damaged)),
                };
                entry.sequence_id = SequenceId(event.sequence);
                entry.event_type.clear();
                entry.event_type.push_str(event.event_type);
                entry.payload.clear();
                entry.payload.extend_from_slice(event.payload);
                (handed, after) = (handed + 1, event.sequence);
                bytes = bytes.saturating_add((event.payload.len() + event.event_type.len()) as u64);
                match each(&entry) {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => break,
                    Err(stop) => return Ok(Err(stop)),
                }
            }
            Ok(Ok(handed))
        })?;
        if let Some(per_row) = bytes.checked_div(handed as u64) {
            self.row_bytes.store(per_row.max(1), Ordering::Relaxed);
        }
        read
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
        if persistence_id.0.contains('\0') {
            return Ok(JournalBounds::default());
        }
        let row = with_conn!(self, "read the journal bounds", persistence_id, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.bounds).await?;
            conn.query_one(&stmt, &[&persistence_id.0]).await
        })?;
        read::bounds(&row, persistence_id, &self.shared.target)
    }

    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError> {
        if to_sequence.0 < 1 || persistence_id.0.contains('\0') {
            return Ok(());
        }
        let sql = &self.shared.sql;
        let target = &self.shared.target;
        with_conn!(self, "delete events", persistence_id, |conn| {
            let tx = conn.transaction().await?;
            let row = tx
                .query_one(&tx.prepare_cached(&sql.bounds).await?, &[&persistence_id.0])
                .await?;
            let bounds = match read::bounds(&row, persistence_id, target) {
                Ok(bounds) => bounds,
                // Nothing is changed on damaged bookkeeping.
                Err(damaged) => return Ok(Err(damaged)),
            };
            let highest = bounds.highest.0;
            if highest == 0 {
                tx.commit().await?;
                return Ok(Ok(()));
            }
            tx.execute(
                &tx.prepare_cached(&sql.delete_tags).await?,
                &[&persistence_id.0, &to_sequence.0],
            )
            .await?;
            tx.execute(
                &tx.prepare_cached(&sql.delete_events).await?,
                &[&persistence_id.0, &to_sequence.0],
            )
            .await?;
            // Sequences above the highest were never used: they stay free.
            let deleted_to = bounds.deleted_to.0.max(to_sequence.0.min(highest));
            tx.execute(
                &tx.prepare_cached(&sql.upsert_meta).await?,
                &[&persistence_id.0, &highest, &deleted_to],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })?
    }
}

impl PostgresStorage {
    /// One event row of a page of the global order, from column 1 on, as
    /// an envelope of `pid`, checked.
    fn page_event(
        &self,
        row: &tokio_postgres::Row,
        pid: &str,
    ) -> Result<EventEnvelope, PersistError> {
        let pid = PersistenceId(pid.to_owned());
        if !matches!(row.try_get::<_, Option<i64>>(1), Ok(Some(_))) {
            return Err(PersistError::CorruptEntry {
                sequence_id: SequenceId::ZERO,
                detail: format!(
                    "{} tags an event of `{pid}` that is not stored",
                    self.shared.target
                ),
            });
        }
        read::envelope(row, 1, &pid)
    }

    /// The error for a page read without its horizon row, which every page
    /// query returns first.
    fn no_horizon(&self) -> PersistError {
        PersistError::IncompatibleStore(format!(
            "{} answered a page of the global order without its horizon row: \
             the server does not run this store's queries as PostgreSQL does",
            self.shared.target
        ))
    }
}

/// A page's horizon: everything of transactions older than `xmin` is final;
/// for a full page, its last offset.
fn horizon(xmin: i64, full_at: Option<Offset>) -> Offset {
    full_at.unwrap_or_else(|| Offset::pair(xmin.saturating_sub(1), i64::MAX))
}

#[async_trait]
impl EventQueries for PostgresStorage {
    async fn read_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError> {
        let (tx, position) = after.as_pair();
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        let (sql, key) = match filter {
            EventFilter::All => (&self.shared.sql.events_after, None),
            EventFilter::EntityType(entity) => {
                (&self.shared.sql.events_after, Some(entity.as_str()))
            }
            EventFilter::Tag(tag) => (&self.shared.sql.tagged_after, Some(tag.as_str())),
        };
        let pid = PersistenceId(String::new());
        // Rows are checked and converted as they arrive, while the server is
        // still sending the rest.
        let (mut events, xmin, held_back, damaged) =
            with_conn!(self, "read the event log", &pid, |conn| {
                let stmt = conn.prepare_cached(sql).await?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                    [&tx, &position, &limit, &key];
                let rows = conn.query_raw(&stmt, params).await?;
                futures_util::pin_mut!(rows);
                let mut horizon = None;
                let mut events = Vec::with_capacity(max.min(PAGE_RESERVE));
                let mut damaged = false;
                while let Some(row) = rows.try_next().await? {
                    if let Some(xmin) = row.try_get::<_, Option<i64>>(0)? {
                        let held = row.try_get::<_, Option<bool>>(11)?.unwrap_or(false);
                        horizon = Some((xmin, held));
                        continue;
                    }
                    let Some(pid) = row.try_get::<_, Option<&str>>(10)? else {
                        continue;
                    };
                    match self.page_event(&row, pid) {
                        Ok(event) => events.push(event),
                        // The events before the damage are delivered; the
                        // next page starts at the damage, and fails there.
                        Err(_) if !events.is_empty() => {
                            damaged = true;
                            break;
                        }
                        Err(damage) => return Ok(Err(damage)),
                    }
                }
                let Some((xmin, held)) = horizon else {
                    return Ok(Err(self.no_horizon()));
                };
                Ok(Ok((events, xmin, held, damaged)))
            })??;
        // The server returns the page in order; should a plan ever interleave
        // the horizon row's branch, the page is still the right set of rows.
        if !events.is_sorted_by_key(|e| e.offset) {
            events.sort_by_key(|e| e.offset);
        }
        let full = events.len() >= max || damaged;
        let page_horizon = horizon(
            xmin,
            full.then(|| events.last().map(|e| e.offset)).flatten(),
        );
        if full {
            *lock(&self.shared.stall) = None;
        } else {
            self.watch_stall(xmin).await;
        }
        Ok(EventPage::new(events, page_horizon).held_back(held_back))
    }

    async fn event_head(&self) -> Result<Offset, PersistError> {
        let pid = PersistenceId(String::new());
        let row = with_conn!(self, "read the head of the log", &pid, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.event_head).await?;
            conn.query_opt(&stmt, &[]).await
        })?;
        Ok(match row {
            Some(row) => Offset::pair(
                row.try_get(0).unwrap_or_default(),
                row.try_get(1).unwrap_or_default(),
            ),
            None => Offset::START,
        })
    }

    async fn read_envelopes(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError> {
        if persistence_id.0.contains('\0') || max == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = with_conn!(self, "read events", persistence_id, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.read_envelopes).await?;
            conn.query(&stmt, &[&persistence_id.0, &from.0, &limit])
                .await
        })?;
        let mut envelopes: Vec<EventEnvelope> = Vec::with_capacity(rows.len());
        for row in &rows {
            let envelope = read::envelope(row, 0, persistence_id)?;
            if envelopes
                .last()
                .is_some_and(|last| last.sequence_id >= envelope.sequence_id)
            {
                return Err(PersistError::CorruptEntry {
                    sequence_id: envelope.sequence_id,
                    detail: format!(
                        "{} returned event {} of `{persistence_id}` out of order: its index is damaged",
                        self.shared.target, envelope.sequence_id.0
                    ),
                });
            }
            envelopes.push(envelope);
        }
        Ok(envelopes)
    }

    async fn read_persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let after = after.map(|a| a.0.as_str());
        let pid = PersistenceId(String::new());
        let (with_events, deleted) = with_conn!(self, "read the persistence ids", &pid, |conn| {
            let ids = conn
                .prepare_cached(&self.shared.sql.persistence_ids)
                .await?;
            let with_events = conn.query(&ids, &[&after, &entity_type, &limit]).await?;
            let gone = conn.prepare_cached(&self.shared.sql.deleted_ids).await?;
            let deleted = conn.query(&gone, &[&after, &entity_type, &limit]).await?;
            Ok((with_events, deleted))
        })?;
        let mut ids: Vec<String> = with_events
            .iter()
            .chain(&deleted)
            .filter_map(|row| row.try_get::<_, String>(0).ok())
            .collect();
        ids.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        ids.dedup();
        ids.truncate(max);
        Ok(ids.into_iter().map(PersistenceId).collect())
    }

    async fn read_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError> {
        let (tx, position) = after.as_pair();
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        let pid = PersistenceId(String::new());
        let rows = with_conn!(self, "read the state changes", &pid, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.states_after).await?;
            conn.query(&stmt, &[&tx, &position, &limit, &entity_type])
                .await
        })?;
        let mut xmin = None;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(horizon) = row.try_get::<_, Option<i64>>(0).ok().flatten() {
                xmin = Some(horizon);
                continue;
            }
            let Some(id) = row.try_get::<_, Option<String>>(1).ok().flatten() else {
                continue;
            };
            let pid = PersistenceId(id);
            let payload = read::state(row, &pid, 2)?;
            let tx_id: i64 = row.try_get(4).unwrap_or_default();
            let position: i64 = row.try_get(5).unwrap_or_default();
            let written_at: Option<std::time::SystemTime> = row.try_get(6).ok().flatten();
            changes.push(StateChange {
                persistence_id: pid,
                offset: Offset::pair(tx_id, position),
                payload,
                timestamp: written_at.unwrap_or(std::time::UNIX_EPOCH),
            });
        }
        let Some(xmin) = xmin else {
            return Err(self.no_horizon());
        };
        if !changes.is_sorted_by_key(|c| c.offset) {
            changes.sort_by_key(|c| c.offset);
        }
        let full = changes.len() >= max;
        let page_horizon = horizon(
            xmin,
            full.then(|| changes.last().map(|c| c.offset)).flatten(),
        );
        Ok(StatePage::new(changes, page_horizon))
    }

    async fn state_head(&self) -> Result<Offset, PersistError> {
        let pid = PersistenceId(String::new());
        let row = with_conn!(self, "read the head of the state saves", &pid, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.state_head).await?;
            conn.query_opt(&stmt, &[]).await
        })?;
        Ok(match row {
            Some(row) => Offset::pair(
                row.try_get(0).unwrap_or_default(),
                row.try_get(1).unwrap_or_default(),
            ),
            None => Offset::START,
        })
    }

    fn watch_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        let shared = Arc::downgrade(&self.shared);
        self.shared.listening.call_once(|| {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let listener = runtime.spawn(live::listener(shared));
                lock(&self.shared.background).push(listener);
            }
        });
        self.shared.commits.subscribe()
    }

    fn poll_interval(&self) -> Duration {
        self.shared.poll_interval
    }
}

#[async_trait]
impl SnapshotStorage for PostgresStorage {
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        validate_snapshot_sequence(persistence_id, sequence_id)?;
        refuse_nul(persistence_id, "persistence id", &persistence_id.0)?;
        let checksum = i64::from(checksum::snapshot(
            persistence_id.as_str(),
            sequence_id.0,
            payload,
        ));
        with_conn!(self, "save a snapshot", persistence_id, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.save_snapshot).await?;
            conn.execute(
                &stmt,
                &[&persistence_id.0, &sequence_id.0, &payload, &checksum],
            )
            .await
        })
        .map(drop)
    }

    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        if persistence_id.0.contains('\0') {
            return Ok(None);
        }
        let row = with_conn!(self, "load the latest snapshot", persistence_id, |conn| {
            let stmt = conn
                .prepare_cached(&self.shared.sql.latest_snapshot)
                .await?;
            conn.query_opt(&stmt, &[&persistence_id.0]).await
        })?;
        row.map(|row| read::snapshot(&row, persistence_id))
            .transpose()
    }

    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError> {
        if persistence_id.0.contains('\0') {
            return Ok(());
        }
        with_conn!(self, "delete snapshots", persistence_id, |conn| {
            let stmt = conn
                .prepare_cached(&self.shared.sql.delete_snapshots)
                .await?;
            conn.execute(&stmt, &[&persistence_id.0, &sequence_id.0])
                .await
        })
        .map(drop)
    }
}

#[async_trait]
impl StateStorage for PostgresStorage {
    async fn save_state(
        &self,
        persistence_id: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        refuse_nul(persistence_id, "persistence id", &persistence_id.0)?;
        self.check_open()?;
        let checksum = i64::from(checksum::state(persistence_id.as_str(), payload));
        let counted = InFlight::enter(self.states_in_flight.clone());
        if counted.alone {
            // Nobody else is saving: the save runs here, without the hop to
            // the state writer and back (about 60 us on a busy machine).
            return with_conn!(self, "save a state", persistence_id, |conn| {
                let stmt = conn.prepare_cached(&self.shared.sql.save_state).await?;
                conn.execute(&stmt, &[&persistence_id.0, &payload, &checksum])
                    .await
            })
            .map(|_| self.shared.committed());
        }
        // Saves that arrive together share one statement and one commit.
        // The save stays counted while the writer holds it, even if this
        // caller stops waiting (see `states.rs`).
        let (ack, outcome) = oneshot::channel();
        let save = states::Save {
            pid: persistence_id.clone(),
            payload: payload.to_vec(),
            checksum,
            deadline: Instant::now() + self.shared.op_timeout,
            ack,
            _counted: counted,
        };
        self.state_sender
            .send(states::Message::Save(save))
            .map_err(|_| self.closed_error())?;
        match tokio::time::timeout(self.shared.op_timeout, outcome).await {
            Ok(Ok(outcome)) => outcome,
            // Stopped with the save in its queue (the store was closed).
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(self.shared.timed_out("saving a state", true)),
        }
    }

    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        if persistence_id.0.contains('\0') {
            return Ok(None);
        }
        let row = with_conn!(self, "load a state", persistence_id, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.load_state).await?;
            conn.query_opt(&stmt, &[&persistence_id.0]).await
        })?;
        row.map(|row| read::state(&row, persistence_id, 0))
            .transpose()
    }

    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError> {
        if persistence_id.0.contains('\0') {
            return Ok(());
        }
        self.check_open()?;
        // Saves the state writer holds are done with first: none of them
        // may land after the delete.
        let counted = InFlight::enter(self.states_in_flight.clone());
        if !counted.alone {
            let (done, settled) = oneshot::channel();
            self.state_sender
                .send(states::Message::Barrier(done))
                .map_err(|_| self.closed_error())?;
            match tokio::time::timeout(self.shared.op_timeout, settled).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(self.closed_error()),
                Err(_) => return Err(self.shared.timed_out("deleting a state", false)),
            }
        }
        with_conn!(self, "delete a state", persistence_id, |conn| {
            let stmt = conn.prepare_cached(&self.shared.sql.delete_state).await?;
            conn.execute(&stmt, &[&persistence_id.0]).await
        })
        .map(drop)
    }
}

/// A [`StorageProvider`](crate::StorageProvider) that hands out one [`PostgresStorage`] for every
/// id: its journal, snapshots and state all live in the one database schema.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use dactor_persist::*;
///
/// # async fn example() -> Result<(), PersistError> {
/// let provider = PostgresStorageProvider::connect("postgres://postgres@127.0.0.1/app").await?;
/// let id = PersistenceId::new("Account", "a-1");
/// assert!(provider.journal(&id).is_some());
/// # Ok(()) }
/// ```
pub type PostgresStorageProvider = SharedStoreProvider<PostgresStorage>;

impl SharedStoreProvider<PostgresStorage> {
    /// Connects to `url` with the default options and provides the store.
    ///
    /// # Errors
    ///
    /// As [`PostgresStorageBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, PersistError> {
        Ok(Self::from_storage(Arc::new(
            PostgresStorage::connect(url).await?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_ids_are_distinct() {
        let ids = WriteIds::new();
        let drawn: std::collections::HashSet<i64> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(drawn.len(), 10_000);
        assert_ne!(WriteIds::new().next(), WriteIds::new().next());
    }

    #[test]
    fn unknown_writes_are_bounded_and_forgotten() {
        let mut unknown = UnknownWrites::default();
        let key = |n: i64| (PersistenceId::new("A", "1"), n);
        unknown.insert(key(1), 10);
        assert_eq!(unknown.get(&key(1)), Some(10));
        unknown.remove(&key(1));
        assert_eq!(unknown.get(&key(1)), None);
        for n in 0..(MAX_UNKNOWN_WRITES as i64 + 10) {
            unknown.insert(key(n), n);
        }
        assert_eq!(unknown.ids.len(), MAX_UNKNOWN_WRITES);
        assert_eq!(unknown.get(&key(0)), None);
        assert_eq!(
            unknown.get(&key(MAX_UNKNOWN_WRITES as i64 + 9)),
            Some(MAX_UNKNOWN_WRITES as i64 + 9)
        );
    }

    #[test]
    fn targets_never_show_the_password() {
        let config: tokio_postgres::Config = "postgres://app:secret@db.example:6432/prod"
            .parse()
            .unwrap();
        let target = describe_target(&config);
        assert_eq!(target, "postgres://db.example:6432/prod");
        assert!(!target.contains("secret"));
    }

    #[test]
    fn nul_characters_are_refused_before_any_io() {
        let pid = PersistenceId::new("A", "x\0y");
        let err = PostgresStorage::events(&pid, &[NewEvent::new(SequenceId(1), "E", b"")])
            .err()
            .unwrap();
        assert!(matches!(err, PersistError::InvalidInput { .. }), "{err}");
        let pid = PersistenceId::new("A", "1");
        let err = PostgresStorage::events(&pid, &[NewEvent::new(SequenceId(1), "E\0", b"")])
            .err()
            .unwrap();
        assert!(matches!(err, PersistError::InvalidInput { .. }), "{err}");
    }
}
