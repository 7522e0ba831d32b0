//! The context handlers persist through: persist failure policy, automatic
//! snapshots for event-sourced actors and automatic saves for durable ones.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use crate::{
    Backoff, DurableState, EventSourced, JournalStorage, Metadata, NewEvent, PersistError,
    PersistFailurePolicy, PersistenceId, SaveConfig, SequenceId, SnapshotConfig, SnapshotStorage,
    StateStorage,
};

/// The journal and snapshot store of an event-sourced actor.
type EventStores = (Arc<dyn JournalStorage>, Arc<dyn SnapshotStorage>);

/// The stores of one hosted actor, found through the runtime's provider.
#[derive(Clone)]
pub(crate) enum Stores {
    EventSourced {
        journal: Arc<dyn JournalStorage>,
        snapshots: Arc<dyn SnapshotStorage>,
    },
    DurableState {
        state: Arc<dyn StateStorage>,
    },
}

/// What a handler uses to persist, snapshot, save and stop: one per hosted
/// actor, passed to every [`Handler::handle`](super::Handler::handle).
///
/// Every write follows the actor's
/// [`persist_failure_policy`](crate::PersistentActor::persist_failure_policy):
/// - `Stop`: the method returns the error, and the actor stops once the
///   handler returns; an `ask` in flight is answered with the error.
/// - `ReturnError`: the method returns the error and the actor carries on.
/// - `Retry`: the same write is tried again (only for errors that may pass,
///   [`PersistError::is_transient`]) after doubling delays; when the tries run
///   out the actor stops as with `Stop`.
///
/// A [`PersistError::SequenceConflict`] always stops the actor: another writer
/// has persisted for its id, so it is no longer the single writer.
pub struct Context<A> {
    pid: PersistenceId,
    stores: Stores,
    policy: PersistFailurePolicy,
    /// Set when the actor must stop after the current message; the error (if
    /// any) answers the `ask` in flight.
    pub(crate) stop: Option<StopRequest>,
    pub(crate) snapshots: SnapshotSchedule,
    pub(crate) saves: SaveSchedule,
    /// Restarted after a panic (true) or stopped (false).
    pub(crate) supervised: bool,
    /// Stored with every event persisted while the current message is
    /// handled.
    metadata: Option<Metadata>,
    /// The runtime's dead-letter hook.
    pub(crate) dead_letters: Option<super::dead_letter::DeadLetterHook>,
    _actor: PhantomData<fn() -> A>,
}

/// Why the actor stops after the current message.
#[derive(Debug, Clone)]
pub(crate) enum StopRequest {
    /// The handler asked to stop: a graceful stop.
    Graceful,
    /// A write failed under the policy.
    Failed(PersistError),
}

/// Automatic snapshot bookkeeping of an event-sourced actor.
#[derive(Default)]
pub(crate) struct SnapshotSchedule {
    pub(crate) config: Option<SnapshotConfig>,
    /// Events persisted since the last snapshot.
    pub(crate) events_since: u64,
    /// Sequences of the snapshots this incarnation saved, oldest first.
    saved: VecDeque<SequenceId>,
}

/// Automatic save bookkeeping of a durable-state actor.
#[derive(Default)]
pub(crate) struct SaveSchedule {
    pub(crate) config: Option<SaveConfig>,
    /// Messages handled since the last successful save.
    pub(crate) messages_since: u64,
    /// The bytes last saved (or recovered): a save of the same bytes writes
    /// nothing.
    pub(crate) last_saved: Option<Vec<u8>>,
}

impl<A> Context<A> {
    pub(crate) fn new(pid: PersistenceId, stores: Stores) -> Self {
        Context {
            pid,
            stores,
            policy: PersistFailurePolicy::Stop,
            stop: None,
            snapshots: SnapshotSchedule::default(),
            saves: SaveSchedule::default(),
            supervised: false,
            metadata: None,
            dead_letters: None,
            _actor: PhantomData,
        }
    }

    /// Reads the actor's policies and configuration, once it has recovered
    /// (they may depend on its recovered state).
    pub(crate) fn configure(&mut self, actor: &A)
    where
        A: crate::PersistentActor,
    {
        self.policy = actor.persist_failure_policy();
    }

    /// The actor's persistence id.
    pub fn persistence_id(&self) -> &PersistenceId {
        &self.pid
    }

    /// Stores `metadata` (correlation and causation ids, headers) with every
    /// event persisted from now until the current message is handled; it is
    /// read back in each [`EventEnvelope`](crate::query::EventEnvelope).
    ///
    /// # Examples
    ///
    /// ```
    /// # use dactor_persist::prelude::*;
    /// # use dactor_persist::Metadata;
    /// # use dactor_persist::runtime::{Context, Handler, Message};
    /// # #[derive(PersistentEvent)] enum Event { Placed }
    /// # #[derive(EventSourced)] #[persist(entity = "Order", event = Event)]
    /// # struct Order { #[persist(id)] id: u32, #[persist(sequence)] seq: SequenceId }
    /// # impl ApplyEvent<Event> for Order { fn apply_event(&mut self, _: &Event) {} }
    /// struct Place { request_id: String }
    /// impl Message for Place { type Reply = Result<(), PersistError>; }
    ///
    /// #[async_trait]
    /// impl Handler<Place> for Order {
    ///     async fn handle(&mut self, msg: Place, ctx: &mut Context<Self>) -> Result<(), PersistError> {
    ///         ctx.set_metadata(Metadata::new().with_correlation_id(msg.request_id));
    ///         ctx.persist(self, Event::Placed).await?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = (!metadata.is_empty()).then_some(metadata);
    }

    /// The metadata set for the current message, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// Forgets the metadata of the current message (done by the runtime
    /// after each message).
    pub fn clear_metadata(&mut self) {
        self.metadata = None;
    }

    /// Stops the actor gracefully once the current message is handled: the
    /// messages already in its mailbox are handled first, then a durable-state
    /// actor saves its state.
    pub fn stop(&mut self) {
        if self.stop.is_none() {
            self.stop = Some(StopRequest::Graceful);
        }
    }

    /// The journal and snapshot store of an event-sourced actor.
    pub(crate) fn event_stores(&self) -> Option<EventStores> {
        match &self.stores {
            Stores::EventSourced { journal, snapshots } => {
                Some((journal.clone(), snapshots.clone()))
            }
            Stores::DurableState { .. } => None,
        }
    }

    /// The state store of a durable-state actor.
    pub(crate) fn state_store(&self) -> Option<Arc<dyn StateStorage>> {
        match &self.stores {
            Stores::DurableState { state } => Some(state.clone()),
            Stores::EventSourced { .. } => None,
        }
    }

    /// Forgets what belonged to an incarnation that panicked.
    pub(crate) fn reset(&mut self) {
        self.stop = None;
        self.snapshots = SnapshotSchedule::default();
        self.saves = SaveSchedule::default();
    }

    /// The answer to an `ask` whose handler panicked.
    pub(crate) fn panicked_error(&self, detail: &str) -> PersistError {
        if self.supervised {
            PersistError::HandlerPanicked {
                persistence_id: self.pid.clone(),
                detail: detail.to_owned(),
            }
        } else {
            PersistError::ActorStopped {
                persistence_id: self.pid.clone(),
                reason: format!("a handler panicked: {detail}"),
            }
        }
    }

    /// The error a failed write stopped the actor with, if any.
    pub(crate) fn failure(&self) -> Option<&PersistError> {
        match &self.stop {
            Some(StopRequest::Failed(e)) => Some(e),
            _ => None,
        }
    }

    /// The retry schedule of one write under the policy.
    fn attempts(&self) -> Attempts {
        Attempts {
            backoff: match &self.policy {
                PersistFailurePolicy::Retry {
                    max_attempts,
                    initial_delay,
                } => Some(Backoff::new(*max_attempts, *initial_delay)),
                _ => None,
            },
            tried_before: false,
        }
    }

    /// Judges a failed write under the policy: `Ok(delay)` to try again after
    /// `delay`; `Err` to give up, having set the actor to stop unless the
    /// policy is `ReturnError`. A conflict always stops the actor.
    fn judge(
        &mut self,
        what: &'static str,
        attempts: &mut Attempts,
        err: PersistError,
    ) -> Result<Duration, PersistError> {
        let conflict = matches!(err, PersistError::SequenceConflict { .. });
        if conflict {
            tracing::error!(what, error = %err, "another writer persisted for this id; stopping");
        } else {
            match (&self.policy, attempts.backoff.as_mut()) {
                (PersistFailurePolicy::ReturnError, _) => {
                    tracing::warn!(what, error = %err, "write failed; returning the error to the handler");
                    return Err(err);
                }
                (PersistFailurePolicy::Retry { .. }, Some(b)) if err.is_transient() => {
                    if let Some(delay) = b.next_delay() {
                        tracing::warn!(what, error = %err, delay_ms = delay.as_millis() as u64, "write failed; retrying");
                        attempts.tried_before = true;
                        return Ok(delay);
                    }
                    tracing::error!(what, error = %err, "write failed; no retries left; stopping");
                }
                _ => tracing::error!(what, error = %err, "write failed; stopping"),
            }
        }
        self.stop = Some(StopRequest::Failed(err.clone()));
        Err(err)
    }

    /// Records a write that could not even be tried (the event does not
    /// encode, or the sequences are used up): nothing was written and trying again
    /// cannot help, so it stops the actor unless the policy is `ReturnError`.
    fn encoding_failed(&mut self, err: PersistError) -> PersistError {
        if !matches!(self.policy, PersistFailurePolicy::ReturnError) {
            self.stop = Some(StopRequest::Failed(err.clone()));
        }
        err
    }
}

/// True when the journal already holds exactly `entries` (the first of them
/// is checked: a batch is stored whole or not at all).
async fn already_written(
    journal: &dyn JournalStorage,
    pid: &PersistenceId,
    entries: &[NewEvent<'_>],
) -> bool {
    let Some(first) = entries.first() else {
        return false;
    };
    match journal.read_events_page(pid, first.sequence_id, 1).await {
        Ok(page) => page.first().is_some_and(|e| {
            e.sequence_id == first.sequence_id
                && e.event_type == first.event_type
                && e.payload == first.payload
        }),
        Err(_) => false,
    }
}

/// One write of one event or an atomic batch, as the store takes it: a
/// single event without tags and metadata goes the fastest way.
async fn write(
    journal: &dyn JournalStorage,
    pid: &PersistenceId,
    entries: &[NewEvent<'_>],
) -> Result<(), PersistError> {
    match entries {
        [one] if one.is_plain() => {
            journal
                .write_event(pid, one.sequence_id, one.event_type, one.payload)
                .await
        }
        _ => journal.write_events(pid, entries).await,
    }
}

/// The tries of one write.
struct Attempts {
    backoff: Option<Backoff>,
    /// A try failed before: a conflict now may be that try having landed.
    tried_before: bool,
}

impl<A: EventSourced> Context<A> {
    fn journal(&self) -> Result<EventStores, PersistError> {
        self.event_stores().ok_or(PersistError::NotConfigured)
    }

    /// Persists one event at the next sequence, then applies it to `actor` and
    /// advances its sequence; snapshots when the actor's
    /// [`SnapshotConfig`] says so. Returns the event's sequence.
    ///
    /// # Errors
    ///
    /// The write's error, under the persist failure policy (see [`Context`]);
    /// the actor's state and sequence are then unchanged.
    pub async fn persist(
        &mut self,
        actor: &mut A,
        event: A::Event,
    ) -> Result<SequenceId, PersistError> {
        let seq = match actor.last_sequence_id().next_for(&self.pid) {
            Ok(seq) => seq,
            Err(err) => return Err(self.encoding_failed(err)),
        };
        let payload = match actor.serialize_event(&event) {
            Ok(payload) => payload,
            Err(err) => return Err(self.encoding_failed(err)),
        };
        let tags = actor.event_tags(&event);
        let metadata = self.metadata.take();
        let mut entry = NewEvent::new(seq, actor.event_type(&event), &payload).tags(&tags);
        if let Some(metadata) = &metadata {
            entry = entry.metadata(metadata);
        }
        let written = self.write_events(&[entry]).await;
        self.metadata = metadata;
        written?;
        actor.apply(&event);
        actor.set_last_sequence_id(seq);
        tracing::debug!(persistence_id = %self.pid, sequence = seq.0, events = 1, "persisted");
        self.after_persist(actor, seq, seq).await;
        Ok(seq)
    }

    /// Persists `events` in one atomic batch at the next sequences, then
    /// applies them in order. A batch that crosses a `every_n_events`
    /// boundary snapshots once, after the batch. An empty batch writes
    /// nothing and returns the current sequence.
    ///
    /// # Errors
    ///
    /// As [`persist`](Context::persist); nothing is applied then.
    pub async fn persist_all(
        &mut self,
        actor: &mut A,
        events: Vec<A::Event>,
    ) -> Result<SequenceId, PersistError> {
        if events.is_empty() {
            return Ok(actor.last_sequence_id());
        }
        let mut encoded = Vec::with_capacity(events.len());
        let mut seq = actor.last_sequence_id();
        for event in &events {
            seq = match seq.next_for(&self.pid) {
                Ok(seq) => seq,
                Err(err) => return Err(self.encoding_failed(err)),
            };
            match actor.serialize_event(event) {
                Ok(payload) => encoded.push((
                    seq,
                    actor.event_type(event),
                    payload,
                    actor.event_tags(event),
                )),
                Err(err) => return Err(self.encoding_failed(err)),
            }
        }
        let last = seq;
        let first = encoded[0].0;
        let metadata = self.metadata.take();
        let entries: Vec<NewEvent<'_>> = encoded
            .iter()
            .map(|(s, t, p, tags)| {
                let entry = NewEvent::new(*s, t, p).tags(tags);
                match &metadata {
                    Some(m) => entry.metadata(m),
                    None => entry,
                }
            })
            .collect();
        let written = self.write_events(&entries).await;
        self.metadata = metadata;
        written?;
        for event in &events {
            actor.apply(event);
        }
        actor.set_last_sequence_id(last);
        tracing::debug!(persistence_id = %self.pid, sequence = last.0, events = events.len(), "persisted");
        self.after_persist(actor, first, last).await;
        Ok(last)
    }

    /// Writes `entries` (one or a batch) under the policy.
    async fn write_events(&mut self, entries: &[NewEvent<'_>]) -> Result<(), PersistError> {
        let Stores::EventSourced { journal, .. } = &self.stores else {
            return Err(PersistError::NotConfigured);
        };
        // The fast path: the first try succeeds, with no clone and no span.
        let first_try = write(&**journal, &self.pid, entries).await;
        match first_try {
            Ok(()) => Ok(()),
            // Boxed so that the retry machinery does not weigh on the fast
            // path's future.
            Err(err) => Box::pin(self.retry_events(entries, err)).await,
        }
    }

    /// The slow path of [`write_events`](Context::write_events): the policy
    /// after a failed first try.
    async fn retry_events(
        &mut self,
        entries: &[NewEvent<'_>],
        mut err: PersistError,
    ) -> Result<(), PersistError> {
        let journal = self.journal()?.0;
        let journal = &*journal;
        let pid = self.pid.clone();
        let (from, to) = match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => (first.sequence_id.0, last.sequence_id.0),
            _ => (0, 0),
        };
        let span = tracing::warn_span!("persist", persistence_id = %pid, from, to);
        let mut attempts = self.attempts();
        async {
            loop {
                if attempts.tried_before
                    && matches!(err, PersistError::SequenceConflict { .. })
                    && already_written(journal, &pid, entries).await
                {
                    tracing::info!("an earlier try had landed; its answer was lost");
                    return Ok(());
                }
                let delay = self.judge("persist", &mut attempts, err)?;
                tokio::time::sleep(delay).await;
                match write(journal, &pid, entries).await {
                    Ok(()) => return Ok(()),
                    Err(e) => err = e,
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Saves a snapshot of `actor` at its current sequence now, then applies
    /// the retention and event-deletion settings of its [`SnapshotConfig`].
    ///
    /// # Errors
    ///
    /// The snapshot store's error. A failed snapshot never stops the actor.
    pub async fn snapshot(&mut self, actor: &mut A) -> Result<(), PersistError> {
        let (journal, snapshots) = self.journal()?;
        let seq = actor.last_sequence_id();
        let payload = actor.snapshot_payload()?;
        let span = tracing::info_span!("snapshot", persistence_id = %self.pid, sequence = seq.0);
        async {
            snapshots.save_snapshot(&self.pid, seq, &payload).await?;
            tracing::info!(bytes = payload.len(), "snapshot saved");
            self.snapshots.events_since = 0;
            if self.snapshots.saved.back() != Some(&seq) {
                self.snapshots.saved.push_back(seq);
            }
            let config = self.snapshots.config.clone().unwrap_or_default();
            if let Some(keep) = config.retention_count.map(|n| n.max(1) as usize) {
                while self.snapshots.saved.len() > keep {
                    self.snapshots.saved.pop_front();
                }
                if self.snapshots.saved.len() == keep
                    && let Some(oldest) = self.snapshots.saved.front()
                    && let Err(e) = snapshots.delete_snapshots_before(&self.pid, *oldest).await
                {
                    tracing::warn!(error = %e, "deleting old snapshots failed");
                }
            }
            if config.delete_events_on_snapshot
                && let Err(e) = journal.delete_events_to(&self.pid, seq).await
            {
                tracing::warn!(error = %e, "deleting snapshotted events failed");
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// After a successful persist of `first..=last`: snapshot when a
    /// `every_n_events` boundary was crossed.
    async fn after_persist(&mut self, actor: &mut A, first: SequenceId, last: SequenceId) {
        // `first ..= last` are storable sequences: no overflow.
        let count = last
            .0
            .saturating_sub(first.0)
            .saturating_add(1)
            .unsigned_abs();
        self.snapshots.events_since += count;
        let Some(every) = self
            .snapshots
            .config
            .as_ref()
            .and_then(|c| c.every_n_events)
        else {
            return;
        };
        let every = i64::try_from(every.max(1)).unwrap_or(i64::MAX);
        if (first.0 - 1) / every != last.0 / every {
            Box::pin(self.auto_snapshot(actor)).await;
        }
    }

    /// A snapshot the runtime decided on: failures are logged, never fatal.
    pub(crate) async fn auto_snapshot(&mut self, actor: &mut A) {
        if let Err(e) = self.snapshot(actor).await {
            tracing::warn!(persistence_id = %self.pid, error = %e, "automatic snapshot failed; carrying on");
        }
    }
}

impl<A: DurableState> Context<A> {
    /// Saves `actor`'s whole state now, replacing the stored one.
    ///
    /// # Errors
    ///
    /// The store's error, under the persist failure policy (see [`Context`]).
    pub async fn save(&mut self, actor: &mut A) -> Result<(), PersistError> {
        let state = self.state_store().ok_or(PersistError::NotConfigured)?;
        let payload = match actor.serialize_state() {
            Ok(p) => p,
            Err(err) => return Err(self.encoding_failed(err)),
        };
        if self.saves.last_saved.as_deref() == Some(&payload[..]) {
            // Nothing changed since the stored state: nothing to write.
            self.saves.messages_since = 0;
            return Ok(());
        }
        let pid = self.pid.clone();
        let span = tracing::debug_span!("save", persistence_id = %pid, bytes = payload.len());
        let mut attempts = self.attempts();
        async {
            loop {
                let err = match state.save_state(&pid, &payload).await {
                    Ok(()) => return Ok(()),
                    Err(err) => err,
                };
                let delay = self.judge("save", &mut attempts, err)?;
                tokio::time::sleep(delay).await;
            }
        }
        .instrument(span)
        .await?;
        self.saves.messages_since = 0;
        self.saves.last_saved = Some(payload);
        tracing::debug!(persistence_id = %self.pid, "state saved");
        Ok(())
    }
}
