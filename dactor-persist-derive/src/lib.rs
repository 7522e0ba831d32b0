//! Derive macros for [`dactor-persist`](https://docs.rs/dactor-persist):
//! `#[derive(EventSourced)]`, `#[derive(DurableState)]` and
//! `#[derive(PersistentEvent)]`.
//!
//! Use them through `dactor_persist` (feature `derive`, on by default), which
//! re-exports them next to the traits they implement; generated code reaches
//! the runtime only through `::dactor_persist::__private`, so a crate that
//! uses them depends on `dactor-persist` and `serde`, nothing more.

mod ast;
mod attr;
mod check;
mod expand;
mod fallback;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

use crate::attr::{Derive, Errors};

/// Implements `Actor`, `PersistentActor` and `EventSourced` for a struct: the
/// event (de)serialization, the sequence bookkeeping and the snapshot code.
/// The user writes the state, the events and the event handler.
///
/// # Example
///
/// ```
/// use dactor_persist::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, PersistentEvent)]
/// enum AccountEvent {
///     Opened { owner: String },
///     Deposited { amount: u64 },
///     #[persist(alias = "Withdrew")]
///     Withdrawn { amount: u64 },
/// }
///
/// #[derive(Default, EventSourced)]
/// #[persist(entity = "Account", event = AccountEvent, apply = Self::on_event,
///           snapshot_every = 500, keep_snapshots = 2)]
/// struct Account {
///     #[persist(id)] id: String,
///     owner: String,
///     balance: u64,
///     #[persist(sequence)] seq: SequenceId,
///     #[persist(skip)] audit_cache: Vec<String>,
/// }
///
/// impl Account {
///     fn on_event(&mut self, e: &AccountEvent) {
///         match e {
///             AccountEvent::Opened { owner } => self.owner = owner.clone(),
///             AccountEvent::Deposited { amount } => self.balance += amount,
///             AccountEvent::Withdrawn { amount } => self.balance -= amount,
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let journal = InMemoryStorage::new();
/// let mut account = Account { id: "a-1".into(), ..Default::default() };
/// assert_eq!(account.persistence_id().to_string(), "Account:a-1");
/// account.persist(AccountEvent::Opened { owner: "Ada".into() }, &journal).await?;
/// account.persist(AccountEvent::Deposited { amount: 5 }, &journal).await?;
///
/// let mut again = Account { id: "a-1".into(), ..Default::default() };
/// recover_event_sourced(&mut again, &journal, &journal).await?;
/// assert_eq!((again.owner.as_str(), again.balance, again.seq), ("Ada", 5, SequenceId(2)));
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
///
/// # Struct attributes: `#[persist(..)]`
///
/// | key | value | meaning |
/// |---|---|---|
/// | `entity` | string, required | the entity type: the persistence id is `"{entity}:{id}"`. Not empty, no `:` |
/// | `event` | type, required | the event type, a `#[derive(PersistentEvent)]` enum |
/// | `apply` | path | the event handler, `fn(&mut Self, &Event)`; without it, implement `ApplyEvent<Event>` |
/// | `id` | path | a method `fn(&self) -> impl Display` giving the id, instead of a `#[persist(id)]` field |
/// | `snapshot_every` | integer ≥ 1 | snapshot after every N events (`SnapshotConfig::every_n_events`) |
/// | `snapshot_interval` | duration string | snapshot at this interval, e.g. `"30s"` (`"500ms"`, `"5m"`, `"1h"`) |
/// | `keep_snapshots` | integer ≥ 1 | keep at most N snapshots (`retention_count`) |
/// | `delete_events_on_snapshot` | flag | delete the events a saved snapshot covers |
/// | `schema_version` | integer | bump it when a stored field's type changes meaning without changing its name: older snapshots are then ignored and the journal replayed |
/// | `recovery_failure` | `"stop"`, `"skip_and_start"`, `retry(max_attempts = 3, initial_delay = "100ms")` | `PersistentActor::recovery_failure_policy` |
/// | `persist_failure` | `"stop"`, `"return_error"`, `retry(..)` | `PersistentActor::persist_failure_policy` |
/// | `manual_actor` | flag | do not implement `Actor` (write your own, with your own `Args` and `Deps`); by default `Args = Self`, `Deps = ()` |
/// | `crate` | string | the path of `dactor_persist` if it was renamed, e.g. `crate = "persist"` |
///
/// # Field attributes
///
/// | attribute | meaning |
/// |---|---|
/// | `#[persist(id)]` | the entity id (any `Display` type); not stored in snapshots |
/// | `#[persist(sequence)]` | the `SequenceId` of the last applied event; required, exactly one |
/// | `#[persist(skip)]` | runtime-only: never stored, left untouched by a restore |
///
/// Every other field is stored in snapshots and must implement serde's
/// `Serialize` and `Deserialize`. A snapshot carries a fingerprint of the
/// stored fields' names and types: after a change, old snapshots are skipped
/// and the journal is replayed instead.
///
/// ```
/// use dactor_persist::prelude::*;
///
/// #[derive(PersistentEvent)]
/// enum Tick { Tick }
///
/// #[derive(EventSourced)]
/// #[persist(entity = "Clock", event = Tick, id = Self::name,
///           snapshot_interval = "30s", delete_events_on_snapshot,
///           recovery_failure = retry(max_attempts = 5, initial_delay = "100ms"),
///           persist_failure = "return_error")]
/// struct Clock { ticks: u64, #[persist(sequence)] seq: SequenceId }
///
/// impl Clock { fn name(&self) -> &'static str { "wall" } }
/// impl ApplyEvent<Tick> for Clock {
///     fn apply_event(&mut self, _: &Tick) { self.ticks += 1; }
/// }
///
/// let clock = Clock { ticks: 0, seq: SequenceId(0) };
/// assert_eq!(clock.persistence_id().to_string(), "Clock:wall");
/// assert_eq!(clock.persist_failure_policy(), PersistFailurePolicy::ReturnError);
/// let config = clock.snapshot_config().unwrap();
/// assert_eq!(config.interval, Some(std::time::Duration::from_secs(30)));
/// assert!(config.delete_events_on_snapshot);
/// ```
///
/// `manual_actor`, `schema_version` and `crate` together: the actor brings its
/// own `Actor` impl, its snapshots are versioned by hand, and the runtime crate
/// is reached under another name.
///
/// ```
/// extern crate dactor_persist as persist;
/// use persist::prelude::*;
///
/// #[derive(PersistentEvent)]
/// #[persist(crate = "persist")]
/// enum Moved { By(i32) }
///
/// #[derive(EventSourced)]
/// #[persist(crate = "persist", entity = "Cursor", event = Moved, apply = Self::on,
///           manual_actor, schema_version = 2)]
/// struct Cursor { #[persist(id)] id: u8, at: i32, #[persist(sequence)] seq: SequenceId }
///
/// impl Cursor { fn on(&mut self, Moved::By(d): &Moved) { self.at += d; } }
///
/// impl Actor for Cursor {
///     type Args = u8;
///     type Deps = i32;
///     fn create(id: u8, start: i32) -> Self { Cursor { id, at: start, seq: SequenceId(0) } }
/// }
///
/// let c = Cursor::create(4, 10);
/// let v2 = c.snapshot_payload().unwrap();
/// let mut back = Cursor::create(4, 0);
/// back.restore_snapshot(v2).unwrap();
/// assert_eq!(back.at, 10);
/// ```
#[proc_macro_derive(EventSourced, attributes(persist))]
pub fn derive_event_sourced(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    actor(&input, Derive::EventSourced).into()
}

/// Implements `Actor`, `PersistentActor` and `DurableState` for a struct: the
/// whole state (every field but the id and skipped ones) is stored with
/// postcard and a layout fingerprint.
///
/// # Example
///
/// ```
/// use dactor_persist::prelude::*;
///
/// #[derive(Default, DurableState)]
/// #[persist(entity = "Settings", save_every = 10, save_interval = "5s")]
/// struct Settings {
///     #[persist(id)] user: u64,
///     theme: String,
///     font_size: u8,
///     #[persist(skip)] dirty: bool,
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryStorage::new();
/// let s = Settings { user: 7, theme: "dark".into(), font_size: 14, dirty: true };
/// assert_eq!(s.save_config().unwrap().every_n_messages, Some(10));
/// DurableState::save_state(&s, &store).await?;
///
/// let mut again = Settings { user: 7, ..Default::default() };
/// recover_durable_state(&mut again, &store).await?;
/// assert_eq!((again.theme.as_str(), again.font_size, again.dirty), ("dark", 14, false));
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
///
/// # Struct attributes: `#[persist(..)]`
///
/// | key | value | meaning |
/// |---|---|---|
/// | `entity` | string, required | the entity type: the persistence id is `"{entity}:{id}"` |
/// | `id` | path | a method giving the id, instead of a `#[persist(id)]` field |
/// | `save_every` | integer ≥ 1 | save after every N handled messages (`SaveConfig::every_n_messages`) |
/// | `save_interval` | duration string | save at this interval, e.g. `"10s"` |
/// | `schema_version` | integer | bump it when a stored field's type changes meaning |
/// | `recovery_failure`, `persist_failure`, `manual_actor`, `crate` | | as for `EventSourced` |
///
/// Field attributes: `#[persist(id)]` and `#[persist(skip)]`, as for
/// `EventSourced`. There is no sequence field and no `event`.
#[proc_macro_derive(DurableState, attributes(persist))]
pub fn derive_durable_state(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    actor(&input, Derive::DurableState).into()
}

/// Implements `PersistentEvent` for an enum of events: each variant is stored
/// under a stable name (the variant's, or `name = "..."`) followed by its
/// fields, so reordering or adding variants never changes how stored events
/// decode.
///
/// # Example
///
/// ```
/// use dactor_persist::prelude::*;
///
/// #[derive(Debug, PartialEq, PersistentEvent)]
/// enum CartEvent {
///     Added { sku: String, qty: u32 },
///     #[persist(name = "Removed", alias = "Deleted", alias = "Dropped")]
///     RemovedItem(String),
///     Cleared,
/// }
///
/// let e = CartEvent::RemovedItem("sku-1".into());
/// assert_eq!(e.event_type(), "Removed");
/// let bytes = e.encode().unwrap();
/// assert_eq!(CartEvent::decode(&bytes).unwrap(), e);
/// assert_eq!(CartEvent::EVENT_TYPES, &["Added", "Removed", "Cleared"]);
/// ```
///
/// # Attributes
///
/// | where | attribute | meaning |
/// |---|---|---|
/// | variant | `name = "..."` | the stable name stored for this variant (default: the variant's name) |
/// | variant | `alias = "..."` (repeatable) | older names that still decode to this variant |
/// | enum | `crate = "..."` | the path of `dactor_persist` if it was renamed |
///
/// Every field must implement serde's `Serialize` and `Deserialize`. Changing
/// an existing variant's fields is not compatible with stored events: add a
/// new variant instead.
#[proc_macro_derive(PersistentEvent, attributes(persist))]
pub fn derive_persistent_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = Errors::default();
    let model = ast::Event::from_input(&input, &mut errors);
    if let Some(model) = &model {
        check::event(model, &mut errors);
    }
    match (errors.combined(), model) {
        (None, Some(model)) => expand::event::expand(&model),
        (err, model) => {
            let mut out = err.map(|e| e.to_compile_error()).unwrap_or_default();
            let krate = model.as_ref().and_then(|m| m.attrs.krate.as_ref());
            out.extend(fallback::event(&input, krate));
            out
        }
    }
    .into()
}

/// Parse, check, expand; on errors, the errors and the fallback impls.
fn actor(input: &DeriveInput, derive: Derive) -> proc_macro2::TokenStream {
    let mut errors = Errors::default();
    let model = ast::Actor::from_input(input, derive, &mut errors);
    if let Some(model) = &model {
        check::actor(model, &mut errors);
    }
    match (errors.combined(), model) {
        (None, Some(model)) => match derive {
            Derive::EventSourced => expand::event_sourced::expand(&model),
            Derive::DurableState => expand::durable_state::expand(&model),
        },
        (err, model) => {
            let mut out = err.map(|e| e.to_compile_error()).unwrap_or_default();
            let attrs = model.as_ref().map(|m| &m.attrs);
            out.extend(fallback::actor(
                input,
                derive,
                attrs.and_then(|a| a.krate.as_ref()),
                attrs.and_then(|a| a.event.as_ref()),
                attrs
                    .and_then(|a| a.manual_actor.as_ref())
                    .is_some_and(|m| m.value),
            ));
            out
        }
    }
}
