//! The read side: event queries by persistence id, by tag, by entity type
//! and across every id, persistence ids, and durable-state changes.
//!
//! Applications use [`ReadJournal`]; stores implement [`EventQueries`].
//! Every query comes as a *current* stream, which ends at what was committed
//! when it started, and a *live* one, which goes on as new events commit
//! (woken at once by commits in this process, and polling for those of other
//! processes). Streams read a page at a time and only when asked, so a slow
//! consumer never makes them buffer without bound.
//!
//! # Offsets and ordering
//!
//! Every event has an [`Offset`] in its store's global order. For one
//! persistence id, offsets follow sequences. A reader that resumes after the
//! offset of the last event it handled gets every later event exactly once:
//! no store ever adds an event at or below an offset it has let a reader
//! pass, not even when the event's transaction commits late. How each store
//! keeps that promise:
//!
//! - **In memory and SQLite**: one writer, so commit order is offset order;
//!   offsets are never reused, even after deletes.
//! - **PostgreSQL**: a reader reads only events of transactions older than
//!   the oldest still running (`pg_snapshot_xmin`), in (transaction,
//!   position) order; see `PostgresStorage` for what that costs and where it
//!   holds.
//! - **NATS JetStream**: offsets are (stream sequence, index in the record)
//!   of the store's one stream (`shards(1)`; queries across ids refuse a
//!   store of several); a stream only appends at its end.
//!
//! # Writing what queries read
//!
//! Tags come from the actor ([`EventSourced::event_tags`](crate::EventSourced::event_tags),
//! or the derive's `#[persist(tag = "..")]` and `#[persist(tags = path)]`),
//! metadata per persist from the runtime's `Context::set_metadata`; both are
//! stored with the event in one write ([`JournalStorage::write_events`](crate::JournalStorage::write_events)).
//! Events written before this carry no tags or metadata and still read back.

mod envelope;
mod offset;
mod source;
mod stream;

pub use envelope::{EventEnvelope, StateChange, TypedEnvelope};
#[cfg(feature = "sqlite")]
pub(crate) use envelope::{from_micros, to_micros};
pub use offset::{Offset, OffsetParseError};
pub use source::{EventFilter, EventPage, EventQueries, StatePage};
pub use stream::{
    DEFAULT_PAGE, EventStream, IdEventStream, PersistenceIdStream, ReadJournal, StateChangeStream,
    TypedEventStream, TypedIdEventStream,
};
