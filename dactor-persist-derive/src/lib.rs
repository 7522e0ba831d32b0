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
/// | `migrate` | `migrate(from = Old, with = path)` | snapshots of the older layout `Old` (a `#[derive(StoredState)]` struct) restore through `path: fn(&mut Self, Old)` |
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
/// | `#[persist(default)]`, `#[persist(default = path)]` | a stored field added later: snapshots stored before it read with `Default::default()` or `path()` |
/// | `#[persist(name = "old")]` | a renamed stored field: the layout keeps recording its old name |
///
/// Every other field is stored in snapshots and must implement serde's
/// `Serialize` and `Deserialize`. A snapshot carries a fingerprint of the
/// stored fields' names and types: after a change nobody declared, old
/// snapshots are skipped and the journal is replayed instead. The
/// `migrate(from = Old, with = path)` struct attribute reads an older layout
/// declared with `#[derive(StoredState)]`; the evolution guide in
/// `dactor_persist::codec` has one row per kind of change.
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
/// | `migrate` | `migrate(from = Old, with = path)` | states of the older layout `Old` (a `#[derive(StoredState)]` struct) restore through `path: fn(&mut Self, Old)` |
/// | `recovery_failure`, `persist_failure`, `manual_actor`, `crate` | | as for `EventSourced` |
///
/// Field attributes: `#[persist(id)]`, `#[persist(skip)]`,
/// `#[persist(default)]` / `#[persist(default = path)]` and
/// `#[persist(name = "old")]`, as for `EventSourced`. There is no sequence
/// field and no `event`. A field added with a default reads every state
/// stored before it:
///
/// ```
/// use dactor_persist::prelude::*;
///
/// #[derive(Default, DurableState)]
/// #[persist(entity = "Profile")]
/// struct ProfileV1 { #[persist(id)] id: u8, name: String }
///
/// #[derive(Default, DurableState)]
/// #[persist(entity = "Profile")]
/// struct Profile {
///     #[persist(id)] id: u8,
///     name: String,
///     #[persist(default = Self::no_email)] email: String,
/// }
/// impl Profile { fn no_email() -> String { "-".into() } }
///
/// let old = ProfileV1 { id: 1, name: "Ada".into() }.serialize_state().unwrap();
/// let mut p = Profile::default();
/// p.restore_state(old).unwrap();
/// assert_eq!((p.name.as_str(), p.email.as_str()), ("Ada", "-"));
/// ```
#[proc_macro_derive(DurableState, attributes(persist))]
pub fn derive_durable_state(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    actor(&input, Derive::DurableState).into()
}

/// Declares an earlier layout of a stored state or snapshot, so that a
/// `#[derive(DurableState)]` or `#[derive(EventSourced)]` struct whose stored
/// fields changed in a way defaults cannot cover (a field's type changed, a
/// field was removed, the state was restructured) still reads what the old
/// layout stored, through `#[persist(migrate(from = Old, with = path))]`.
///
/// List the old struct's **stored** fields (not the id, the sequence or
/// skipped fields) with their names and types written as they were (the
/// layout fingerprint covers the type's tokens: `String` and
/// `std::string::String` differ), and its `schema_version` if it had one.
/// An older layout of the old layout chains with its own `migrate`, whose
/// `with` is then `fn(Older) -> Self`; on the actor, `with` is
/// `fn(&mut Self, Old)`.
///
/// # Example
///
/// ```
/// use dactor_persist::prelude::*;
///
/// /// What `Profile` stored before `name` was split in two.
/// #[derive(StoredState)]
/// struct ProfileV1 { name: String, logins: u32 }
///
/// #[derive(Default, DurableState)]
/// #[persist(entity = "Profile", migrate(from = ProfileV1, with = Self::migrate_v1))]
/// struct Profile {
///     #[persist(id)] id: String,
///     first: String,
///     last: String,
///     logins: u64,
/// }
///
/// impl Profile {
///     fn migrate_v1(&mut self, old: ProfileV1) {
///         let (first, last) = old.name.split_once(' ').unwrap_or((&old.name, ""));
///         (self.first, self.last) = (first.to_owned(), last.to_owned());
///         self.logins = u64::from(old.logins);
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryStorage::new();
/// let id = PersistenceId::new("Profile", "u1");
/// let old = ProfileV1 { name: "Ada Lovelace".into(), logins: 3 };
/// store.save_state(&id, &old.encode_layout()?).await?;
///
/// let mut profile = Profile { id: "u1".into(), ..Default::default() };
/// recover_durable_state(&mut profile, &store).await?;
/// assert_eq!((profile.first.as_str(), profile.last.as_str(), profile.logins), ("Ada", "Lovelace", 3));
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
///
/// # Attributes
///
/// | where | attribute | meaning |
/// |---|---|---|
/// | struct | `schema_version = N` | the old struct's `schema_version` |
/// | struct | `migrate(from = Older, with = path)` | this layout itself reads an older one, `fn(Older) -> Self` |
/// | struct | `crate = "..."` | the path of `dactor_persist` if it was renamed |
/// | field | `default`, `default = path`, `name = ".."` | as on the actor's fields |
#[proc_macro_derive(StoredState, attributes(persist))]
pub fn derive_stored_state(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    actor(&input, Derive::StoredState).into()
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
/// | variant | `tag = "..."` (repeatable) | a tag stored with every event of this variant, for queries by tag |
/// | field | `default`, `default = path` | a field added later, after every field without a default: older events read with `Default::default()` or `path()` |
/// | enum | `tags = path` | a function `fn(&Self) -> impl IntoIterator<Item = String>` adding tags |
/// | enum | `upcast(from = Legacy, with = path)` | names this enum does not know decode through `Legacy` (a `#[derive(PersistentEvent)]` enum of old shapes) and become `path(legacy)`, `path: fn(Legacy) -> Self` (or `Option<Self>`, `Vec<Self>`: one old event to none or several) |
/// | enum | `crate = "..."` | the path of `dactor_persist` if it was renamed |
///
/// Every field must implement serde's `Serialize` and `Deserialize`. Fields
/// are stored by position: renaming one changes nothing stored; adding one
/// needs `default`; any other change to a variant's fields gives the new
/// shape a new stored name and upcasts the old one (the evolution guide in
/// `dactor_persist::codec` has one row per kind of change):
///
/// ```
/// use dactor_persist::prelude::*;
///
/// #[derive(PersistentEvent)]
/// enum Legacy { Deposited { amount: String } }
///
/// #[derive(Debug, PartialEq, PersistentEvent)]
/// #[persist(upcast(from = Legacy, with = Account::upcast))]
/// enum Account {
///     #[persist(name = "Deposited.v2")]
///     Deposited { cents: u64, #[persist(default)] memo: String },
/// }
///
/// impl Account {
///     fn upcast(old: Legacy) -> Self {
///         match old {
///             Legacy::Deposited { amount } => Account::Deposited {
///                 cents: amount.parse::<u64>().unwrap_or(0) * 100,
///                 memo: String::new(),
///             },
///         }
///     }
/// }
///
/// let old = Legacy::Deposited { amount: "12".into() }.encode().unwrap();
/// assert_eq!(Account::decode(&old).unwrap(), Account::Deposited { cents: 1200, memo: String::new() });
/// ```
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
            Derive::StoredState => expand::stored_state::expand(&model),
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
