//! Entities by id: the runtime finds the actor for an id, spawning and
//! recovering it on first use, and passivates idle or least recently used
//! ones, bringing them back on their next message.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::actor_ref::{ActorRef, ActorStatus, Mail};
use super::{Handler, Message, Runtime};
use crate::{DurableState, EventSourced, PersistError, PersistentActor};

/// How the runtime hosts one type of entity: how to make one from its id,
/// and when to passivate it.
pub struct EntityConfig<A> {
    factory: Arc<dyn Fn(&str) -> A + Send + Sync>,
    idle_timeout: Option<Duration>,
    max_live: Option<usize>,
}

impl<A> EntityConfig<A> {
    /// Entities made by `factory` from their id (the actor before recovery;
    /// its persistence id must carry that id). No passivation until
    /// configured.
    pub fn new(factory: impl Fn(&str) -> A + Send + Sync + 'static) -> Self {
        EntityConfig {
            factory: Arc::new(factory),
            idle_timeout: None,
            max_live: None,
        }
    }

    /// Passivates an entity that has received no message through these
    /// [`Entities`] for `timeout`.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Keeps at most `max` entities live (at least 1): the least recently
    /// used is passivated when one more is needed.
    #[must_use]
    pub fn max_live(mut self, max: usize) -> Self {
        self.max_live = Some(max.max(1));
        self
    }
}

/// Counters of an [`Entities`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntityStats {
    /// Live entities now.
    pub live: usize,
    /// Incarnations spawned (first uses and returns after passivation).
    pub spawned: u64,
    /// Passivations begun (idle or least recently used).
    pub passivated: u64,
}

/// The entities of one type, by id, made by
/// [`Runtime::event_sourced_entities`] or [`Runtime::durable_state_entities`].
/// Cheap to clone; clones share the entities.
///
/// ```
/// use std::time::Duration;
/// use dactor_persist::prelude::*;
/// use dactor_persist::runtime::{Context, EntityConfig, Handler, Message, Runtime};
///
/// #[derive(Default, DurableState)]
/// #[persist(entity = "Visits")]
/// struct Visits { #[persist(id)] page: String, count: u64 }
///
/// struct Visit;
/// impl Message for Visit { type Reply = u64; }
/// #[async_trait]
/// impl Handler<Visit> for Visits {
///     async fn handle(&mut self, _: Visit, _: &mut Context<Self>) -> u64 { self.count += 1; self.count }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let runtime = Runtime::builder().storage(InMemoryStorageProvider::new()).build();
/// let pages = runtime.durable_state_entities(
///     EntityConfig::new(|id: &str| Visits { page: id.to_owned(), ..Default::default() })
///         .max_live(2)
///         .idle_timeout(Duration::from_secs(600)),
/// );
/// for page in ["a", "b", "c", "a"] {
///     pages.ask(page, Visit).await?;
/// }
/// // At most 2 live: "a" was passivated for "c", then brought back.
/// assert_eq!(pages.ask("a", Visit).await?, 3);
/// assert!(pages.live() <= 2);
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
///
/// **Passivation** stops an entity gracefully: the messages already in its
/// mailbox are handled, a durable-state entity saves (as on every graceful
/// stop), and it leaves memory. A message for its id sent through
/// [`tell`](Entities::tell) or [`ask`](Entities::ask) while it stops waits
/// until it has stopped and goes to its next incarnation, recovered from
/// storage: no message is lost, and messages from one sender keep their
/// order. A handle from [`get`](Entities::get) reaches one incarnation only:
/// after passivation it answers `ActorStopped`; send through the
/// `Entities` to be routed. Idle time counts messages sent through the
/// `Entities`.
pub struct Entities<A> {
    inner: Arc<Inner<A>>,
}

impl<A> Clone for Entities<A> {
    fn clone(&self) -> Self {
        Entities {
            inner: self.inner.clone(),
        }
    }
}

type Spawn<A> = fn(&Runtime, A) -> Result<ActorRef<A>, PersistError>;

struct Inner<A> {
    runtime: Runtime,
    config: EntityConfig<A>,
    spawn: Spawn<A>,
    live: Mutex<Live<A>>,
    sweeper: OnceLock<()>,
}

/// The live entities, by id and by last use.
struct Live<A> {
    by_id: HashMap<String, Slot<A>>,
    /// Use stamp -> id, oldest first.
    by_use: BTreeMap<u64, String>,
    clock: u64,
    /// Incarnations stopping: a new one waits for them.
    stopping: HashMap<String, ActorRef<A>>,
    spawned: u64,
    passivated: u64,
}

struct Slot<A> {
    actor: ActorRef<A>,
    stamp: u64,
    used: Instant,
}

/// How many times a message is offered to fresh incarnations of an entity
/// that keep stopping before it reaches one.
const MAX_DELIVERY_TRIES: usize = 8;

impl Runtime {
    /// The event-sourced entities made by `config`: see [`Entities`].
    pub fn event_sourced_entities<A: EventSourced>(&self, config: EntityConfig<A>) -> Entities<A> {
        Entities::new(self.clone(), config, |rt, actor| {
            rt.spawn_event_sourced_now(actor)
        })
    }

    /// The durable-state entities made by `config`: see [`Entities`].
    pub fn durable_state_entities<A: DurableState>(&self, config: EntityConfig<A>) -> Entities<A> {
        Entities::new(self.clone(), config, |rt, actor| {
            rt.spawn_durable_state_now(actor)
        })
    }
}

impl<A: PersistentActor + Send + 'static> Entities<A> {
    fn new(runtime: Runtime, config: EntityConfig<A>, spawn: Spawn<A>) -> Self {
        Entities {
            inner: Arc::new(Inner {
                runtime,
                config,
                spawn,
                live: Mutex::new(Live {
                    by_id: HashMap::new(),
                    by_use: BTreeMap::new(),
                    clock: 0,
                    stopping: HashMap::new(),
                    spawned: 0,
                    passivated: 0,
                }),
                sweeper: OnceLock::new(),
            }),
        }
    }

    /// The live actor for `id`, spawned (its recovery started) on first use
    /// or after passivation; concurrent first requests spawn it once.
    ///
    /// # Errors
    ///
    /// As [`Runtime::spawn_event_sourced`]: among them
    /// [`PersistError::AlreadyRunning`] when the id was spawned by hand
    /// outside these `Entities`.
    pub async fn get(&self, id: &str) -> Result<ActorRef<A>, PersistError> {
        self.start_sweeper();
        loop {
            let old = {
                let mut live = self.inner.lock();
                if let Some(actor) = live.touch(id) {
                    return Ok(actor);
                }
                match live.stopping.get(id) {
                    Some(old) => old.clone(),
                    None => {
                        let actor = (self.inner.spawn)(
                            &self.inner.runtime,
                            (self.inner.config.factory)(id),
                        )?;
                        live.insert(id, actor.clone());
                        live.spawned += 1;
                        if let Some(max) = self.inner.config.max_live {
                            while live.by_id.len() > max {
                                if !self.passivate_oldest(&mut live) {
                                    break;
                                }
                            }
                        }
                        return Ok(actor);
                    }
                }
            };
            old.stopped().await;
            let mut live = self.inner.lock();
            if live.stopping.get(id).is_some_and(|s| s.same_actor(&old)) {
                live.stopping.remove(id);
            }
        }
    }

    /// Sends `msg` to the entity `id` without waiting for it to be handled.
    ///
    /// # Errors
    ///
    /// As [`get`](Entities::get); [`PersistError::ActorStopped`] when every
    /// incarnation it was offered to stopped first.
    pub async fn tell<M>(&self, id: &str, msg: M) -> Result<(), PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        self.deliver(id, ActorRef::<A>::told(msg)).await.map(drop)
    }

    /// Sends `msg` to the entity `id` and waits for the reply.
    ///
    /// # Errors
    ///
    /// As [`tell`](Entities::tell), and as [`ActorRef::ask`].
    pub async fn ask<M>(&self, id: &str, msg: M) -> Result<M::Reply, PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        let (mail, answer) = ActorRef::<A>::asked(msg);
        let actor = self.deliver(id, mail).await?;
        actor.answer(answer).await
    }

    /// Puts `mail` in the mailbox of the live incarnation of `id`, waiting
    /// out one that is stopping.
    async fn deliver(&self, id: &str, mut mail: Mail<A>) -> Result<ActorRef<A>, PersistError> {
        for _ in 0..MAX_DELIVERY_TRIES {
            let actor = self.get(id).await?;
            match actor.send_mail(mail).await {
                Ok(()) => return Ok(actor),
                Err(back) => {
                    // It began stopping after we found it: wait, then the
                    // next incarnation gets the message.
                    mail = back;
                    actor.stopped().await;
                    self.forget(id, &actor);
                }
            }
        }
        Err(PersistError::ActorStopped {
            persistence_id: (self.inner.config.factory)(id).persistence_id(),
            reason: format!(
                "{MAX_DELIVERY_TRIES} incarnations in a row stopped before taking the message"
            ),
        })
    }

    /// Drops a stopped incarnation from the books.
    fn forget(&self, id: &str, actor: &ActorRef<A>) {
        let mut live = self.inner.lock();
        if live
            .by_id
            .get(id)
            .is_some_and(|s| s.actor.same_actor(actor))
        {
            live.remove(id);
        }
        if live.stopping.get(id).is_some_and(|s| s.same_actor(actor)) {
            live.stopping.remove(id);
        }
    }

    /// Passivates the entity `id` now, if it is live.
    pub fn passivate(&self, id: &str) {
        let mut live = self.inner.lock();
        if let Some(slot) = live.remove(id) {
            self.begin_passivation(&mut live, id.to_owned(), slot.actor);
        }
    }

    /// How many entities are live.
    pub fn live(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    /// The counters.
    pub fn stats(&self) -> EntityStats {
        let live = self.inner.lock();
        EntityStats {
            live: live.by_id.len(),
            spawned: live.spawned,
            passivated: live.passivated,
        }
    }

    fn passivate_oldest(&self, live: &mut Live<A>) -> bool {
        let Some((_, id)) = live.by_use.pop_first() else {
            return false;
        };
        if let Some(slot) = live.by_id.remove(&id) {
            self.begin_passivation(live, id, slot.actor);
        }
        true
    }

    /// Stops `actor` gracefully; a new incarnation of `id` waits for it.
    fn begin_passivation(&self, live: &mut Live<A>, id: String, actor: ActorRef<A>) {
        live.passivated += 1;
        actor.request_stop();
        live.stopping.insert(id.clone(), actor.clone());
        let weak: Weak<Inner<A>> = Arc::downgrade(&self.inner);
        // Outside tokio the entry stays until a `get` for the id sees the
        // incarnation stopped.
        let Ok(tokio) = tokio::runtime::Handle::try_current() else {
            return;
        };
        tokio.spawn(async move {
            actor.stopped().await;
            if let Some(inner) = weak.upgrade() {
                let mut live = inner.lock();
                if live.stopping.get(&id).is_some_and(|s| s.same_actor(&actor)) {
                    live.stopping.remove(&id);
                }
            }
        });
    }

    /// Starts the idle sweep, once, on first use (inside tokio).
    fn start_sweeper(&self) {
        let Some(timeout) = self.inner.config.idle_timeout else {
            return;
        };
        let Ok(tokio) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.inner.sweeper.get_or_init(|| {
            let weak = Arc::downgrade(&self.inner);
            let period = (timeout / 2).clamp(Duration::from_millis(1), Duration::from_secs(1));
            tokio.spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    Entities { inner }.passivate_idle(timeout);
                }
            });
        });
    }

    fn passivate_idle(&self, timeout: Duration) {
        let now = Instant::now();
        let mut live = self.inner.lock();
        while let Some((_, id)) = live.by_use.first_key_value() {
            let idle = live
                .by_id
                .get(id)
                .is_some_and(|s| now.duration_since(s.used) >= timeout);
            if !idle {
                break;
            }
            self.passivate_oldest(&mut live);
        }
    }
}

impl<A> Inner<A> {
    fn lock(&self) -> MutexGuard<'_, Live<A>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<A: Send + 'static> Live<A> {
    /// The live incarnation of `id`, marked as just used; a stopped one is
    /// dropped from the books.
    fn touch(&mut self, id: &str) -> Option<ActorRef<A>> {
        let slot = self.by_id.get(id)?;
        match slot.actor.status() {
            ActorStatus::Recovering | ActorStatus::Running => {}
            ActorStatus::Stopping => {
                // Stopping by itself: a new incarnation waits for it.
                let slot = self.remove(id)?;
                self.stopping.insert(id.to_owned(), slot.actor);
                return None;
            }
            _ => {
                self.remove(id);
                return None;
            }
        }
        self.clock += 1;
        let stamp = self.clock;
        let slot = self.by_id.get_mut(id)?;
        let old = std::mem::replace(&mut slot.stamp, stamp);
        slot.used = Instant::now();
        let actor = slot.actor.clone();
        if let Some(name) = self.by_use.remove(&old) {
            self.by_use.insert(stamp, name);
        }
        Some(actor)
    }

    fn insert(&mut self, id: &str, actor: ActorRef<A>) {
        self.clock += 1;
        let stamp = self.clock;
        self.by_use.insert(stamp, id.to_owned());
        self.by_id.insert(
            id.to_owned(),
            Slot {
                actor,
                stamp,
                used: Instant::now(),
            },
        );
    }

    fn remove(&mut self, id: &str) -> Option<Slot<A>> {
        let slot = self.by_id.remove(id)?;
        self.by_use.remove(&slot.stamp);
        Some(slot)
    }
}
