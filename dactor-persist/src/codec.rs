//! How events and state are encoded: the traits the derives implement, and the
//! stable, evolution-safe payload layouts they use.
//!
//! # Event payloads
//!
//! An event written by `#[derive(PersistentEvent)]` is stored as the variant's
//! stable name (a postcard string) followed by the variant's fields (a postcard
//! tuple, in declaration order). Decoding dispatches on the name, never on the
//! variant's position, so reordering variants or inserting new ones does not
//! change how stored events decode, and a renamed variant keeps reading old
//! events through `#[persist(alias = "OldName")]`. The same name is stored as
//! the journal entry's `event_type`.
//!
//! Changing the fields of an existing variant is not compatible (postcard is
//! not self-describing): add a new variant instead, and keep the old one to
//! read old events.
//!
//! # State and snapshot payloads
//!
//! `#[derive(EventSourced)]` snapshots and `#[derive(DurableState)]` states are
//! stored as an 8-byte fingerprint of the struct's stored fields (names, types
//! and `snapshot_version`) followed by the postcard tuple of those fields. A
//! fingerprint that does not match the current struct makes `restore_snapshot`
//! answer [`PersistError::SnapshotIncompatible`]: recovery then replays the
//! journal instead of loading garbage.

use crate::PersistError;

/// An event type with stable names and a self-describing encoding.
///
/// Derive it with `#[derive(PersistentEvent)]` on an enum; see the
/// [module docs](self) for the layout.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a persisted event",
    label = "this type does not implement `PersistentEvent`",
    note = "add `#[derive(PersistentEvent)]` to the event enum"
)]
pub trait PersistentEvent: Sized + Send + Sync + 'static {
    /// Every name this type writes, in declaration order.
    const EVENT_TYPES: &'static [&'static str];

    /// The stable name of this event's variant, stored as the journal entry's
    /// `event_type`.
    fn event_type(&self) -> &'static str;

    /// Encodes the event (name and fields).
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`] when a field cannot be encoded.
    fn encode(&self) -> Result<Vec<u8>, PersistError>;

    /// Decodes an event written by [`encode`](PersistentEvent::encode), under
    /// its current name or an alias.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`] naming the unknown event type, or
    /// the variant whose fields do not decode (or leave bytes over).
    fn decode(payload: &[u8]) -> Result<Self, PersistError>;

    /// The tags this event is stored with, for queries by tag. Default:
    /// none. The derive answers the variant's `#[persist(tag = "..")]` tags
    /// and the enum's `#[persist(tags = path)]` function's.
    fn tags(&self) -> Vec<String> {
        Vec::new()
    }

    /// Decodes a journal entry: its payload, checked against the
    /// `event_type` stored beside it, which must be a name of the variant the
    /// payload names (its current name or an alias).
    ///
    /// The default decodes, then compares with [`event_type`](PersistentEvent::event_type);
    /// the derive also accepts aliases.
    ///
    /// # Errors
    ///
    /// As [`decode`](PersistentEvent::decode), and
    /// [`PersistError::SerializationFailed`] when the names disagree.
    fn decode_entry(event_type: &str, payload: &[u8]) -> Result<Self, PersistError> {
        let event = Self::decode(payload)?;
        if event.event_type() != event_type {
            return Err(PersistError::SerializationFailed(format!(
                "the entry is typed `{event_type}` but its payload decodes as `{}`: the row is \
                 damaged",
                event.event_type()
            )));
        }
        Ok(event)
    }
}

/// The user's event handler for a derived event-sourced actor, when it is not
/// named with `#[persist(apply = path)]`.
///
/// # Examples
///
/// ```
/// # use dactor_persist::prelude::*;
/// # use serde::{Serialize, Deserialize};
/// #[derive(PersistentEvent)]
/// enum Event { Added(u64) }
///
/// #[derive(EventSourced)]
/// #[persist(entity = "Total", event = Event)]
/// struct Total {
///     #[persist(id)] id: u32,
///     sum: u64,
///     #[persist(sequence)] seq: SequenceId,
/// }
///
/// impl ApplyEvent<Event> for Total {
///     fn apply_event(&mut self, event: &Event) {
///         match event { Event::Added(n) => self.sum += n }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no handler for `{E}`",
    note = "implement `ApplyEvent<{E}>` for `{Self}`, or name a method with `#[persist(apply = Self::on_event)]`"
)]
pub trait ApplyEvent<E> {
    /// Applies one event to the state: deterministic and infallible.
    fn apply_event(&mut self, event: &E);
}
