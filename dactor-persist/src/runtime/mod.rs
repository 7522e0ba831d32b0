//! The tokio runtime that hosts persistent actors and honours every policy
//! and configuration of dactor 0.2.0's persistence API.
//!
//! - Spawning runs recovery in the actor's own task before any message is
//!   handled; messages sent meanwhile wait in its mailbox, in order.
//! - Handlers persist through their [`Context`], which follows the actor's
//!   [`PersistFailurePolicy`](crate::PersistFailurePolicy) and snapshots
//!   (event-sourced) or saves (durable state) as its
//!   [`SnapshotConfig`](crate::SnapshotConfig) or
//!   [`SaveConfig`](crate::SaveConfig) says: by count, by interval, and for a
//!   durable state always on graceful stop.
//! - A stopped actor answers every pending and future `ask` with
//!   [`PersistError::ActorStopped`]; a panicking handler stops only its actor,
//!   or, for an actor spawned with `spawn_*_supervised`, restarts it recovered
//!   from storage (see [`Supervision`]).
//!
//! # Examples
//!
//! ```
//! use dactor_persist::prelude::*;
//! use dactor_persist::runtime::{Context, Handler, Message, Runtime};
//!
//! #[derive(PersistentEvent)]
//! enum Event { Added(u64) }
//!
//! #[derive(EventSourced)]
//! #[persist(entity = "Total", event = Event, snapshot_every = 100)]
//! struct Total { #[persist(id)] id: u32, sum: u64, #[persist(sequence)] seq: SequenceId }
//!
//! impl ApplyEvent<Event> for Total {
//!     fn apply_event(&mut self, Event::Added(n): &Event) { self.sum += n; }
//! }
//!
//! struct Add(u64);
//! impl Message for Add { type Reply = Result<u64, PersistError>; }
//!
//! #[async_trait]
//! impl Handler<Add> for Total {
//!     async fn handle(&mut self, Add(n): Add, ctx: &mut Context<Self>) -> Result<u64, PersistError> {
//!         ctx.persist(self, Event::Added(n)).await?;
//!         Ok(self.sum)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let runtime = Runtime::builder().storage(InMemoryStorageProvider::new()).build();
//! let total = runtime.spawn_event_sourced(Total { id: 1, sum: 0, seq: SequenceId(0) }).await?;
//! assert_eq!(total.ask(Add(2)).await??, 2);
//! assert_eq!(total.ask(Add(3)).await??, 5);
//! runtime.shutdown().await;
//! # Ok::<(), PersistError>(()) }).unwrap();
//! ```

mod actor_ref;
mod context;
mod dead_letter;
mod entities;
mod message;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use actor_ref::{ActorRef, ActorStatus};
pub use context::Context;
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use entities::{Entities, EntityConfig, EntityStats};
pub use message::{Handler, Message, MessageReply};

use crate::{Backoff, DurableState, EventSourced, PersistError, PersistenceId, StorageProvider};
use actor_ref::{Mail, Shared, panic_message};
use context::Stores;

/// How a supervised actor is restarted after a handler panics: with a fresh
/// actor from its factory, recovered from storage (what it had not persisted
/// or saved is gone), after a delay that doubles from `backoff` (capped at
/// 30 s). After `max_restarts` restarts the next panic stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// How many restarts in the actor's life.
    pub max_restarts: u32,
    /// The wait before the first restart.
    pub backoff: Duration,
}

impl Default for Supervision {
    /// Three restarts, the first after 100 ms.
    fn default() -> Self {
        Supervision {
            max_restarts: 3,
            backoff: Duration::from_millis(100),
        }
    }
}

/// The mailbox size when the builder is not told otherwise.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// Builds a [`Runtime`].
#[derive(Default)]
pub struct RuntimeBuilder {
    provider: Option<Arc<dyn StorageProvider>>,
    mailbox_capacity: Option<usize>,
    dead_letters: Option<dead_letter::DeadLetterHook>,
}

impl RuntimeBuilder {
    /// The stores of every actor this runtime hosts.
    #[must_use]
    pub fn storage(mut self, provider: impl StorageProvider) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// The stores, as a provider shared with other code.
    #[must_use]
    pub fn storage_arc(mut self, provider: Arc<dyn StorageProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// How many messages each actor's mailbox holds before `tell` and `ask`
    /// wait for room (at least 1; default [`DEFAULT_MAILBOX_CAPACITY`]).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity.max(1));
        self
    }

    /// Receives every [`DeadLetter`]: a told message whose handler answered
    /// a failure, or that a stopped actor never handled. They are logged
    /// either way; the hook is where an application counts, alerts or
    /// retries them. It runs on the actor's task (or the sender's, for a
    /// message refused at once): keep it short, hand work to a channel.
    #[must_use]
    pub fn dead_letters(mut self, hook: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letters = Some(Arc::new(hook));
        self
    }

    /// The runtime.
    pub fn build(self) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                provider: self.provider,
                dead_letters: self.dead_letters,
                mailbox_capacity: self.mailbox_capacity.unwrap_or(DEFAULT_MAILBOX_CAPACITY),
                registry: Mutex::new(Registry::default()),
            }),
        }
    }
}

/// Hosts persistent actors on tokio. Cheap to clone: clones share the actors.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Option<Arc<dyn StorageProvider>>,
    dead_letters: Option<dead_letter::DeadLetterHook>,
    mailbox_capacity: usize,
    registry: Mutex<Registry>,
}

/// The live actors, by persistence id.
#[derive(Default)]
struct Registry {
    actors: HashMap<PersistenceId, Entry>,
    next_generation: u64,
    shut_down: bool,
    /// The projections it hosts, stopped after the actors on shutdown.
    projections: Vec<crate::projection::ProjectionHandle>,
}

struct Entry {
    generation: u64,
    stop: Box<dyn Fn() -> Option<StopSignal> + Send + Sync>,
    status: watch::Receiver<ActorStatus>,
}

/// Sends the stop mail to one actor.
type StopSignal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("actors", &self.registry().actors.len())
            .field("mailbox_capacity", &self.inner.mailbox_capacity)
            .finish()
    }
}

impl Runtime {
    /// A builder; give it a [`StorageProvider`].
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every critical section only touches the map; a poisoned lock still
        // holds a consistent map.
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many actors are alive (recovering, running or stopping).
    pub fn actor_count(&self) -> usize {
        self.registry().actors.len()
    }

    /// Spawns an event-sourced actor: recovery from its journal and snapshots
    /// runs in its task before its first message.
    ///
    /// # Errors
    ///
    /// [`PersistError::NotConfigured`] when the runtime has no provider, or the
    /// provider has no journal or snapshot store for the actor's id;
    /// [`PersistError::AlreadyRunning`] when an actor with the same
    /// persistence id is alive in this runtime; [`PersistError::ActorStopped`]
    /// after [`shutdown`](Runtime::shutdown); [`PersistError::InvalidInput`]
    /// when called outside a tokio runtime.
    pub async fn spawn_event_sourced<A: EventSourced>(
        &self,
        actor: A,
    ) -> Result<ActorRef<A>, PersistError> {
        self.spawn_event_sourced_now(actor)
    }

    /// [`spawn_event_sourced`](Runtime::spawn_event_sourced), without
    /// awaiting (it never waits).
    pub(crate) fn spawn_event_sourced_now<A: EventSourced>(
        &self,
        actor: A,
    ) -> Result<ActorRef<A>, PersistError> {
        let pid = actor.persistence_id();
        let stores = self.event_stores(&pid)?;
        self.start(actor, pid, stores, None, task::run_event_sourced::<A>)
    }

    /// Spawns an event-sourced actor made by `factory`, and restarts it the
    /// same way, recovered from storage, when a handler panics (see
    /// [`Supervision`]). The `ask` whose handler panicked is answered with
    /// [`PersistError::HandlerPanicked`]; later messages reach the new actor.
    ///
    /// # Errors
    ///
    /// As [`spawn_event_sourced`](Runtime::spawn_event_sourced).
    pub async fn spawn_event_sourced_supervised<A, F>(
        &self,
        factory: F,
        supervision: Supervision,
    ) -> Result<ActorRef<A>, PersistError>
    where
        A: EventSourced,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let actor = factory();
        let pid = actor.persistence_id();
        let stores = self.event_stores(&pid)?;
        let restart = (Arc::new(factory) as task::Factory<A>, supervision);
        self.start(
            actor,
            pid,
            stores,
            Some(restart),
            task::run_event_sourced::<A>,
        )
    }

    /// Spawns a durable-state actor: its stored state is loaded in its task
    /// before its first message.
    ///
    /// # Errors
    ///
    /// As [`spawn_event_sourced`](Runtime::spawn_event_sourced), with the
    /// provider's state store.
    pub async fn spawn_durable_state<A: DurableState>(
        &self,
        actor: A,
    ) -> Result<ActorRef<A>, PersistError> {
        self.spawn_durable_state_now(actor)
    }

    /// [`spawn_durable_state`](Runtime::spawn_durable_state), without
    /// awaiting (it never waits).
    pub(crate) fn spawn_durable_state_now<A: DurableState>(
        &self,
        actor: A,
    ) -> Result<ActorRef<A>, PersistError> {
        let pid = actor.persistence_id();
        let stores = self.state_stores(&pid)?;
        self.start(actor, pid, stores, None, task::run_durable_state::<A>)
    }

    /// Spawns a durable-state actor made by `factory`, restarted from its
    /// last saved state when a handler panics (see [`Supervision`]).
    ///
    /// # Errors
    ///
    /// As [`spawn_durable_state`](Runtime::spawn_durable_state).
    pub async fn spawn_durable_state_supervised<A, F>(
        &self,
        factory: F,
        supervision: Supervision,
    ) -> Result<ActorRef<A>, PersistError>
    where
        A: DurableState,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let actor = factory();
        let pid = actor.persistence_id();
        let stores = self.state_stores(&pid)?;
        let restart = (Arc::new(factory) as task::Factory<A>, supervision);
        self.start(
            actor,
            pid,
            stores,
            Some(restart),
            task::run_durable_state::<A>,
        )
    }

    /// The journal and snapshot store the provider has for `pid`.
    fn event_stores(&self, pid: &PersistenceId) -> Result<Stores, PersistError> {
        let provider = self.provider()?;
        Ok(Stores::EventSourced {
            journal: provider.journal(pid).ok_or(PersistError::NotConfigured)?,
            snapshots: provider.snapshots(pid).ok_or(PersistError::NotConfigured)?,
        })
    }

    /// The state store the provider has for `pid`.
    fn state_stores(&self, pid: &PersistenceId) -> Result<Stores, PersistError> {
        let state = self.provider()?.state(pid);
        Ok(Stores::DurableState {
            state: state.ok_or(PersistError::NotConfigured)?,
        })
    }

    fn provider(&self) -> Result<&Arc<dyn StorageProvider>, PersistError> {
        self.inner
            .provider
            .as_ref()
            .ok_or(PersistError::NotConfigured)
    }

    fn start<A, F, Fut>(
        &self,
        actor: A,
        pid: PersistenceId,
        stores: Stores,
        restart: Option<(task::Factory<A>, Supervision)>,
        run: F,
    ) -> Result<ActorRef<A>, PersistError>
    where
        A: crate::PersistentActor,
        F: FnOnce(task::Hosted<A>) -> Fut,
        Fut: std::future::Future<Output = String> + Send + 'static,
    {
        let Ok(tokio) = tokio::runtime::Handle::try_current() else {
            return Err(PersistError::InvalidInput {
                persistence_id: pid,
                detail: "actors are hosted on tokio: spawn them from inside a tokio runtime".into(),
            });
        };
        let (tx, rx) = mpsc::channel(self.inner.mailbox_capacity);
        let (status_tx, status_rx) = watch::channel(ActorStatus::Recovering);
        let generation = {
            let mut registry = self.registry();
            if registry.shut_down {
                return Err(PersistError::ActorStopped {
                    persistence_id: pid,
                    reason: "the runtime is shut down".into(),
                });
            }
            if registry.actors.contains_key(&pid) {
                return Err(PersistError::AlreadyRunning(pid));
            }
            registry.next_generation += 1;
            let generation = registry.next_generation;
            let weak = tx.downgrade();
            let stop = Box::new(move || -> Option<StopSignal> {
                let tx = weak.upgrade()?;
                Some(Box::pin(async move {
                    let _ = tx.send(Mail::Stop).await;
                }))
            });
            registry.actors.insert(
                pid.clone(),
                Entry {
                    generation,
                    stop,
                    status: status_rx.clone(),
                },
            );
            generation
        };
        let status_tx = Arc::new(status_tx);
        let mut ctx = Context::new(pid.clone(), stores);
        ctx.dead_letters = self.inner.dead_letters.clone();
        ctx.supervised = restart.as_ref().is_some_and(|(_, s)| s.max_restarts > 0);
        let restart = restart.map(|(factory, s)| {
            // `max_restarts` restarts: that many delays, so one try more.
            let tries = s.max_restarts.saturating_add(1);
            (
                factory,
                Backoff::new(Some(tries), s.backoff),
                s.max_restarts,
            )
        });
        let hosted = task::Hosted {
            actor,
            ctx,
            restart,
            rx,
            status: status_tx.clone(),
        };
        let actor_task = tokio.spawn(run(hosted));
        let runtime = self.clone();
        let supervised_pid = pid.clone();
        tokio.spawn(async move {
            let reason = match actor_task.await {
                Ok(reason) => reason,
                Err(e) if e.is_panic() => {
                    let reason = format!("a handler panicked: {}", panic_message(e.into_panic()));
                    tracing::error!(persistence_id = %supervised_pid, %reason, "actor stopped");
                    reason
                }
                Err(_) => "the actor's task was cancelled".to_owned(),
            };
            {
                let mut registry = runtime.registry();
                if registry
                    .actors
                    .get(&supervised_pid)
                    .is_some_and(|e| e.generation == generation)
                {
                    registry.actors.remove(&supervised_pid);
                }
            }
            status_tx.send_replace(ActorStatus::Stopped(reason));
        });
        Ok(ActorRef {
            tx,
            shared: Arc::new(Shared {
                pid,
                status: status_rx,
                dead_letters: self.inner.dead_letters.clone(),
            }),
        })
    }

    /// Hosts a running projection (see [`crate::projection`]): `shutdown`
    /// stops it once the actors have stopped, so that the events they
    /// persisted last are handled and its offset saved.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dactor_persist::*;
    /// use dactor_persist::projection::{HandlerError, Projection};
    /// use dactor_persist::query::EventEnvelope;
    /// use dactor_persist::runtime::Runtime;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = Arc::new(InMemoryStorage::new());
    /// let runtime = Runtime::builder()
    ///     .storage(InMemoryStorageProvider::from_storage(store.clone()))
    ///     .build();
    /// let audit = Projection::all("audit").run_at_least_once(store, |event: EventEnvelope| async move {
    ///     println!("{} #{}: {}", event.persistence_id, event.sequence_id.0, event.event_type);
    ///     Ok::<(), HandlerError>(())
    /// })?;
    /// runtime.host_projection(audit);
    /// assert_eq!(runtime.projection_names(), ["audit"]);
    /// runtime.shutdown().await;
    /// # Ok::<(), PersistError>(()) }).unwrap();
    /// ```
    pub fn host_projection(&self, handle: crate::projection::ProjectionHandle) {
        self.registry().projections.push(handle);
    }

    /// The names of the projections it hosts.
    pub fn projection_names(&self) -> Vec<String> {
        self.registry()
            .projections
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    }

    /// The status of the hosted projection `name`.
    pub fn projection_status(&self, name: &str) -> Option<crate::projection::ProjectionStatus> {
        self.registry()
            .projections
            .iter()
            .find(|p| p.name() == name)
            .map(crate::projection::ProjectionHandle::status)
    }

    /// Stops every actor gracefully and waits until all have stopped: each
    /// handles what is already in its mailbox, finishes its writes and, for a
    /// durable state, saves. Spawning afterwards fails. Then stops the
    /// projections it hosts, each after saving what it handled.
    pub async fn shutdown(&self) {
        let (signals, mut statuses): (Vec<_>, Vec<_>) = {
            let mut registry = self.registry();
            registry.shut_down = true;
            registry
                .actors
                .values()
                .map(|e| ((e.stop)(), e.status.clone()))
                .unzip()
        };
        for signal in signals.into_iter().flatten() {
            signal.await;
        }
        for status in &mut statuses {
            let _ = status
                .wait_for(|s| matches!(s, ActorStatus::Stopped(_)))
                .await;
        }
        let projections = std::mem::take(&mut self.registry().projections);
        for projection in projections {
            projection.stop().await;
        }
    }
}
