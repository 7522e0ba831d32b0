//! Persistence for dactor actors.
//!
//! `dactor-persist` is the persistence layer of [dactor](https://crates.io/crates/dactor)
//! 0.2.0, done for real:
//!
//! - the dactor 0.2.0 persistence API, name for name: [`EventSourced`] and
//!   [`DurableState`] actors, their [`PersistentActor`] identity, the
//!   [`JournalStorage`], [`SnapshotStorage`] and [`StateStorage`] traits, and
//!   [`recover_event_sourced`] / [`recover_durable_state`];
//! - storage backends that keep one strict contract (see [`storage`]): no
//!   overwrite, a highest sequence that never goes down, snapshots ordered by
//!   sequence;
//! - derive macros (feature `derive`) that write the serialization, sequence
//!   bookkeeping and snapshot code.
//!
//! # Modules
//!
//! - [`actor`]: [`Actor`] and [`PersistentActor`]
//! - [`storage`]: the storage traits and backends: [`InMemoryStorage`];
//!   `SqliteStorage` (feature `sqlite`, on by default); `PostgresStorage`
//!   (feature `postgres`, for PostgreSQL, CockroachDB and YugabyteDB shared by
//!   several nodes; `postgres-tls` adds TLS); `NatsStorage` (feature `nats`,
//!   NATS JetStream, one server or a replicated cluster)
//! - [`query`]: the read side: [`ReadJournal`](query::ReadJournal) queries by
//!   persistence id, tag, entity type and across all ids, current and live,
//!   resumable from an [`Offset`](query::Offset)
//! - [`prelude`]: everything an actor author needs, in one `use`

#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// Lets this crate use its own derives: they expand to `::dactor_persist::...`.
#[allow(unused_extern_crates)]
extern crate self as dactor_persist;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod actor;
pub mod codec;
mod durable_state;
mod error;
mod event_sourced;
mod identity;
mod metadata;
mod policy;
pub mod prelude;
pub mod projection;
pub mod query;
mod recovery;
pub mod runtime;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use actor::{Actor, PersistentActor};
pub use async_trait::async_trait;
pub use codec::{ApplyEvent, PersistentEvent, StoredAs, StoredState, Upcast};
#[cfg(feature = "derive")]
pub use dactor_persist_derive::{DurableState, EventSourced, PersistentEvent, StoredState};
pub use durable_state::DurableState;
pub use error::PersistError;
pub use event_sourced::EventSourced;
pub use identity::{JournalEntry, PersistenceId, SequenceId, SnapshotEntry};
pub use metadata::Metadata;
pub use policy::{
    Backoff, DEFAULT_RETRY_ATTEMPTS, MAX_RETRY_DELAY, PersistFailurePolicy, RecoveryFailurePolicy,
    SaveConfig, SnapshotConfig,
};
pub use recovery::{recover_durable_state, recover_event_sourced, set_aside_id};
#[cfg(feature = "sqlite")]
pub use storage::{
    Durability, SqliteStats, SqliteStorage, SqliteStorageBuilder, SqliteStorageProvider,
};
pub use storage::{
    EACH_PAGE, EntrySink, InMemoryStorage, InMemoryStorageProvider, JournalBounds, JournalStorage,
    NewEvent, SnapshotStorage, StateStorage, StorageProvider,
};
#[cfg(feature = "nats")]
pub use storage::{NatsServer, NatsStorage, NatsStorageBuilder, NatsStorageProvider};
#[cfg(feature = "postgres")]
pub use storage::{PostgresStorage, PostgresStorageBuilder, PostgresStorageProvider};

/// The SQLite driver the store is built on, for exactly-once projection
/// handlers ([`projection::SqliteHandler`]): the same version, no second
/// dependency to keep in step.
#[cfg(feature = "sqlite")]
pub use rusqlite;
/// The PostgreSQL driver the store is built on, for exactly-once projection
/// handlers ([`projection::PostgresHandler`]).
#[cfg(feature = "postgres")]
pub use tokio_postgres;

/// The README's quick start, run as a doctest so that it never goes stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
