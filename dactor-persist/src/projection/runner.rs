//! The task that runs one projection: it takes the lease, resumes from the
//! stored offset, reads the live stream in batches, applies them under the
//! failure policy, and answers its handle.

use std::sync::Arc;
#[cfg(feature = "sqlite")]
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::handler::{BatchError, EventHandler, HandlerError};
use super::policy::{AfterRetries, ProjectionFailurePolicy, backoff};
use super::store::{ProjectionLease, ProjectionStore};
use super::{ProjectionState, ProjectionStatus, Settings};
use crate::PersistError;
use crate::query::{EventEnvelope, EventFilter, EventQueries, EventStream, Offset, ReadJournal};

/// How the events reach the read model.
pub(crate) enum Mode {
    /// A handler for any sink; the offset saved every so often.
    AtLeastOnce(Box<dyn EventHandler>),
    /// Through the SQLite store's transaction, with the offset.
    #[cfg(feature = "sqlite")]
    Sqlite {
        store: Arc<crate::SqliteStorage>,
        handler: Arc<Mutex<dyn super::SqliteHandler>>,
    },
    /// Through a PostgreSQL transaction, with the offset.
    #[cfg(feature = "postgres")]
    Postgres {
        store: Arc<crate::PostgresStorage>,
        handler: Box<dyn super::PostgresHandler>,
    },
}

impl Mode {
    fn exactly_once(&self) -> bool {
        !matches!(self, Mode::AtLeastOnce(_))
    }

    /// Applies `events` and moves the offset of `name` from `expected` to
    /// the last event's, as one transaction (exactly-once modes only).
    async fn apply_batch(
        &mut self,
        name: &str,
        expected: Option<Offset>,
        events: &[EventEnvelope],
    ) -> Result<(), BatchError> {
        match self {
            Mode::AtLeastOnce(_) => {
                let _ = (expected, events);
                Err(BatchError::Store(PersistError::ProjectionFailed {
                    projection: name.to_owned(),
                    detail: "an at-least-once projection has no batches".into(),
                }))
            }
            #[cfg(feature = "sqlite")]
            Mode::Sqlite { store, handler } => {
                store
                    .project_batch(name, expected, Arc::new(events.to_vec()), handler.clone())
                    .await
            }
            #[cfg(feature = "postgres")]
            Mode::Postgres { store, handler } => {
                store
                    .project_batch(name, expected, events, handler.as_mut())
                    .await
            }
        }
    }
}

/// What the handle asks of the task.
#[derive(Debug)]
pub(crate) enum Control {
    /// Save what was handled and end.
    Stop,
    /// Read the stored record again now (paused, resumed, offset set).
    Reload,
}

/// What the task does next.
enum Flow {
    /// Read on.
    Continue,
    /// Load the record again and start over from it.
    Reload,
    /// End: asked to stop.
    Stop,
    /// End: failed for good.
    Fail(PersistError),
}

pub(crate) struct Runner {
    pub(crate) name: String,
    pub(crate) filter: EventFilter,
    pub(crate) settings: Settings,
    pub(crate) queries: Arc<dyn EventQueries>,
    pub(crate) store: Arc<dyn ProjectionStore>,
    pub(crate) mode: Mode,
    pub(crate) status: watch::Sender<ProjectionStatus>,
    pub(crate) control: mpsc::UnboundedReceiver<Control>,
    /// The offset stored (what a restart resumes after).
    saved: Option<Offset>,
    /// The offset of the last event handled (ahead of `saved` between saves
    /// of an at-least-once projection).
    handled: Option<Offset>,
    /// When the at-least-once offset was last saved, and events since.
    last_save: Instant,
    unsaved: usize,
}

impl Runner {
    pub(crate) fn new(
        (name, filter, settings): (String, EventFilter, Settings),
        queries: Arc<dyn EventQueries>,
        store: Arc<dyn ProjectionStore>,
        mode: Mode,
        status: watch::Sender<ProjectionStatus>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> Self {
        Runner {
            name,
            filter,
            settings,
            queries,
            store,
            mode,
            status,
            control,
            saved: None,
            handled: None,
            last_save: Instant::now(),
            unsaved: 0,
        }
    }

    fn set_state(&self, state: ProjectionState) {
        self.status.send_if_modified(|s| {
            let changed = s.state != state;
            s.state = state;
            changed
        });
    }

    fn publish(&self, handled: usize, skipped: usize, last: Option<&EventEnvelope>) {
        let (saved, handled_at) = (self.saved, self.handled);
        self.status.send_modify(|s| {
            s.saved_offset = saved;
            s.handled_offset = handled_at;
            s.events_handled += handled as u64;
            s.events_skipped += skipped as u64;
            if let Some(last) = last {
                s.last_event_written_at = Some(last.timestamp);
            }
        });
    }

    /// Waits `delay`, or less when the handle asks something: `Some` then.
    async fn pause_for(&mut self, delay: Duration) -> Option<Control> {
        tokio::select! {
            biased;
            message = self.control.recv() => Some(message.unwrap_or(Control::Stop)),
            () = tokio::time::sleep(delay) => None,
        }
    }

    /// The task's body: runs until stopped or failed for good.
    pub(crate) async fn run(mut self) {
        let outcome = self.run_inner().await;
        match outcome {
            Ok(()) => self.set_state(ProjectionState::Stopped),
            Err(err) => {
                tracing::error!(projection = %self.name, error = %err, "projection stopped");
                self.set_state(ProjectionState::Failed {
                    error: err.to_string(),
                });
            }
        }
    }

    async fn run_inner(&mut self) -> Result<(), PersistError> {
        let mut lease: Option<ProjectionLease> = None;
        let mut store_retry = 0u32;
        let mut registered = false;
        loop {
            // The lease: one instance at a time, across processes.
            if !lease.as_ref().is_some_and(ProjectionLease::is_held) {
                lease = None;
                match self.store.try_lease(&self.name).await {
                    Ok(Some(held)) => lease = Some(held),
                    Ok(None) => {
                        self.set_state(ProjectionState::Standby);
                        if let Some(Control::Stop) =
                            self.pause_for(self.settings.check_interval).await
                        {
                            return Ok(());
                        }
                        continue;
                    }
                    Err(e) => match self.store_failed(e, &mut store_retry).await? {
                        Flow::Stop => return Ok(()),
                        _ => continue,
                    },
                }
            }
            if !registered {
                if let Err(e) = self
                    .store
                    .register_projection(&self.name, &self.filter)
                    .await
                {
                    match self.store_failed(e, &mut store_retry).await? {
                        Flow::Stop => return Ok(()),
                        _ => continue,
                    }
                }
                registered = true;
            }
            let record = match self.store.load_projection(&self.name).await {
                Ok(record) => record,
                Err(e) => match self.store_failed(e, &mut store_retry).await? {
                    Flow::Stop => return Ok(()),
                    _ => continue,
                },
            };
            store_retry = 0;
            self.saved = record.offset;
            self.handled = record.offset;
            self.unsaved = 0;
            self.publish(0, 0, None);
            if record.paused {
                self.set_state(ProjectionState::Paused);
                if let Some(Control::Stop) = self.pause_for(self.settings.check_interval).await {
                    return Ok(());
                }
                continue;
            }
            self.set_state(ProjectionState::Running);
            match self.follow(&mut lease).await {
                Flow::Continue | Flow::Reload => continue,
                Flow::Stop => return Ok(()),
                Flow::Fail(err) => return Err(err),
            }
        }
    }

    /// A store error outside a batch: transient ones are retried with a
    /// doubling delay (the state says so), others end the projection.
    async fn store_failed(
        &mut self,
        err: PersistError,
        retry: &mut u32,
    ) -> Result<Flow, PersistError> {
        if !err.is_transient() {
            return Err(err);
        }
        *retry = retry.saturating_add(1);
        let delay = backoff(self.settings.store_retry_delay, *retry);
        tracing::warn!(projection = %self.name, error = %err, delay_ms = delay.as_millis() as u64, "the store failed; trying again");
        self.set_state(ProjectionState::Retrying {
            error: err.to_string(),
        });
        Ok(match self.pause_for(delay).await {
            Some(Control::Stop) => Flow::Stop,
            _ => Flow::Reload,
        })
    }

    /// Reads the live stream from the saved offset and applies it, until
    /// something asks for a reload, a stop, or fails.
    async fn follow(&mut self, lease: &mut Option<ProjectionLease>) -> Flow {
        let journal =
            ReadJournal::from_dyn(self.queries.clone()).page_size(self.settings.batch_size);
        let mut stream: EventStream = journal.events(
            self.filter.clone(),
            self.saved.unwrap_or(Offset::START),
            true,
        );
        let mut batch: Vec<EventEnvelope> = Vec::new();
        let mut batch_started = Instant::now();
        let mut next_check = Instant::now() + self.settings.check_interval;
        let mut read_retry = 0u32;
        loop {
            let deadline = if batch.is_empty() {
                next_check
            } else {
                (batch_started + self.settings.batch_window).min(next_check)
            };
            let full = batch.len() >= self.settings.batch_size;
            if !full {
                tokio::select! {
                    biased;
                    message = self.control.recv() => {
                        let flow = match message.unwrap_or(Control::Stop) {
                            Control::Stop => Flow::Stop,
                            Control::Reload => Flow::Reload,
                        };
                        // What was gathered is not lost: it is read again.
                        return self.finish(flow).await;
                    }
                    item = tokio::time::timeout_at(deadline.into(), stream.next()) => match item {
                        Ok(Some(Ok(event))) => {
                            read_retry = 0;
                            if batch.is_empty() {
                                batch_started = Instant::now();
                            }
                            batch.push(event);
                            continue;
                        }
                        Ok(Some(Err(err))) => {
                            if !err.is_transient() {
                                return self.finish(Flow::Fail(err)).await;
                            }
                            // The stream resumes from its last event by itself.
                            read_retry = read_retry.saturating_add(1);
                            let delay = backoff(self.settings.store_retry_delay, read_retry);
                            tracing::warn!(projection = %self.name, error = %err, "reading the events failed; trying again");
                            self.set_state(ProjectionState::Retrying { error: err.to_string() });
                            if let Some(control) = self.pause_for(delay).await {
                                let flow = match control {
                                    Control::Stop => Flow::Stop,
                                    Control::Reload => Flow::Reload,
                                };
                                return self.finish(flow).await;
                            }
                            self.set_state(ProjectionState::Running);
                            continue;
                        }
                        // A live stream does not end; start over if it does.
                        Ok(None) => return self.finish(Flow::Reload).await,
                        Err(_elapsed) => {}
                    },
                }
            }
            let now = Instant::now();
            if !batch.is_empty()
                && (batch.len() >= self.settings.batch_size
                    || now >= batch_started + self.settings.batch_window)
            {
                let events = std::mem::take(&mut batch);
                match self.apply(events).await {
                    Flow::Continue => {}
                    other => return self.finish(other).await,
                }
            }
            if Instant::now() >= next_check {
                next_check = Instant::now() + self.settings.check_interval;
                match self.save_due(true).await {
                    Flow::Continue => {}
                    Flow::Fail(err) => return Flow::Fail(err),
                    Flow::Reload | Flow::Stop => return Flow::Reload,
                }
                if !lease.as_ref().is_some_and(ProjectionLease::is_held) {
                    tracing::warn!(projection = %self.name, "the projection's lease was lost; taking it again");
                    return Flow::Reload;
                }
                // Paused, or its offset set, by another process.
                match self.store.load_projection(&self.name).await {
                    Ok(record) if record.paused || record.offset != self.saved => {
                        return Flow::Reload;
                    }
                    Ok(_) => {}
                    Err(err) if err.is_transient() => {}
                    Err(err) => return Flow::Fail(err),
                }
            }
        }
    }

    /// Ends [`follow`](Self::follow): an at-least-once projection saves
    /// what it handled first.
    async fn finish(&mut self, flow: Flow) -> Flow {
        if let Flow::Stop | Flow::Reload = flow {
            let _ = self.save_due(true).await;
        }
        flow
    }

    /// Applies one batch under the failure policy.
    async fn apply(&mut self, events: Vec<EventEnvelope>) -> Flow {
        if self.mode.exactly_once() {
            self.apply_exactly_once(&events).await
        } else {
            self.apply_at_least_once(events).await
        }
    }

    async fn apply_exactly_once(&mut self, events: &[EventEnvelope]) -> Flow {
        let policy = self.settings.policy;
        let mut retry = 0u32;
        let mut store_retry = 0u32;
        loop {
            match self.mode.apply_batch(&self.name, self.saved, events).await {
                Ok(()) => {
                    let last = events.last();
                    self.saved = last.map(|e| e.offset).or(self.saved);
                    self.handled = self.saved;
                    self.publish(events.len(), 0, last);
                    if retry > 0 || store_retry > 0 {
                        self.set_state(ProjectionState::Running);
                    }
                    return Flow::Continue;
                }
                Err(BatchError::Store(PersistError::OffsetConflict { .. })) => {
                    tracing::warn!(projection = %self.name, "the stored offset moved (another instance, or an operator): starting over from it");
                    return Flow::Reload;
                }
                Err(BatchError::Store(err)) if err.is_transient() => {
                    store_retry = store_retry.saturating_add(1);
                    let delay = backoff(self.settings.store_retry_delay, store_retry);
                    self.set_state(ProjectionState::Retrying {
                        error: err.to_string(),
                    });
                    if let Some(control) = self.pause_for(delay).await {
                        return control_flow(control);
                    }
                }
                Err(BatchError::Store(err)) => return Flow::Fail(err),
                Err(BatchError::Handler(err)) => {
                    retry += 1;
                    match policy.delay(retry) {
                        Some(delay) => {
                            tracing::warn!(projection = %self.name, error = %err, retry, "the handler failed; trying the batch again");
                            self.set_state(ProjectionState::Retrying {
                                error: err.to_string(),
                            });
                            if let Some(control) = self.pause_for(delay).await {
                                return control_flow(control);
                            }
                        }
                        None if events.len() > 1 => {
                            // Find the events that fail: each alone, under
                            // the same policy.
                            for one in events.chunks(1) {
                                match Box::pin(self.apply_exactly_once(one)).await {
                                    Flow::Continue => {}
                                    other => return other,
                                }
                            }
                            return Flow::Continue;
                        }
                        None => return self.exhausted(&events[0], err, policy).await,
                    }
                }
            }
        }
    }

    /// The tries on `event` are used up: skip it or stop, as the policy says.
    async fn exhausted(
        &mut self,
        event: &EventEnvelope,
        err: HandlerError,
        policy: ProjectionFailurePolicy,
    ) -> Flow {
        let what = format!(
            "the handler failed on event {} of `{}` ({}, offset {}): {err}",
            event.sequence_id.0, event.persistence_id, event.event_type, event.offset
        );
        match policy.then {
            AfterRetries::Stop => Flow::Fail(PersistError::ProjectionFailed {
                projection: self.name.clone(),
                detail: what,
            }),
            AfterRetries::Skip => {
                tracing::warn!(
                    projection = %self.name,
                    persistence_id = %event.persistence_id,
                    sequence = event.sequence_id.0,
                    offset = %event.offset,
                    error = %err,
                    "skipping an event the handler keeps failing on"
                );
                if self.mode.exactly_once() {
                    match self
                        .store
                        .advance_projection(&self.name, self.saved, event.offset)
                        .await
                    {
                        Ok(()) => self.saved = Some(event.offset),
                        Err(PersistError::OffsetConflict { .. }) => return Flow::Reload,
                        Err(e) => return Flow::Fail(e),
                    }
                }
                self.handled = Some(event.offset);
                self.publish(0, 1, Some(event));
                self.set_state(ProjectionState::Running);
                Flow::Continue
            }
        }
    }

    async fn apply_at_least_once(&mut self, events: Vec<EventEnvelope>) -> Flow {
        let policy = self.settings.policy;
        for event in events {
            let mut retry = 0u32;
            loop {
                // Irrefutable when no exactly-once store is compiled in.
                #[allow(irrefutable_let_patterns)]
                let Mode::AtLeastOnce(handler) = &mut self.mode else {
                    return Flow::Fail(PersistError::ProjectionFailed {
                        projection: self.name.clone(),
                        detail: "not an at-least-once projection".into(),
                    });
                };
                match handler.handle(event.clone()).await {
                    Ok(()) => {
                        self.handled = Some(event.offset);
                        self.unsaved += 1;
                        self.publish(1, 0, Some(&event));
                        if retry > 0 {
                            self.set_state(ProjectionState::Running);
                        }
                        break;
                    }
                    Err(err) => {
                        retry += 1;
                        match policy.delay(retry) {
                            Some(delay) => {
                                tracing::warn!(projection = %self.name, error = %err, retry, "the handler failed; trying the event again");
                                self.set_state(ProjectionState::Retrying {
                                    error: err.to_string(),
                                });
                                if let Some(control) = self.pause_for(delay).await {
                                    return control_flow(control);
                                }
                            }
                            None => match self.exhausted(&event, err, policy).await {
                                Flow::Continue => {
                                    self.unsaved += 1;
                                    break;
                                }
                                other => return other,
                            },
                        }
                    }
                }
            }
            match self.save_due(false).await {
                Flow::Continue => {}
                other => return other,
            }
        }
        Flow::Continue
    }

    /// Saves the at-least-once offset when enough events or time went by
    /// since the last save (or whenever anything is unsaved, with `now`).
    async fn save_due(&mut self, now: bool) -> Flow {
        if self.mode.exactly_once() || self.handled == self.saved || self.unsaved == 0 {
            return Flow::Continue;
        }
        let due = now
            || self.unsaved >= self.settings.save_every
            || self.last_save.elapsed() >= self.settings.save_interval;
        let Some(to) = self.handled.filter(|_| due) else {
            return Flow::Continue;
        };
        match self
            .store
            .advance_projection(&self.name, self.saved, to)
            .await
        {
            Ok(()) => {
                self.saved = Some(to);
                self.unsaved = 0;
                self.last_save = Instant::now();
                self.publish(0, 0, None);
                Flow::Continue
            }
            Err(PersistError::OffsetConflict { .. }) => Flow::Reload,
            // Saved later: the events since are handled again after a crash.
            Err(err) if err.is_transient() => {
                tracing::warn!(projection = %self.name, error = %err, "cannot save the offset now; trying again later");
                Flow::Continue
            }
            Err(err) => Flow::Fail(err),
        }
    }
}

fn control_flow(control: Control) -> Flow {
    match control {
        Control::Stop => Flow::Stop,
        Control::Reload => Flow::Reload,
    }
}
