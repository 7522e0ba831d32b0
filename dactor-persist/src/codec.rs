//! How events and state are encoded: the traits the derives implement, the
//! stable payload layouts they use, and how stored types evolve without
//! stranding what is stored.
//!
//! # Event payloads
//!
//! An event written by `#[derive(PersistentEvent)]` is stored as the variant's
//! stable name (a postcard string) followed by the variant's fields, each in
//! postcard, in declaration order. Postcard is compact and not
//! self-describing: field names and types are not stored, only values.
//! Decoding dispatches on the name, never on the variant's position, so
//! reordering variants or inserting new ones does not change how stored
//! events decode. The same name is stored as the journal entry's
//! `event_type`.
//!
//! # State and snapshot payloads
//!
//! `#[derive(EventSourced)]` snapshots and `#[derive(DurableState)]` states are
//! stored as an 8-byte fingerprint of the struct's stored fields (their names,
//! their types as written, and the `schema_version`) followed by those fields
//! in postcard. A payload whose fingerprint is none of the layouts the struct
//! declares makes `restore_snapshot` or `restore_state` answer
//! [`PersistError::SnapshotIncompatible`], saying "state" or "snapshot" and
//! naming the remedy: recovery replays the journal instead of a snapshot; a
//! durable state, which has no journal, fails to recover (and `SkipAndStart`
//! sets it aside rather than overwrite it: see
//! [`recover_durable_state`](crate::recover_durable_state)).
//!
//! # Evolution guide
//!
//! Every row is proved by a test in the repository's `tests/tests/evolution/`
//! (named in the last column) that writes with the old type and reads with
//! the new one.
//!
//! | change | what to write | test |
//! |---|---|---|
//! | add a field to an event variant | put it last with `#[persist(default)]` or `#[persist(default = path)]`: old events end before it and read with the default | `events::add_field` |
//! | rename an event's field | nothing: fields are stored by position | `events::rename_field` |
//! | rename a variant | `#[persist(alias = "OldName")]` on it (it then writes its new name), or keep the stored name with `#[persist(name = "OldName")]` | `events::rename_variant::a_renamed_variant_reads_its_old_name_through_an_alias`, `events::rename_variant::a_renamed_variant_can_keep_writing_its_stored_name` |
//! | split a variant | keep the old shape, under its stored name, in a legacy `#[derive(PersistentEvent)]` enum; on the current enum `#[persist(upcast(from = Legacy, with = path))]`, `path: fn(Legacy) -> Self` picks the new variant | `events::upcasts::a_split_variant_upcasts_to_each_of_its_parts` |
//! | remove a variant | move it to the legacy enum and upcast it to what it means now: it leaves the current enum's `match`es | `events::upcasts::a_removed_variant_stays_readable_as_another` |
//! | change an event field's type | give the new shape a new stored name (`#[persist(name = "Deposited.v2")]`), keep the old shape in the legacy enum, convert in the upcaster | `events::upcasts::a_changed_field_type_reads_through_its_old_name` |
//! | several versions of events | the legacy enum upcasts from an older one in turn: a chain | `events::upcasts::upcasts_chain_across_versions` |
//! | one old event into several, or into none | the upcaster returns a `Vec<Self>` or an `Option<Self>` (any `Into<Upcast<Self>>`); recovery applies each part with the old event's sequence, queries give each part in its envelope | `events::upcast_many` |
//! | add a state (or snapshot) field | `#[persist(default)]` or `#[persist(default = path)]` on it, anywhere in the struct (up to 8 such fields) | `states::a_state_written_by_todays_derive_reads_after_gaining_fields`, `states::an_old_snapshot_restores_after_a_field_is_added` |
//! | rename a state field | `#[persist(name = "old_name")]`: the layout keeps recording the old name | `states::a_renamed_state_field_keeps_its_stored_name` |
//! | restructure a state (change a field's type, remove or merge fields) | declare the old stored fields as a `#[derive(StoredState)]` struct and `#[persist(migrate(from = Old, with = path))]` on the actor, `path: fn(&mut Self, Old)`; an old layout migrates from an older one in turn (`fn(Older) -> Old`) | `states::a_restructured_state_migrates_along_the_chain` |
//!
//! A change nobody declared is an error, never a wrong value:
//! [`PersistError::IncompatibleEvent`] for an event (naming the variant, the
//! fields found against those expected, and the remedy), distinct from
//! [`PersistError::CorruptEntry`] for a damaged row; and
//! [`PersistError::SnapshotIncompatible`] for a state or snapshot.
//!
//! # The JSON format
//!
//! `#[persist(format = "json")]` (feature `json`) on an event enum, or on an
//! `EventSourced`, `DurableState` or `StoredState` struct (for its snapshots
//! or states), stores self-describing JSON instead of postcard: an event is
//! `{"ItemAdded":{"qty":2,"sku":"a"}}` (a tuple variant's fields an array, a
//! unit variant's `null`), a state or snapshot the object of its stored
//! fields by their stored names. Rows read as text in `sqlite3`
//! (`SELECT CAST(payload AS TEXT) FROM events`) and as JSON in `psql`
//! (`convert_from(payload, 'UTF8')::jsonb`). Keys the type no longer has are
//! ignored, keys it gained take their `#[persist(default)]`, so fields can
//! be added and removed without a migration; a renamed field is a changed
//! key (postcard does not care, JSON does). The `codec` harness in `benches/`
//! measures plain `serde_json` at about twice postcard's bytes and time per
//! event; this format builds a `serde_json::Value` on the way, so expect it
//! to cost more than that (not measured).
//!
//! A store holds both formats side by side: a payload that starts with `{`
//! and parses as a JSON object is JSON, anything else is postcard, so a type
//! that switches to JSON keeps reading the rows it wrote before
//! (`tests/tests/evolution/json.rs`). Switching back to postcard needs a
//! build that still reads JSON: keep `format = "json"` until the JSON rows
//! are gone, or read them through an upcaster or a migration from a layout
//! declared with `format = "json"`.

use crate::PersistError;

/// An event type with stable names and a compact, evolvable encoding (see
/// the [module docs](self)).
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

    /// Decodes a journal entry into the events it stands for, pushed onto
    /// `out`: one, except for an old event an upcaster turns into several,
    /// or into none (`#[persist(upcast(..))]`, see the evolution guide).
    /// Recovery and the read side decode through this one.
    ///
    /// The default pushes [`decode_entry`](PersistentEvent::decode_entry)'s
    /// event.
    ///
    /// # Errors
    ///
    /// As [`decode_entry`](PersistentEvent::decode_entry). On error, `out`
    /// holds what it held before.
    fn decode_entry_into(
        event_type: &str,
        payload: &[u8],
        out: &mut Vec<Self>,
    ) -> Result<(), PersistError> {
        out.push(Self::decode_entry(event_type, payload)?);
        Ok(())
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

/// What a stored state is: a snapshot of an event-sourced actor, or the
/// state of a durable-state actor. Errors say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAs {
    /// A snapshot (`restore_snapshot`).
    Snapshot,
    /// A durable state (`restore_state`).
    State,
}

/// An earlier layout of a stored state or snapshot: the old struct's stored
/// fields, declared with `#[derive(StoredState)]` so that an actor can
/// `#[persist(migrate(from = ThisLayout, with = path))]` from it. See the
/// derive's documentation and the evolution guide above.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a declared stored layout",
    label = "`migrate(from = ..)` names a struct with `#[derive(StoredState)]`",
    note = "declare the old stored fields as a struct with `#[derive(StoredState)]`"
)]
pub trait StoredState: Sized {
    /// The payload decoded as this layout (or as a layout this one migrates
    /// from, then migrated); `Ok(None)` when its fingerprint is none of them.
    ///
    /// # Errors
    ///
    /// A payload of a known layout whose fields do not decode:
    /// [`PersistError::CorruptSnapshot`] or [`PersistError::CorruptState`]
    /// as `kind` says.
    fn decode_layout(
        payload: &[u8],
        kind: StoredAs,
        pid: &crate::PersistenceId,
    ) -> Result<Option<Self>, PersistError>;

    /// Encodes this value with its own layout: the bytes the struct it
    /// describes stored. For tests that need an old payload.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`] when a field does not encode.
    fn encode_layout(&self) -> Result<Vec<u8>, PersistError>;
}

/// What an upcaster (`#[persist(upcast(from = Legacy, with = path))]`) turns
/// one old event into: `path` returns the current event, or an
/// `Option` of it (none: the old event no longer means anything), or a
/// `Vec` of them (one old event split into several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcast<E>(pub Vec<E>);

impl<E> From<E> for Upcast<E> {
    fn from(event: E) -> Self {
        Upcast(vec![event])
    }
}

impl<E> From<Option<E>> for Upcast<E> {
    fn from(event: Option<E>) -> Self {
        Upcast(event.into_iter().collect())
    }
}

impl<E> From<Vec<E>> for Upcast<E> {
    fn from(events: Vec<E>) -> Self {
        Upcast(events)
    }
}
