//! Projections: read models kept up to date from the journal, through
//! restarts and crashes, without missing or doubling an event.
//!
//! A [`Projection`] has a name, a source (an [`EventFilter`]: a tag, an
//! entity type, or every event) and a handler, and runs as a tokio task
//! that resumes from the offset its store keeps, catches up, and follows
//! new events live. Three ways to apply events:
//!
//! - **Exactly once, in the same SQLite file**
//!   ([`Projection::run_in_sqlite`]): the handler writes its tables through
//!   the store's connection, inside the transaction that also saves the
//!   offset. A crash before the commit loses both; after it, keeps both.
//! - **Exactly once, in the same PostgreSQL database**
//!   (`Projection::run_in_postgres`, feature `postgres`): the same, in a PostgreSQL
//!   transaction.
//! - **At least once, anywhere** ([`Projection::run_at_least_once`]): an
//!   async handler for any sink; the offset is saved every `save_every`
//!   events or `save_interval`, so after a crash the events since the last
//!   save are handled again: deduplicate on
//!   [`EventEnvelope::dedup_key`](crate::query::EventEnvelope::dedup_key).
//!
//! Events are applied in batches (up to [`Projection::batch`] events or
//! time), in the store's global order, each at most once per transaction.
//! Only one instance of a projection runs at a time across every process
//! sharing the store: it holds a lease (a lock file beside a SQLite
//! database, an advisory lock on PostgreSQL, a flag in memory); other
//! instances wait in [`ProjectionState::Standby`] and take over when it
//! ends. Offsets move only by updates guarded by the offset last seen, so
//! even two instances that both believe they hold the lease cannot both
//! advance one: the second gets [`PersistError::OffsetConflict`] and starts
//! over from the stored offset.
//!
//! A failing handler follows the [`ProjectionFailurePolicy`]: retry with
//! backoff, then stop or skip; a skip is logged with the event's id and
//! sequence and counted. [`Projections`] manages projections through their
//! store, running or not: offsets (clear to rebuild), pause and resume
//! (stored, so a pause survives a restart), status and lag.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use dactor_persist::*;
//! use dactor_persist::projection::{HandlerError, Projection};
//! use dactor_persist::query::{EventEnvelope, EventQueries};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! # let dir = std::env::temp_dir().join(format!("dactor-doc-proj-{}", std::process::id()));
//! let store = Arc::new(SqliteStorage::open(dir.join("shop.db")).await?);
//! let cart = PersistenceId::new("Cart", "c-1");
//! store.write_event(&cart, SequenceId(1), "CheckedOut", b"").await?;
//!
//! // A read model in the same file, kept exactly once.
//! let handle = Projection::by_entity_type("carts", "Cart").run_in_sqlite(
//!     store.clone(),
//!     |conn: &rusqlite::Connection, events: &[EventEnvelope]| -> Result<(), HandlerError> {
//!         conn.execute_batch("CREATE TABLE IF NOT EXISTS carts (id TEXT PRIMARY KEY)")?;
//!         for event in events {
//!             conn.execute(
//!                 "INSERT OR IGNORE INTO carts VALUES (?1)",
//!                 [event.persistence_id.as_str()],
//!             )?;
//!         }
//!         Ok(())
//!     },
//! )?;
//! let head = store.event_head().await?;
//! handle.wait_for(head).await?;
//! handle.stop().await;
//! # store.close().await;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod handle;
mod handler;
mod policy;
mod runner;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

pub use handle::{LAG_COUNT_LIMIT, ProjectionHandle, ProjectionLag, Projections};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use handler::BatchError;
#[cfg(feature = "postgres")]
pub use handler::PostgresHandler;
#[cfg(feature = "sqlite")]
pub use handler::SqliteHandler;
pub use handler::{EventHandler, HandlerError, Typed, decode_all, typed};
pub use policy::{AfterRetries, ProjectionFailurePolicy};
pub use store::{LeaseGuard, ProjectionLease, ProjectionRecord, ProjectionStore};

use crate::PersistError;
use crate::query::{EventFilter, EventQueries, Offset};
use runner::{Mode, Runner};

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectionState {
    /// Taking its lease and loading its offset.
    Starting,
    /// Another instance holds the lease; this one waits to take over.
    Standby,
    /// Paused in its store; it handles nothing until resumed.
    Paused,
    /// Handling events, or waiting for new ones.
    Running,
    /// The store or the handler failed; trying again after a delay.
    Retrying {
        /// The last error.
        error: String,
    },
    /// Stopped through its handle.
    Stopped,
    /// Stopped by a failure its policy does not retry: the error names it
    /// (and the event, when there was one). Its offset stays before the
    /// event.
    Failed {
        /// What happened.
        error: String,
    },
}

/// What a running projection reports through its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// Where it stands.
    pub state: ProjectionState,
    /// The offset saved in the store: a restart resumes after it.
    pub saved_offset: Option<Offset>,
    /// The offset of the last event handled (ahead of the saved one between
    /// the saves of an at-least-once projection).
    pub handled_offset: Option<Offset>,
    /// Events handled since it started.
    pub events_handled: u64,
    /// Events skipped by the failure policy since it started.
    pub events_skipped: u64,
    /// When the last event it handled was written.
    pub last_event_written_at: Option<SystemTime>,
}

/// How a projection runs; see [`Projection`]'s setters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) batch_size: usize,
    pub(crate) batch_window: Duration,
    pub(crate) save_every: usize,
    pub(crate) save_interval: Duration,
    pub(crate) check_interval: Duration,
    pub(crate) store_retry_delay: Duration,
    pub(crate) policy: ProjectionFailurePolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_size: 1000,
            batch_window: Duration::from_millis(50),
            save_every: 100,
            save_interval: Duration::from_secs(1),
            check_interval: Duration::from_secs(1),
            store_retry_delay: Duration::from_millis(100),
            policy: ProjectionFailurePolicy::default(),
        }
    }
}

/// A projection to run: its name, its source and how it runs. Start it with
/// [`run_in_sqlite`](Self::run_in_sqlite),
/// `run_in_postgres` (feature `postgres`) or
/// [`run_at_least_once`](Self::run_at_least_once); see the
/// [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "a projection does nothing until run"]
pub struct Projection {
    name: String,
    filter: EventFilter,
    settings: Settings,
}

impl Projection {
    /// A projection named `name` (its offset's key in the store: keep it
    /// stable) over the events `filter` passes.
    pub fn new(name: impl Into<String>, filter: EventFilter) -> Self {
        Projection {
            name: name.into(),
            filter,
            settings: Settings::default(),
        }
    }

    /// Over the events carrying `tag`.
    pub fn by_tag(name: impl Into<String>, tag: impl Into<String>) -> Self {
        Self::new(name, EventFilter::Tag(tag.into()))
    }

    /// Over the events of one entity type.
    pub fn by_entity_type(name: impl Into<String>, entity_type: impl Into<String>) -> Self {
        Self::new(name, EventFilter::EntityType(entity_type.into()))
    }

    /// Over every event.
    pub fn all(name: impl Into<String>) -> Self {
        Self::new(name, EventFilter::All)
    }

    /// Applies up to `events` events per transaction (at least 1), waiting
    /// at most `window` for a batch to fill once its first event arrived.
    /// Default: 1000 events, 50 ms.
    pub fn batch(mut self, events: usize, window: Duration) -> Self {
        self.settings.batch_size = events.max(1);
        self.settings.batch_window = window;
        self
    }

    /// For at-least-once projections: saves the offset every `events`
    /// events (at least 1) or every `interval`, whichever comes first, and
    /// on stop. After a crash, at most the events since the last save are
    /// handled again. Default: 100 events, 1 s.
    pub fn save_every(mut self, events: usize, interval: Duration) -> Self {
        self.settings.save_every = events.max(1);
        self.settings.save_interval = interval;
        self
    }

    /// What happens when the handler fails. Default:
    /// [`ProjectionFailurePolicy::default`] (five retries, then stop).
    pub fn on_failure(mut self, policy: ProjectionFailurePolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// How often an idle projection looks at its store: for a pause, an
    /// offset set by an operator, a lease to take over. Default: 1 s.
    pub fn check_interval(mut self, interval: Duration) -> Self {
        self.settings.check_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the projection at least once: `handler` gets each event; see
    /// the [module docs](self). Any store with queries and projection
    /// records works (the in-memory store too).
    ///
    /// # Errors
    ///
    /// [`PersistError::ProjectionFailed`] for a bad name. Everything else
    /// shows in the handle's status.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn run_at_least_once<S, H>(
        self,
        store: Arc<S>,
        handler: H,
    ) -> Result<ProjectionHandle, PersistError>
    where
        S: EventQueries + ProjectionStore + 'static,
        H: EventHandler,
    {
        let queries: Arc<dyn EventQueries> = store.clone();
        self.spawn(queries, store, Mode::AtLeastOnce(Box::new(handler)))
    }

    /// Runs the projection exactly once in the SQLite file of `store`:
    /// `handler` writes through the store's connection in the transaction
    /// that saves the offset (see [`SqliteHandler`]).
    ///
    /// # Errors
    ///
    /// [`PersistError::ProjectionFailed`] for a bad name.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[cfg(feature = "sqlite")]
    pub fn run_in_sqlite<H: SqliteHandler>(
        self,
        store: Arc<crate::SqliteStorage>,
        handler: H,
    ) -> Result<ProjectionHandle, PersistError> {
        let handler: Arc<std::sync::Mutex<dyn SqliteHandler>> =
            Arc::new(std::sync::Mutex::new(handler));
        let mode = Mode::Sqlite {
            store: store.clone(),
            handler,
        };
        let queries: Arc<dyn EventQueries> = store.clone();
        self.spawn(queries, store, mode)
    }

    /// Runs the projection exactly once in the PostgreSQL database of
    /// `store`: `handler` writes in the transaction that saves the offset
    /// (see [`PostgresHandler`]).
    ///
    /// # Errors
    ///
    /// [`PersistError::ProjectionFailed`] for a bad name.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[cfg(feature = "postgres")]
    pub fn run_in_postgres<H: PostgresHandler>(
        self,
        store: Arc<crate::PostgresStorage>,
        handler: H,
    ) -> Result<ProjectionHandle, PersistError> {
        let mode = Mode::Postgres {
            store: store.clone(),
            handler: Box::new(handler),
        };
        let queries: Arc<dyn EventQueries> = store.clone();
        self.spawn(queries, store, mode)
    }

    fn spawn(
        self,
        queries: Arc<dyn EventQueries>,
        store: Arc<dyn ProjectionStore>,
        mode: Mode,
    ) -> Result<ProjectionHandle, PersistError> {
        store::check_name(&self.name)?;
        let (status, watcher) = watch::channel(ProjectionStatus {
            name: self.name.clone(),
            state: ProjectionState::Starting,
            saved_offset: None,
            handled_offset: None,
            events_handled: 0,
            events_skipped: 0,
            last_event_written_at: None,
        });
        let (control, inbox) = mpsc::unbounded_channel();
        let runner = Runner::new(
            (self.name.clone(), self.filter.clone(), self.settings),
            queries.clone(),
            store.clone(),
            mode,
            status,
            inbox,
        );
        let task = tokio::spawn(runner.run());
        Ok(ProjectionHandle::new(
            self.name,
            self.filter,
            Projections::from_dyn(queries, store),
            watcher,
            control,
            task,
        ))
    }
}
