//! Recovery: rebuilding an actor's state from storage, under its
//! [`RecoveryFailurePolicy`].

use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::{
    Backoff, DurableState, EventSourced, JournalStorage, PersistError, PersistenceId,
    RecoveryFailurePolicy, SequenceId, SnapshotStorage, StateStorage,
};

/// Recovers an event-sourced actor from its latest snapshot and the events
/// after it.
///
/// Calls `pre_recovery`; loads the latest snapshot, if any; reads the events
/// after it and decodes every one of them before changing the actor; restores
/// the snapshot and sets the sequence to its sequence; applies the events in
/// order, setting the sequence to each; calls `post_recovery`. Finally the
/// sequence is raised to the highest ever stored, so that the next persist
/// never reuses a sequence, even when events were deleted.
///
/// A snapshot whose `restore_snapshot` answers
/// [`PersistError::SnapshotIncompatible`] is skipped with a warning and the
/// journal is replayed from its start instead; if the events it covered were
/// deleted, that is a recovery failure.
///
/// On failure it follows [`PersistentActor::recovery_failure_policy`](crate::PersistentActor::recovery_failure_policy):
/// `Stop` returns the error; `Retry` tries again (`max_attempts` tries in all,
/// 3 when `None`) after a delay that starts at `initial_delay` and doubles,
/// capped at 30 s; `SkipAndStart` leaves the actor in its initial state, with
/// its sequence at the highest stored (when the journal can tell it), calls
/// `post_recovery` and returns `Ok`.
///
/// # Errors
///
/// The last failure, when the policy gives up: storage errors as the store
/// reported them, and an undecodable event as [`PersistError::CorruptEntry`]
/// naming its sequence. The actor's state is then as it was before the call.
pub async fn recover_event_sourced<A: EventSourced>(
    actor: &mut A,
    journal: &dyn JournalStorage,
    snapshots: &dyn SnapshotStorage,
) -> Result<(), PersistError> {
    let pid = actor.persistence_id();
    let span = tracing::info_span!("recovery", persistence_id = %pid, kind = "event_sourced");
    async {
        let started = Instant::now();
        let policy = actor.recovery_failure_policy();
        let mut retries = RetryState::new(&policy);
        loop {
            actor.pre_recovery();
            let err = match replay(actor, &pid, journal, snapshots).await {
                Ok(stats) => {
                    actor.post_recovery();
                    tracing::info!(
                        events_replayed = stats.events,
                        snapshot_sequence = stats.snapshot.map(|s| s.0),
                        sequence = actor.last_sequence_id().0,
                        duration_us = started.elapsed().as_micros() as u64,
                        "recovered"
                    );
                    return Ok(());
                }
                Err(err) => err,
            };
            match retries.after_failure(&err) {
                Next::RetryAfter(delay) => tokio::time::sleep(delay).await,
                Next::GiveUp => return Err(err),
                Next::Skip => {
                    match journal.read_highest_sequence(&pid).await {
                        Ok(Some(highest)) if highest > actor.last_sequence_id() => {
                            actor.set_last_sequence_id(highest)
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(
                            error = %e,
                            "SkipAndStart: the highest stored sequence is unknown; a write \
                             at a used sequence will be refused by the store"
                        ),
                    }
                    actor.post_recovery();
                    return Ok(());
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Recovers a durable-state actor: `pre_recovery`, loads the stored state and
/// restores it when there is one, `post_recovery`, under the same
/// [`RecoveryFailurePolicy`] handling as [`recover_event_sourced`].
///
/// # Errors
///
/// The last failure, when the policy gives up.
pub async fn recover_durable_state<A: DurableState>(
    actor: &mut A,
    storage: &dyn StateStorage,
) -> Result<(), PersistError> {
    let pid = actor.persistence_id();
    let span = tracing::info_span!("recovery", persistence_id = %pid, kind = "durable_state");
    async {
        let policy = actor.recovery_failure_policy();
        let mut retries = RetryState::new(&policy);
        loop {
            actor.pre_recovery();
            let result = match storage.load_state(&pid).await {
                Ok(Some(payload)) => actor.restore_state(payload).map(|()| true),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            let err = match result {
                Ok(found) => {
                    actor.post_recovery();
                    tracing::info!(state_found = found, "recovered");
                    return Ok(());
                }
                Err(err) => err,
            };
            match retries.after_failure(&err) {
                Next::RetryAfter(delay) => tokio::time::sleep(delay).await,
                Next::GiveUp => return Err(err),
                Next::Skip => {
                    actor.post_recovery();
                    return Ok(());
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// What a failed recovery try leads to.
enum Next {
    RetryAfter(Duration),
    GiveUp,
    Skip,
}

/// The policy of one recovery, with its retry schedule.
enum RetryState {
    Stop,
    Retry(Backoff),
    Skip,
}

impl RetryState {
    fn new(policy: &RecoveryFailurePolicy) -> Self {
        match policy {
            RecoveryFailurePolicy::Stop => Self::Stop,
            RecoveryFailurePolicy::Retry {
                max_attempts,
                initial_delay,
            } => Self::Retry(Backoff::new(*max_attempts, *initial_delay)),
            RecoveryFailurePolicy::SkipAndStart => Self::Skip,
        }
    }

    fn after_failure(&mut self, err: &PersistError) -> Next {
        match self {
            Self::Stop => {
                tracing::error!(error = %err, "recovery failed; policy Stop");
                Next::GiveUp
            }
            Self::Retry(backoff) => match backoff.next_delay() {
                Some(delay) => {
                    tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "recovery failed; retrying");
                    Next::RetryAfter(delay)
                }
                None => {
                    tracing::error!(error = %err, "recovery failed; no retries left");
                    Next::GiveUp
                }
            },
            Self::Skip => {
                tracing::warn!(error = %err, "recovery failed; policy SkipAndStart: starting from the initial state");
                Next::Skip
            }
        }
    }
}

struct ReplayStats {
    events: usize,
    snapshot: Option<SequenceId>,
}

/// One recovery try. The actor is changed only after everything was read and
/// every event decoded.
async fn replay<A: EventSourced>(
    actor: &mut A,
    pid: &PersistenceId,
    journal: &dyn JournalStorage,
    snapshots: &dyn SnapshotStorage,
) -> Result<ReplayStats, PersistError> {
    let snapshot = match snapshots.load_latest_snapshot(pid).await {
        Ok(snapshot) => snapshot.map(Ok),
        // A damaged snapshot is a lost cache entry, not lost state: replay instead.
        Err(PersistError::CorruptSnapshot {
            sequence_id,
            detail,
            ..
        }) => Some(Err((sequence_id, detail))),
        Err(e) => return Err(e),
    };
    let highest = journal
        .read_highest_sequence(pid)
        .await?
        .unwrap_or(SequenceId::ZERO);

    let mut used_snapshot = None;
    let events = match snapshot {
        None => read_decoded(actor, pid, journal, SequenceId(1)).await?,
        Some(Ok(snap)) => {
            let tail = read_decoded(actor, pid, journal, snap.sequence_id.next()).await?;
            match actor.restore_snapshot(snap.payload) {
                Ok(()) => {
                    actor.set_last_sequence_id(snap.sequence_id);
                    used_snapshot = Some(snap.sequence_id);
                    tail
                }
                Err(PersistError::SnapshotIncompatible(detail)) => {
                    replay_without_snapshot(actor, pid, journal, snap.sequence_id, &detail).await?
                }
                Err(e) => return Err(e),
            }
        }
        Some(Err((sequence_id, detail))) => {
            replay_without_snapshot(actor, pid, journal, sequence_id, &detail).await?
        }
    };

    let count = events.len();
    for (seq, event) in &events {
        actor.apply(event);
        actor.set_last_sequence_id(*seq);
    }
    if highest > actor.last_sequence_id() {
        actor.set_last_sequence_id(highest);
    }
    Ok(ReplayStats {
        events: count,
        snapshot: used_snapshot,
    })
}

/// How many events recovery reads from the journal at a time.
const REPLAY_PAGE: usize = 8192;

/// Reads and decodes every event from `from` on, a page at a time, freeing each
/// page's payloads as it goes; the first failure is a
/// [`PersistError::CorruptEntry`] naming its sequence.
async fn read_decoded<A: EventSourced>(
    // `&mut` only so that the future is `Send` without `A: Sync`.
    actor: &mut A,
    pid: &PersistenceId,
    journal: &dyn JournalStorage,
    from: SequenceId,
) -> Result<Vec<(SequenceId, A::Event)>, PersistError> {
    let mut events = Vec::new();
    let mut next = from;
    loop {
        let page = journal.read_events_page(pid, next, REPLAY_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(events);
        };
        next = last.sequence_id.next();
        events.reserve(page.len());
        for entry in page {
            match actor.deserialize_event(&entry.payload) {
                Ok(event) => events.push((entry.sequence_id, event)),
                Err(err @ PersistError::CorruptEntry { .. }) => return Err(err),
                Err(other) => {
                    return Err(PersistError::CorruptEntry {
                        sequence_id: entry.sequence_id,
                        detail: format!(
                            "event `{}` of `{pid}` does not decode: {other}",
                            entry.event_type
                        ),
                    });
                }
            }
        }
    }
}

/// The snapshot at `snapshot_seq` cannot be used: replay the whole journal,
/// provided the events the snapshot covered are all still there.
async fn replay_without_snapshot<A: EventSourced>(
    actor: &mut A,
    pid: &PersistenceId,
    journal: &dyn JournalStorage,
    snapshot_seq: SequenceId,
    detail: &str,
) -> Result<Vec<(SequenceId, A::Event)>, PersistError> {
    tracing::warn!(
        snapshot_sequence = snapshot_seq.0,
        detail = %detail,
        "snapshot cannot be used; replaying the journal from its start"
    );
    let events = read_decoded(actor, pid, journal, SequenceId(1)).await?;
    let covered = events
        .iter()
        .take_while(|(seq, _)| *seq <= snapshot_seq)
        .count();
    if i64::try_from(covered).ok() != Some(snapshot_seq.0) {
        return Err(PersistError::SnapshotIncompatible(format!(
            "the snapshot of `{pid}` at {snapshot_seq:?} cannot be used ({detail}) and the \
             events it covered were deleted, so the state cannot be rebuilt"
        )));
    }
    Ok(events)
}
