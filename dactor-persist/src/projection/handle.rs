//! Managing projections: [`ProjectionHandle`] for a running one,
//! [`Projections`] for any, running or not, through its store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::runner::Control;
use super::store::ProjectionStore;
use super::{ProjectionRecord, ProjectionState, ProjectionStatus};
use crate::PersistError;
use crate::query::{EventFilter, EventQueries, Offset};

/// How often [`ProjectionHandle::wait_for`] looks at the store between
/// status changes.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// The most events [`Projections::lag`] counts.
pub const LAG_COUNT_LIMIT: u64 = 100_000;

/// How far a projection is behind the events of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectionLag {
    /// Events stored after its saved offset (at most
    /// [`LAG_COUNT_LIMIT`]; see `counted_all`).
    pub events: u64,
    /// False when there are more than [`LAG_COUNT_LIMIT`].
    pub counted_all: bool,
    /// How long ago the oldest event it has not handled was written (zero
    /// when it is caught up).
    pub time: Duration,
}

/// Manages the projections of one store, running or not: their records,
/// offsets (clear one to rebuild its read model), pauses, and lag. A
/// running projection sees a change at its next look at the store (its
/// `check_interval`), or at once when made through its
/// [`ProjectionHandle`].
#[derive(Clone)]
pub struct Projections {
    queries: Arc<dyn EventQueries>,
    store: Arc<dyn ProjectionStore>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections").finish_non_exhaustive()
    }
}

impl Projections {
    /// The projections of `store`.
    pub fn new<S: EventQueries + ProjectionStore + 'static>(store: Arc<S>) -> Self {
        Projections {
            queries: store.clone(),
            store,
        }
    }

    pub(crate) fn from_dyn(
        queries: Arc<dyn EventQueries>,
        store: Arc<dyn ProjectionStore>,
    ) -> Self {
        Projections { queries, store }
    }

    /// The names of every projection the store has a record of.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn names(&self) -> Result<Vec<String>, PersistError> {
        self.store.projection_names().await
    }

    /// The stored record of `name`: offset, paused, source.
    ///
    /// # Errors
    ///
    /// The store's errors; a damaged record is
    /// [`PersistError::CorruptEntry`].
    pub async fn record(&self, name: &str) -> Result<ProjectionRecord, PersistError> {
        self.store.load_projection(name).await
    }

    /// Sets the offset of `name`: its next event is the first after
    /// `offset` (to skip events, or go back).
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn set_offset(&self, name: &str, offset: Offset) -> Result<(), PersistError> {
        self.store.set_projection_offset(name, Some(offset)).await
    }

    /// Clears the offset of `name`: it handles every event again from the
    /// start. To rebuild a read model, clear its tables with the offset (an
    /// exactly-once handler can do it when it sees the first event again),
    /// or pause, clear the tables, clear the offset, resume.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn clear_offset(&self, name: &str) -> Result<(), PersistError> {
        self.store.set_projection_offset(name, None).await
    }

    /// Pauses `name`, in the store: it stays paused across restarts.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn pause(&self, name: &str) -> Result<(), PersistError> {
        self.store.set_projection_paused(name, true).await
    }

    /// Resumes `name`.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn resume(&self, name: &str) -> Result<(), PersistError> {
        self.store.set_projection_paused(name, false).await
    }

    /// How far `name` is behind its source (as its last start registered
    /// it).
    ///
    /// # Errors
    ///
    /// [`PersistError::ProjectionFailed`] for a projection that never ran
    /// (no source is known); the store's errors.
    pub async fn lag(&self, name: &str) -> Result<ProjectionLag, PersistError> {
        let record = self.record(name).await?;
        let Some(source) = record.source else {
            return Err(PersistError::ProjectionFailed {
                projection: name.to_owned(),
                detail: "it never ran, so its source is not known".into(),
            });
        };
        self.lag_of(&source, record.offset).await
    }

    /// How far an offset is behind the events `filter` passes.
    pub(crate) async fn lag_of(
        &self,
        filter: &EventFilter,
        offset: Option<Offset>,
    ) -> Result<ProjectionLag, PersistError> {
        let after = offset.unwrap_or(Offset::START);
        let first = self.queries.read_events_after(filter, after, 1).await?;
        let time = first
            .events
            .first()
            .map(|e| {
                SystemTime::now()
                    .duration_since(e.timestamp)
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let events = self
            .queries
            .count_events_after(filter, after, LAG_COUNT_LIMIT + 1)
            .await?;
        Ok(ProjectionLag {
            events: events.min(LAG_COUNT_LIMIT),
            counted_all: events <= LAG_COUNT_LIMIT,
            time,
        })
    }
}

/// A running projection: its status, and what an operator does with it.
/// Dropping the handle leaves the projection running; [`stop`](Self::stop)
/// ends it.
pub struct ProjectionHandle {
    name: String,
    filter: EventFilter,
    projections: Projections,
    status: watch::Receiver<ProjectionStatus>,
    control: mpsc::UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProjectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("name", &self.name)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl ProjectionHandle {
    pub(crate) fn new(
        name: String,
        filter: EventFilter,
        projections: Projections,
        status: watch::Receiver<ProjectionStatus>,
        control: mpsc::UnboundedSender<Control>,
        task: JoinHandle<()>,
    ) -> Self {
        ProjectionHandle {
            name,
            filter,
            projections,
            status,
            control,
            task: Some(task),
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its status now.
    pub fn status(&self) -> ProjectionStatus {
        self.status.borrow().clone()
    }

    /// A receiver of its status, changing as it does.
    pub fn watch(&self) -> watch::Receiver<ProjectionStatus> {
        self.status.clone()
    }

    /// Pauses it, in the store (a pause survives a restart), and returns
    /// once it stopped handling: a batch in flight is finished (or undone)
    /// and what it handled is saved. (An instance of the projection running
    /// in another process sees the pause at its next look at the store.)
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn pause(&self) -> Result<(), PersistError> {
        self.projections.pause(&self.name).await?;
        let _ = self.control.send(Control::Reload);
        let mut status = self.status.clone();
        let _ = status
            .wait_for(|s| {
                !matches!(
                    s.state,
                    ProjectionState::Running
                        | ProjectionState::Starting
                        | ProjectionState::Retrying { .. }
                )
            })
            .await;
        Ok(())
    }

    /// Resumes it.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn resume(&self) -> Result<(), PersistError> {
        self.projections.resume(&self.name).await?;
        let _ = self.control.send(Control::Reload);
        Ok(())
    }

    /// Sets its offset (see [`Projections::set_offset`]); it starts over
    /// from there at once.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn set_offset(&self, offset: Offset) -> Result<(), PersistError> {
        self.projections.set_offset(&self.name, offset).await?;
        let _ = self.control.send(Control::Reload);
        Ok(())
    }

    /// Clears its offset: it handles every event again (see
    /// [`Projections::clear_offset`]).
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn clear_offset(&self) -> Result<(), PersistError> {
        self.projections.clear_offset(&self.name).await?;
        let _ = self.control.send(Control::Reload);
        Ok(())
    }

    /// How far it is behind its source (from its saved offset).
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn lag(&self) -> Result<ProjectionLag, PersistError> {
        let saved = self.status.borrow().saved_offset;
        self.projections.lag_of(&self.filter, saved).await
    }

    /// Waits until every event of its source up to `offset` (an
    /// [`event_head`](EventQueries::event_head), say) is applied and its
    /// offset saved: its saved offset reaches `offset`, or no event of its
    /// source lies between them.
    ///
    /// # Errors
    ///
    /// [`PersistError::ProjectionFailed`] when it stops or fails first; the
    /// store's errors.
    pub async fn wait_for(&self, offset: Offset) -> Result<(), PersistError> {
        let mut status = self.status.clone();
        loop {
            let (saved, ended) = {
                let s = status.borrow_and_update();
                let ended = matches!(
                    s.state,
                    ProjectionState::Stopped | ProjectionState::Failed { .. }
                )
                .then(|| format!("{:?}", s.state));
                (s.saved_offset, ended)
            };
            if saved.is_some_and(|saved| saved >= offset) {
                return Ok(());
            }
            if let Some(state) = ended {
                return Err(PersistError::ProjectionFailed {
                    projection: self.name.clone(),
                    detail: format!("it ended before reaching {offset}: {state}"),
                });
            }
            // Nothing of its source left up to `offset`, and nothing that
            // can still appear there?
            let after = saved.unwrap_or(Offset::START);
            let next = self
                .projections
                .queries
                .read_events_after(&self.filter, after, 1)
                .await?;
            let done = next
                .events
                .first()
                .map_or(next.horizon >= offset, |e| e.offset > offset);
            if done {
                return Ok(());
            }
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        return Err(PersistError::ProjectionFailed {
                            projection: self.name.clone(),
                            detail: format!("it ended before reaching {offset}"),
                        });
                    }
                }
                () = tokio::time::sleep(WAIT_POLL) => {}
            }
        }
    }

    /// Stops it, after it saves what it handled, and returns its last
    /// status.
    pub async fn stop(mut self) -> ProjectionStatus {
        let _ = self.control.send(Control::Stop);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status.borrow().clone()
    }

    /// Waits until it ends by itself (it fails, or another handle-less
    /// path stops it), returning its last status.
    pub async fn join(mut self) -> ProjectionStatus {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status.borrow().clone()
    }
}
