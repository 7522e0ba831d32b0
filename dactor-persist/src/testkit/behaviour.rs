//! Behaviour tests of one actor: given what is stored, when a message, then
//! the reply, what was persisted and the state.
//!
//! The actor runs in a real [`Runtime`], on an [`InMemoryStorage`] wrapped in
//! a [`FailingStorage`] (so persist failures can be injected), exactly as it
//! would in production: the same recovery, the same persist and snapshot
//! policies, the same automatic saves. By default every event a message
//! persists, and the state after every message, is round-tripped through its
//! encoding: a type that does not survive encoding fails the test that sent
//! the message, not production.
//!
//! ```
//! use dactor_persist::prelude::*;
//! use dactor_persist::runtime::{Context, Handler, Message};
//! use dactor_persist::testkit::EventSourcedTestKit;
//!
//! #[derive(Debug, PartialEq, PersistentEvent)]
//! enum Event { Deposited(u64) }
//!
//! #[derive(Default, EventSourced)]
//! #[persist(entity = "Account", event = Event, apply = Self::on)]
//! struct Account { #[persist(id)] id: u8, balance: u64, #[persist(sequence)] seq: SequenceId }
//! impl Account {
//!     fn on(&mut self, Event::Deposited(n): &Event) { self.balance += n; }
//! }
//!
//! struct Deposit(u64);
//! impl Message for Deposit { type Reply = Result<u64, String>; }
//! #[async_trait]
//! impl Handler<Deposit> for Account {
//!     async fn handle(&mut self, Deposit(n): Deposit, ctx: &mut Context<Self>) -> Result<u64, String> {
//!         ctx.persist(self, Event::Deposited(n)).await.map_err(|e| e.to_string())?;
//!         Ok(self.balance)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut kit = EventSourcedTestKit::new(|| Account { id: 1, ..Default::default() });
//! kit.given([Event::Deposited(10)]).await?;
//! let out = kit.run(Deposit(5)).await?;
//! assert_eq!(out.reply, Ok(15));
//! assert_eq!(out.events, [Event::Deposited(5)]);
//! assert_eq!(kit.state(|a| a.balance).await?, 15);
//!
//! kit.restart().await?; // recovered from what was persisted
//! assert_eq!(kit.state(|a| (a.balance, a.seq)).await?, (15, SequenceId(2)));
//! # Ok::<(), PersistError>(()) }).unwrap();
//! ```

use std::sync::Arc;

use crate::runtime::{ActorRef, Handler, Message, Runtime};
use crate::{
    DurableState, EventSourced, InMemoryStorage, JournalStorage, PersistError, PersistenceId,
    SequenceId, SnapshotStorage, StateStorage,
};

use super::{FailingStorage, Op};

/// The store every test kit runs on: in memory, with injectable faults.
pub type TestStorage = FailingStorage<InMemoryStorage>;

type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// What one message to an event-sourced actor did.
#[derive(Debug)]
pub struct EventSourcedOutcome<E, R> {
    /// The handler's answer.
    pub reply: R,
    /// The events it persisted, in order, read back from the journal.
    pub events: Vec<E>,
}

/// What one message to a durable-state actor did.
#[derive(Debug)]
pub struct DurableStateOutcome<A, R> {
    /// The handler's answer.
    pub reply: R,
    /// The state saved while the message was handled (by the handler or by
    /// the runtime's automatic save), read back from the store into a fresh
    /// actor; `None` when nothing was saved.
    pub saved: Option<A>,
}

/// Spawns one actor on the runtime (event-sourced or durable-state).
type Spawn<A> = fn(&Runtime, A) -> Result<ActorRef<A>, PersistError>;

/// The parts both kits share: the runtime, the store, the running actor.
struct Harness<A> {
    factory: Factory<A>,
    spawn: Spawn<A>,
    storage: Arc<TestStorage>,
    runtime: Runtime,
    actor: Option<ActorRef<A>>,
    pid: PersistenceId,
    check_encoding: bool,
}

impl<A: crate::PersistentActor + Send + 'static> Harness<A> {
    fn new(factory: Factory<A>, spawn: Spawn<A>) -> Self {
        let storage = Arc::new(FailingStorage::new(InMemoryStorage::new()));
        let runtime = Runtime::builder().storage(storage.provider()).build();
        let pid = factory().persistence_id();
        Harness {
            factory,
            spawn,
            storage,
            runtime,
            actor: None,
            pid,
            check_encoding: true,
        }
    }

    async fn stop(&mut self) {
        if let Some(actor) = self.actor.take() {
            actor.stop().await;
        }
    }

    async fn look<R: Send + 'static>(
        &self,
        actor: &ActorRef<A>,
        f: impl FnOnce(&A) -> R + Send + 'static,
    ) -> Result<R, PersistError> {
        actor.inspect(f).await
    }
    /// The running actor, spawned (and recovered) on first use.
    async fn actor(&mut self) -> Result<ActorRef<A>, PersistError> {
        if let Some(actor) = &self.actor {
            return Ok(actor.clone());
        }
        let actor = (self.spawn)(&self.runtime, (self.factory)())?;
        actor.ready().await?;
        self.actor = Some(actor.clone());
        Ok(actor)
    }

    async fn state<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&A) -> R + Send + 'static,
    ) -> Result<R, PersistError> {
        let actor = self.actor().await?;
        self.look(&actor, f).await
    }

    async fn restart(&mut self) -> Result<(), PersistError> {
        self.stop().await;
        self.actor().await.map(drop)
    }

    async fn shutdown(mut self) {
        self.stop().await;
        self.runtime.shutdown().await;
    }
}

impl<A: EventSourced> std::fmt::Debug for EventSourcedTestKit<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSourcedTestKit")
            .field("persistence_id", &self.h.pid)
            .field("running", &self.h.actor.is_some())
            .finish()
    }
}

impl<A: DurableState> std::fmt::Debug for DurableStateTestKit<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStateTestKit")
            .field("persistence_id", &self.h.pid)
            .field("running", &self.h.actor.is_some())
            .finish()
    }
}

/// Restores `payload` into `fresh` and encodes it again: the same bytes, or
/// an error naming `what` did not survive.
fn round_trip<A>(
    pid: &PersistenceId,
    what: &str,
    payload: Vec<u8>,
    mut fresh: A,
    restore: impl FnOnce(&mut A, Vec<u8>) -> Result<(), PersistError>,
    encode: impl FnOnce(&A) -> Result<Vec<u8>, PersistError>,
) -> Result<(), PersistError> {
    restore(&mut fresh, payload.clone()).map_err(|e| round_trip_failed(pid, what, e))?;
    let again = encode(&fresh).map_err(|e| round_trip_failed(pid, what, e))?;
    if again != payload {
        return Err(round_trip_failed(
            pid,
            what,
            "restored and encoded again, it gives other bytes",
        ));
    }
    Ok(())
}

/// A failed round trip through an encoding, as an error naming what.
fn round_trip_failed(
    pid: &PersistenceId,
    what: &str,
    detail: impl std::fmt::Display,
) -> PersistError {
    PersistError::SerializationFailed(format!(
        "test kit: {what} of `{pid}` does not survive its encoding: {detail} (turn the check off \
         with `check_encoding(false)` for types whose encoding is not deterministic, such as a \
         HashMap's)"
    ))
}

/// Given events (or a snapshot), when a message, then the reply, the events
/// persisted and the state, for one event-sourced actor. See the
/// [module docs](self).
pub struct EventSourcedTestKit<A: EventSourced> {
    h: Harness<A>,
}

impl<A: EventSourced> EventSourcedTestKit<A> {
    /// A kit for the actor `factory` makes (called again for every restart,
    /// so it must make the same persistence id), on an empty store.
    pub fn new(factory: impl Fn() -> A + Send + Sync + 'static) -> Self {
        EventSourcedTestKit {
            h: Harness::new(Arc::new(factory), |rt, actor| {
                rt.spawn_event_sourced_now(actor)
            }),
        }
    }

    /// Whether to round-trip every persisted event and the snapshot of the
    /// state after every message through their encoding (default: on).
    #[must_use]
    pub fn check_encoding(mut self, on: bool) -> Self {
        self.h.check_encoding = on;
        self
    }

    /// The actor's persistence id.
    pub fn persistence_id(&self) -> &PersistenceId {
        &self.h.pid
    }

    /// The store, to inject failures (`kit.storage().only(&[Op::WriteEvent]).fail_next(1)`)
    /// or to look at what is stored.
    pub fn storage(&self) -> &TestStorage {
        &self.h.storage
    }

    /// Persists `events` as the actor's history, after what is stored. The
    /// running actor, if any, is stopped first and recovers them on the
    /// next message.
    ///
    /// # Errors
    ///
    /// A stored history that does not recover, or a write that fails.
    pub async fn given(
        &mut self,
        events: impl IntoIterator<Item = A::Event>,
    ) -> Result<&mut Self, PersistError> {
        self.h.stop().await;
        let mut scratch = self.recovered().await?;
        let events: Vec<A::Event> = events.into_iter().collect();
        if !events.is_empty() {
            scratch
                .persist_batch(events, &**self.h.storage.inner())
                .await?;
        }
        Ok(self)
    }

    /// Saves a snapshot of the state the stored history recovers to, at its
    /// sequence: the next recovery starts from it.
    ///
    /// # Errors
    ///
    /// A history that does not recover, a state that does not encode, a
    /// failed write.
    pub async fn given_snapshot(&mut self) -> Result<&mut Self, PersistError> {
        self.h.stop().await;
        let scratch = self.recovered().await?;
        let payload = scratch.snapshot_payload()?;
        self.h
            .storage
            .inner()
            .save_snapshot(&self.h.pid, scratch.last_sequence_id(), &payload)
            .await?;
        Ok(self)
    }

    /// A fresh actor recovered from what is stored, outside the runtime.
    ///
    /// # Errors
    ///
    /// As [`recover_event_sourced`](crate::recover_event_sourced).
    pub async fn recovered(&self) -> Result<A, PersistError> {
        let mut actor = (self.h.factory)();
        let store = &**self.h.storage.inner();
        crate::recover_event_sourced(&mut actor, store, store).await?;
        Ok(actor)
    }

    /// Sends `msg` (an `ask`) and returns the reply and the events it
    /// persisted, each round-tripped through its encoding, as is the
    /// snapshot of the state it left.
    ///
    /// # Errors
    ///
    /// The `ask`'s error (the actor stopped, or a persist failed under the
    /// `Stop` policy), or a round trip that failed.
    pub async fn run<M>(
        &mut self,
        msg: M,
    ) -> Result<EventSourcedOutcome<A::Event, M::Reply>, PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        let actor = self.h.actor().await?;
        let store = self.h.storage.inner().clone();
        let before = store
            .read_highest_sequence(&self.h.pid)
            .await?
            .unwrap_or(SequenceId::ZERO);
        let reply = actor.ask(msg).await?;
        let entries = store.read_events(&self.h.pid, before.next()).await?;
        let scratch = (self.h.factory)();
        let mut events = Vec::with_capacity(entries.len());
        for entry in &entries {
            let event = scratch.deserialize_entry(entry)?;
            if self.h.check_encoding {
                let again = scratch.serialize_event(&event)?;
                if again != entry.payload {
                    return Err(round_trip_failed(
                        &self.h.pid,
                        &format!("event {} (`{}`)", entry.sequence_id.0, entry.event_type),
                        "decoded and encoded again, it gives other bytes",
                    ));
                }
            }
            events.push(event);
        }
        if self.h.check_encoding {
            self.check_snapshot(&actor).await?;
        }
        Ok(EventSourcedOutcome { reply, events })
    }

    /// The live state's snapshot survives its encoding, and equals the
    /// state recovered from what was persisted: an event that loses
    /// something on its way through the journal (a field its encoding skips)
    /// shows here even when its bytes round-trip.
    async fn check_snapshot(&self, actor: &ActorRef<A>) -> Result<(), PersistError> {
        let factory = self.h.factory.clone();
        let pid = self.h.pid.clone();
        let live = self
            .h
            .look(actor, move |live: &A| {
                let payload = match live.snapshot_payload() {
                    Ok(p) => p,
                    // An actor that does not snapshot has nothing to check.
                    Err(_) if live.snapshot_config().is_none() => return Ok(None),
                    Err(e) => return Err(round_trip_failed(&pid, "the state", e)),
                };
                round_trip(
                    &pid,
                    "the snapshot",
                    payload.clone(),
                    factory(),
                    A::restore_snapshot,
                    A::snapshot_payload,
                )?;
                Ok(Some(payload))
            })
            .await??;
        let Some(live) = live else { return Ok(()) };
        let recovered = self.recovered().await?.snapshot_payload()?;
        if recovered != live {
            return Err(round_trip_failed(
                &self.h.pid,
                "the state",
                "the state recovered from the persisted events and snapshots differs from the \
                 live one: an event or the snapshot loses something through its encoding",
            ));
        }
        Ok(())
    }

    /// Looks at the live actor's state: `f` runs in the actor's task between
    /// two messages.
    ///
    /// # Errors
    ///
    /// The actor stopped (or its recovery failed).
    pub async fn state<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&A) -> R + Send + 'static,
    ) -> Result<R, PersistError> {
        self.h.state(f).await
    }

    /// Every event stored for the actor, decoded.
    ///
    /// # Errors
    ///
    /// A read or a decode that fails.
    pub async fn events(&self) -> Result<Vec<A::Event>, PersistError> {
        let scratch = (self.h.factory)();
        let entries = self
            .h
            .storage
            .inner()
            .read_events(&self.h.pid, SequenceId(1))
            .await?;
        entries
            .iter()
            .map(|e| scratch.deserialize_entry(e))
            .collect()
    }

    /// Stops the actor (gracefully: what it has in hand is finished) and
    /// starts a fresh one from the factory, recovered from what was stored.
    ///
    /// # Errors
    ///
    /// The recovery's failure.
    pub async fn restart(&mut self) -> Result<&mut Self, PersistError> {
        self.h.restart().await?;
        Ok(self)
    }

    /// Stops the actor and the kit's runtime.
    pub async fn shutdown(self) {
        self.h.shutdown().await;
    }
}

/// Given a state, when a message, then the reply and the saved state, for
/// one durable-state actor. See the [module docs](self).
///
/// ```
/// use dactor_persist::prelude::*;
/// use dactor_persist::runtime::{Context, Handler, Message};
/// use dactor_persist::testkit::DurableStateTestKit;
///
/// #[derive(Default, DurableState)]
/// #[persist(entity = "Settings", save_every = 1)]
/// struct Settings { #[persist(id)] id: u8, theme: String }
///
/// struct SetTheme(&'static str);
/// impl Message for SetTheme { type Reply = (); }
/// #[async_trait]
/// impl Handler<SetTheme> for Settings {
///     async fn handle(&mut self, SetTheme(t): SetTheme, _: &mut Context<Self>) { self.theme = t.into(); }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut kit = DurableStateTestKit::new(|| Settings { id: 1, ..Default::default() });
/// kit.given_state(Settings { id: 1, theme: "light".into() }).await?;
/// let out = kit.run(SetTheme("dark")).await?;
/// assert_eq!(out.saved.map(|s| s.theme).as_deref(), Some("dark"));
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
pub struct DurableStateTestKit<A: DurableState> {
    h: Harness<A>,
}

impl<A: DurableState> DurableStateTestKit<A> {
    /// A kit for the actor `factory` makes (called again for every restart),
    /// on an empty store.
    pub fn new(factory: impl Fn() -> A + Send + Sync + 'static) -> Self {
        DurableStateTestKit {
            h: Harness::new(Arc::new(factory), |rt, actor| {
                rt.spawn_durable_state_now(actor)
            }),
        }
    }

    /// Whether to round-trip the state after every message through its
    /// encoding (default: on).
    #[must_use]
    pub fn check_encoding(mut self, on: bool) -> Self {
        self.h.check_encoding = on;
        self
    }

    /// The actor's persistence id.
    pub fn persistence_id(&self) -> &PersistenceId {
        &self.h.pid
    }

    /// The store, to inject failures or look at what is stored.
    pub fn storage(&self) -> &TestStorage {
        &self.h.storage
    }

    /// Stores `state` as the actor's state (its id must be the kit's). The
    /// running actor, if any, is stopped first (its own final save happens
    /// before), and the next message recovers `state`.
    ///
    /// # Errors
    ///
    /// Another persistence id, a state that does not encode, a failed write.
    pub async fn given_state(&mut self, state: A) -> Result<&mut Self, PersistError> {
        self.h.stop().await;
        if state.persistence_id() != self.h.pid {
            return Err(PersistError::InvalidInput {
                persistence_id: state.persistence_id(),
                detail: format!("the kit tests `{}`", self.h.pid),
            });
        }
        let payload = state.serialize_state()?;
        self.h
            .storage
            .inner()
            .save_state(&self.h.pid, &payload)
            .await?;
        Ok(self)
    }

    /// A fresh actor restored from the stored state (or the factory's
    /// initial state when none is stored), outside the runtime.
    ///
    /// # Errors
    ///
    /// As [`recover_durable_state`](crate::recover_durable_state).
    pub async fn stored(&self) -> Result<A, PersistError> {
        let mut actor = (self.h.factory)();
        crate::recover_durable_state(&mut actor, &**self.h.storage.inner()).await?;
        Ok(actor)
    }

    /// Sends `msg` (an `ask`) and returns the reply and the state saved while
    /// it was handled; the live state is round-tripped through its encoding.
    ///
    /// # Errors
    ///
    /// The `ask`'s error, a read of the saved state that fails, or a round
    /// trip that failed.
    pub async fn run<M>(&mut self, msg: M) -> Result<DurableStateOutcome<A, M::Reply>, PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        let actor = self.h.actor().await?;
        let saves = self.h.storage.calls(Op::SaveState);
        let reply = actor.ask(msg).await?;
        // An automatic save after the message runs before the next mail:
        // a look at the state waits for it.
        if self.h.check_encoding {
            self.check_state(&actor).await?;
        } else {
            self.h.look(&actor, |_| ()).await?;
        }
        let saved = if self.h.storage.calls(Op::SaveState) > saves {
            Some(self.stored().await?)
        } else {
            None
        };
        Ok(DurableStateOutcome { reply, saved })
    }

    async fn check_state(&self, actor: &ActorRef<A>) -> Result<(), PersistError> {
        let factory = self.h.factory.clone();
        let pid = self.h.pid.clone();
        self.h
            .look(actor, move |live: &A| {
                let payload = live
                    .serialize_state()
                    .map_err(|e| round_trip_failed(&pid, "the state", e))?;
                round_trip(
                    &pid,
                    "the state",
                    payload,
                    factory(),
                    A::restore_state,
                    A::serialize_state,
                )
            })
            .await?
    }

    /// Looks at the live actor's state between two messages.
    ///
    /// # Errors
    ///
    /// The actor stopped (or its recovery failed).
    pub async fn state<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&A) -> R + Send + 'static,
    ) -> Result<R, PersistError> {
        self.h.state(f).await
    }

    /// Stops the actor (it saves as its configuration says) and starts a
    /// fresh one from the factory, recovered from the stored state.
    ///
    /// # Errors
    ///
    /// The recovery's failure.
    pub async fn restart(&mut self) -> Result<&mut Self, PersistError> {
        self.h.restart().await?;
        Ok(self)
    }

    /// Stops the actor and the kit's runtime.
    pub async fn shutdown(self) {
        self.h.shutdown().await;
    }
}
