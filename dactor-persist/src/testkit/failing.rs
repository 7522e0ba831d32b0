//! A store wrapper that fails, loses answers or slows down on demand, for
//! testing how actors and runtimes behave when storage misbehaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use tokio::sync::watch;

use crate::query::{EventEnvelope, EventFilter, EventPage, EventQueries, Offset, StatePage};
use crate::storage::SharedStoreProvider;
use crate::{
    JournalBounds, JournalEntry, JournalStorage, NewEvent, PersistError, PersistenceId, SequenceId,
    SnapshotEntry, SnapshotStorage, StateStorage,
};

/// One storage operation, for choosing which ones fail and for counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`JournalStorage::write_event`].
    WriteEvent,
    /// [`JournalStorage::write_event_batch`].
    WriteEventBatch,
    /// [`JournalStorage::read_events`] and [`JournalStorage::read_events_page`].
    ReadEvents,
    /// [`JournalStorage::read_highest_sequence`] and [`JournalStorage::read_bounds`].
    ReadHighestSequence,
    /// [`JournalStorage::delete_events_to`].
    DeleteEvents,
    /// [`SnapshotStorage::save_snapshot`].
    SaveSnapshot,
    /// [`SnapshotStorage::load_latest_snapshot`].
    LoadSnapshot,
    /// [`SnapshotStorage::delete_snapshots_before`].
    DeleteSnapshots,
    /// [`StateStorage::save_state`].
    SaveState,
    /// [`StateStorage::load_state`].
    LoadState,
    /// [`StateStorage::delete_state`].
    DeleteState,
    /// Every read of [`EventQueries`](crate::query::EventQueries): pages of
    /// the global order, heads, envelopes, persistence ids, state changes.
    Query,
}

impl Op {
    /// Every operation.
    pub const ALL: &'static [Op] = &[
        Op::WriteEvent,
        Op::WriteEventBatch,
        Op::ReadEvents,
        Op::ReadHighestSequence,
        Op::DeleteEvents,
        Op::SaveSnapshot,
        Op::LoadSnapshot,
        Op::DeleteSnapshots,
        Op::SaveState,
        Op::LoadState,
        Op::DeleteState,
        Op::Query,
    ];

    /// The operations that change the store.
    pub const WRITES: &'static [Op] = &[
        Op::WriteEvent,
        Op::WriteEventBatch,
        Op::DeleteEvents,
        Op::SaveSnapshot,
        Op::DeleteSnapshots,
        Op::SaveState,
        Op::DeleteState,
    ];

    /// The operations that only read.
    pub const READS: &'static [Op] = &[
        Op::ReadEvents,
        Op::ReadHighestSequence,
        Op::LoadSnapshot,
        Op::LoadState,
        Op::Query,
    ];
}

#[derive(Debug)]
struct Plan {
    /// Operations the faults apply to.
    targets: Vec<Op>,
    /// Calls to let through before failing (for `fail_after`).
    pass_first: u64,
    /// Calls to fail; `u64::MAX` means until healed.
    fail_count: u64,
    /// Calls whose write is carried out but whose answer is an error.
    lose_answers: u64,
    error: PersistError,
    delay: Option<Duration>,
    calls: HashMap<Op, u64>,
    failed: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            targets: Op::ALL.to_vec(),
            pass_first: 0,
            fail_count: 0,
            lose_answers: 0,
            error: PersistError::StorageUnavailable("injected failure (testkit)".into()),
            delay: None,
            calls: HashMap::new(),
            failed: 0,
        }
    }
}

/// What to do with one call.
enum Verdict {
    Pass,
    Fail(PersistError),
    /// Carry it out, then answer with this error.
    LoseAnswer(PersistError),
}

/// Wraps a store (anything implementing the storage traits) and injects
/// faults on demand: fail the next N calls, fail after N calls, carry out a
/// write but lose its answer, delay every call. Faults apply to the
/// operations chosen with [`only`](FailingStorage::only) (all by default).
/// Delays use tokio's clock, so tests on a paused clock stay instant.
///
/// # Examples
///
/// ```
/// use dactor_persist::testkit::{FailingStorage, Op};
/// use dactor_persist::*;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = FailingStorage::new(InMemoryStorage::new());
/// let id = PersistenceId::new("T", "1");
/// store.only(Op::WRITES).fail_next(1);
/// assert!(store.write_event(&id, SequenceId(1), "E", b"x").await.is_err());
/// store.write_event(&id, SequenceId(1), "E", b"x").await.unwrap();
/// assert_eq!(store.calls(Op::WriteEvent), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct FailingStorage<S> {
    inner: Arc<S>,
    plan: Mutex<Plan>,
}

impl<S> FailingStorage<S> {
    /// Wraps `inner`; no faults until asked.
    pub fn new(inner: S) -> Self {
        Self::wrap(Arc::new(inner))
    }

    /// Wraps a store shared with other code.
    pub fn wrap(inner: Arc<S>) -> Self {
        FailingStorage {
            inner,
            plan: Mutex::new(Plan::default()),
        }
    }

    /// The wrapped store, to inspect or seed it without faults.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the faults to these operations only.
    pub fn only(&self, ops: &[Op]) -> &Self {
        self.plan().targets = ops.to_vec();
        self
    }

    /// Fails the next `n` calls (of the chosen operations).
    pub fn fail_next(&self, n: u64) -> &Self {
        let mut p = self.plan();
        p.pass_first = 0;
        p.fail_count = n;
        self
    }

    /// Lets `n` more calls through, then fails every call until
    /// [`heal`](FailingStorage::heal).
    pub fn fail_after(&self, n: u64) -> &Self {
        let mut p = self.plan();
        p.pass_first = n;
        p.fail_count = u64::MAX;
        self
    }

    /// Fails every call until [`heal`](FailingStorage::heal).
    pub fn fail_always(&self) -> &Self {
        self.fail_after(0)
    }

    /// Carries out the next `n` calls but answers each with the error, as when
    /// a connection drops after the commit: the caller cannot tell.
    pub fn lose_next_answers(&self, n: u64) -> &Self {
        self.plan().lose_answers = n;
        self
    }

    /// The error injected (default: [`PersistError::StorageUnavailable`]).
    pub fn with_error(&self, error: PersistError) -> &Self {
        self.plan().error = error;
        self
    }

    /// Waits `delay` (on tokio's clock) before every call; `None` for none.
    pub fn delay(&self, delay: Option<Duration>) -> &Self {
        self.plan().delay = delay;
        self
    }

    /// Removes every fault and delay (counts are kept).
    pub fn heal(&self) -> &Self {
        let mut p = self.plan();
        p.pass_first = 0;
        p.fail_count = 0;
        p.lose_answers = 0;
        p.delay = None;
        self
    }

    /// How many calls of `op` were made, failed or not.
    pub fn calls(&self, op: Op) -> u64 {
        self.plan().calls.get(&op).copied().unwrap_or(0)
    }

    /// How many calls were failed (or had their answer lost) in all.
    pub fn failures(&self) -> u64 {
        self.plan().failed
    }

    async fn enter(&self, op: Op) -> Verdict {
        let (delay, verdict) = {
            let mut p = self.plan();
            *p.calls.entry(op).or_default() += 1;
            let verdict = if !p.targets.contains(&op) {
                Verdict::Pass
            } else if p.lose_answers > 0 {
                p.lose_answers -= 1;
                p.failed += 1;
                Verdict::LoseAnswer(p.error.clone())
            } else if p.pass_first > 0 {
                p.pass_first -= 1;
                Verdict::Pass
            } else if p.fail_count > 0 {
                if p.fail_count != u64::MAX {
                    p.fail_count -= 1;
                }
                p.failed += 1;
                Verdict::Fail(p.error.clone())
            } else {
                Verdict::Pass
            };
            (p.delay, verdict)
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        verdict
    }

    /// A provider handing out this store for every id.
    pub fn provider(self: &Arc<Self>) -> FailingStorageProvider<S> {
        SharedStoreProvider::from_storage(self.clone())
    }
}

/// Runs `$call` on the inner store under the plan for `$op`.
macro_rules! guarded {
    ($self:ident, $op:expr, $call:expr) => {
        match $self.enter($op).await {
            Verdict::Pass => $call.await,
            Verdict::Fail(err) => Err(err),
            Verdict::LoseAnswer(err) => {
                let _ = $call.await;
                Err(err)
            }
        }
    };
}

#[async_trait]
impl<S: JournalStorage> JournalStorage for FailingStorage<S> {
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::WriteEvent,
            self.inner
                .write_event(persistence_id, sequence_id, event_type, payload)
        )
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::WriteEventBatch,
            self.inner.write_event_batch(persistence_id, entries)
        )
    }

    async fn write_events(
        &self,
        persistence_id: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::WriteEventBatch,
            self.inner.write_events(persistence_id, events)
        )
    }

    async fn read_events(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        guarded!(
            self,
            Op::ReadEvents,
            self.inner.read_events(persistence_id, from_sequence)
        )
    }

    async fn read_events_page(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        guarded!(
            self,
            Op::ReadEvents,
            self.inner
                .read_events_page(persistence_id, from_sequence, max)
        )
    }

    async fn read_highest_sequence(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError> {
        guarded!(
            self,
            Op::ReadHighestSequence,
            self.inner.read_highest_sequence(persistence_id)
        )
    }

    async fn read_bounds(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<JournalBounds, PersistError> {
        guarded!(
            self,
            Op::ReadHighestSequence,
            self.inner.read_bounds(persistence_id)
        )
    }

    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::DeleteEvents,
            self.inner.delete_events_to(persistence_id, to_sequence)
        )
    }
}

#[async_trait]
impl<S: SnapshotStorage> SnapshotStorage for FailingStorage<S> {
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::SaveSnapshot,
            self.inner
                .save_snapshot(persistence_id, sequence_id, payload)
        )
    }

    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        guarded!(
            self,
            Op::LoadSnapshot,
            self.inner.load_latest_snapshot(persistence_id)
        )
    }

    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::DeleteSnapshots,
            self.inner
                .delete_snapshots_before(persistence_id, sequence_id)
        )
    }
}

#[async_trait]
impl<S: StateStorage> StateStorage for FailingStorage<S> {
    async fn save_state(
        &self,
        persistence_id: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::SaveState,
            self.inner.save_state(persistence_id, payload)
        )
    }

    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        guarded!(self, Op::LoadState, self.inner.load_state(persistence_id))
    }

    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError> {
        guarded!(
            self,
            Op::DeleteState,
            self.inner.delete_state(persistence_id)
        )
    }
}

/// A [`StorageProvider`](crate::StorageProvider) handing out one [`FailingStorage`] for every id.
pub type FailingStorageProvider<S> = SharedStoreProvider<FailingStorage<S>>;

#[async_trait]
impl<S: EventQueries> EventQueries for FailingStorage<S> {
    async fn read_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError> {
        guarded!(
            self,
            Op::Query,
            self.inner.read_events_after(filter, after, max)
        )
    }

    async fn event_head(&self) -> Result<Offset, PersistError> {
        guarded!(self, Op::Query, self.inner.event_head())
    }

    async fn read_envelopes(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError> {
        guarded!(
            self,
            Op::Query,
            self.inner.read_envelopes(persistence_id, from, max)
        )
    }

    async fn read_persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError> {
        guarded!(
            self,
            Op::Query,
            self.inner.read_persistence_ids(entity_type, after, max)
        )
    }

    async fn read_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError> {
        guarded!(
            self,
            Op::Query,
            self.inner.read_state_changes(entity_type, after, max)
        )
    }

    async fn state_head(&self) -> Result<Offset, PersistError> {
        guarded!(self, Op::Query, self.inner.state_head())
    }

    fn watch_commits(&self) -> watch::Receiver<u64> {
        self.inner.watch_commits()
    }

    fn poll_interval(&self) -> Duration {
        self.inner.poll_interval()
    }
}
