//! What a projection calls with its events: a handler for sinks anywhere
//! (at least once), or one that writes through the store's own transaction
//! (exactly once, SQLite and PostgreSQL), and their typed forms.

use std::future::Future;
use std::marker::PhantomData;

use async_trait::async_trait;

use crate::PersistError;
use crate::PersistentEvent;
use crate::query::{EventEnvelope, TypedEnvelope};

/// What a handler returns when it fails: any error (`?` works on most).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Handles events one at a time for a sink outside the store: an HTTP call,
/// a message broker, a search index. At least once: after a crash the
/// events since the last saved offset are handled again, so make the sink
/// idempotent on the envelope's (persistence id, sequence), which is unique
/// and stable (see [`EventEnvelope::dedup_key`]).
///
/// Any `FnMut(EventEnvelope) -> impl Future<Output = Result<(), HandlerError>>`
/// is one.
#[async_trait]
pub trait EventHandler: Send + 'static {
    /// Handles one event.
    ///
    /// # Errors
    ///
    /// Any; the projection's failure policy decides what follows.
    async fn handle(&mut self, event: EventEnvelope) -> Result<(), HandlerError>;
}

#[async_trait]
impl<F, Fut> EventHandler for F
where
    F: FnMut(EventEnvelope) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&mut self, event: EventEnvelope) -> Result<(), HandlerError> {
        self(event).await
    }
}

/// Handles a batch of events by writing a read model in the SQLite file
/// through the store's own connection, inside the store's transaction: the
/// projection's offset is saved in that same transaction, so a batch is
/// applied exactly once. Do not `BEGIN`, `COMMIT` or `ROLLBACK` (savepoints
/// are fine); return an error to undo the batch. It runs on the store's
/// writer thread, so keep it to SQL: other writes wait while it runs.
///
/// Any `FnMut(&rusqlite::Connection, &[EventEnvelope]) -> Result<(), HandlerError>`
/// is one.
#[cfg(feature = "sqlite")]
pub trait SqliteHandler: Send + 'static {
    /// Writes what `events` change in the read model.
    ///
    /// # Errors
    ///
    /// Any; the batch is undone, offset included, and the projection's
    /// failure policy decides what follows.
    fn handle(
        &mut self,
        conn: &rusqlite::Connection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError>;
}

#[cfg(feature = "sqlite")]
impl<F> SqliteHandler for F
where
    F: FnMut(&rusqlite::Connection, &[EventEnvelope]) -> Result<(), HandlerError> + Send + 'static,
{
    fn handle(
        &mut self,
        conn: &rusqlite::Connection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        self(conn, events)
    }
}

/// Handles a batch of events by writing a read model in the PostgreSQL
/// database through the store's transaction, which also saves the
/// projection's offset: a batch is applied exactly once. Do not commit or
/// roll it back; return an error to undo the batch.
#[cfg(feature = "postgres")]
#[async_trait]
pub trait PostgresHandler: Send + 'static {
    /// Writes what `events` change in the read model.
    ///
    /// # Errors
    ///
    /// Any; the batch is undone, offset included, and the projection's
    /// failure policy decides what follows.
    async fn handle(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError>;
}

/// Why a batch was not applied.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// The handler failed (or an event could not be decoded).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(
            dead_code,
            reason = "only the exactly-once stores fail a batch's handler"
        )
    )]
    Handler(HandlerError),
    /// The store failed, or the offset was not the one expected.
    Store(PersistError),
}

/// Decodes every envelope through `E`: the typed events of a batch (an old
/// event an upcaster turns into several gives several, with its envelope's
/// sequence and offset). An event `E` does not know is an error, which the
/// failure policy handles.
///
/// # Errors
///
/// The first event that does not decode, named by id and sequence.
pub fn decode_all<E: PersistentEvent>(
    events: &[EventEnvelope],
) -> Result<Vec<TypedEnvelope<E>>, HandlerError> {
    let mut typed = Vec::with_capacity(events.len());
    for e in events {
        typed.extend(
            e.clone()
                .decode_each::<E>()
                .map_err(|err| Box::new(err) as HandlerError)?,
        );
    }
    Ok(typed)
}

/// An [`EventHandler`] that gets its events decoded through `E`; made by
/// [`typed`].
pub struct Typed<E, F> {
    handler: F,
    _event: PhantomData<fn() -> E>,
}

/// Wraps `handler`, which takes [`TypedEnvelope<E>`]s, as an
/// [`EventHandler`]: an event that does not decode through `E` fails, and
/// the projection's failure policy decides what follows.
pub fn typed<E, F, Fut>(handler: F) -> Typed<E, F>
where
    E: PersistentEvent + Send + 'static,
    F: FnMut(TypedEnvelope<E>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    Typed {
        handler,
        _event: PhantomData,
    }
}

#[async_trait]
impl<E, F, Fut> EventHandler for Typed<E, F>
where
    E: PersistentEvent + Send + 'static,
    F: FnMut(TypedEnvelope<E>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&mut self, event: EventEnvelope) -> Result<(), HandlerError> {
        let mut decoded = decode_all::<E>(std::slice::from_ref(&event))?;
        match decoded.pop() {
            Some(event) => (self.handler)(event).await,
            None => Ok(()),
        }
    }
}
