//! Recovery: rebuilding an actor's state from storage, under its
//! [`RecoveryFailurePolicy`].

use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::storage::complete::read_complete;
use crate::{
    Backoff, DurableState, EventSourced, JournalBounds, JournalStorage, PersistError,
    PersistenceId, RecoveryFailurePolicy, SequenceId, SnapshotStorage, StateStorage,
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
/// **Nothing read is trusted.** The events applied must be exactly those the
/// journal's [`read_bounds`](JournalStorage::read_bounds) promise: every
/// sequence from the snapshot's + 1 (or, without a snapshot, from the first
/// one after what [`delete_events_to`](JournalStorage::delete_events_to)
/// removed) up to the highest, in order, none twice. A hole, a repeat, an
/// event out of order or above the highest is a [`PersistError::CorruptEntry`]
/// naming the persistence id and the first sequence that is missing or out of
/// place, never a state that skipped events. So is a journal whose events
/// were deleted past the latest snapshot, and, for an actor whose
/// [`SnapshotConfig::delete_events_on_snapshot`](crate::SnapshotConfig) is
/// set, deleted events with no snapshot at all (the snapshot that covered
/// them was lost).
///
/// A snapshot whose `restore_snapshot` answers
/// [`PersistError::SnapshotIncompatible`] or [`PersistError::CorruptSnapshot`]
/// (so, one restore must leave the actor unchanged) is skipped with a warning and the
/// journal is replayed from its start instead; if the events it covered were
/// deleted, that is a recovery failure.
///
/// On failure it follows [`PersistentActor::recovery_failure_policy`](crate::PersistentActor::recovery_failure_policy):
/// `Stop` returns the error; `Retry` tries again (`max_attempts` tries in all,
/// 3 when `None`) after a delay that starts at `initial_delay` and doubles,
/// capped at 30 s, but only after errors that may pass
/// ([`PersistError::is_transient`]: damaged data reads back the same way, so
/// it gives up at once); `SkipAndStart` leaves the actor in its initial state, with
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
/// [`RecoveryFailurePolicy`] handling as [`recover_event_sourced`], but for
/// `SkipAndStart`.
///
/// **`SkipAndStart` never throws a stored state away.** A durable state has
/// no journal: starting from the initial state would overwrite the stored
/// one at the next save. So when a stored state does not restore (another
/// layout, damage), `SkipAndStart` first sets it aside: its bytes are saved,
/// unchanged, under the persistence id [`set_aside_id`] (`"<id>~unreadable"`),
/// where `load_state` reads them back for a repair; only then does the actor
/// start from its initial state, with a warning naming both ids. When the
/// state cannot be set aside (the store is down, or an earlier, different
/// unreadable state already waits there), or when the state could not even
/// be loaded, there is nothing safe to skip to, and the error is returned as
/// under `Stop`.
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
            let (result, unreadable) = match storage.load_state(&pid).await {
                Ok(Some(payload)) => {
                    let kept = payload.clone();
                    match actor.restore_state(payload) {
                        Ok(()) => (Ok(true), None),
                        Err(e) => (Err(e), Some(kept)),
                    }
                }
                Ok(None) => (Ok(false), None),
                Err(e) => (Err(e), None),
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
                    let Some(payload) = unreadable else {
                        tracing::error!(
                            error = %err,
                            "SkipAndStart cannot apply: the stored state could not be loaded, \
                             and starting from the initial state would overwrite it at the next save"
                        );
                        return Err(err);
                    };
                    set_aside(storage, &pid, payload, &err).await?;
                    actor.post_recovery();
                    return Ok(());
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// The persistence id under which `SkipAndStart` keeps a durable state that
/// did not restore: `"<id>~unreadable"`.
pub fn set_aside_id(pid: &PersistenceId) -> PersistenceId {
    PersistenceId(format!("{pid}~unreadable"))
}

/// Saves an unreadable state under [`set_aside_id`], unless a different one
/// already waits there.
async fn set_aside(
    storage: &dyn StateStorage,
    pid: &PersistenceId,
    payload: Vec<u8>,
    why: &PersistError,
) -> Result<(), PersistError> {
    let aside = set_aside_id(pid);
    let refuse = |detail: String| {
        tracing::error!(error = %why, "{detail}");
        Err(PersistError::InvalidInput {
            persistence_id: pid.clone(),
            detail: format!("{detail}; the state did not restore: {why}"),
        })
    };
    match storage.load_state(&aside).await {
        Ok(Some(earlier)) if earlier != payload => {
            return refuse(format!(
                "SkipAndStart cannot set the unreadable state of `{pid}` aside: `{aside}` already \
                 holds another unreadable state, which would be lost; repair or delete it first"
            ));
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            if let Err(e) = storage.save_state(&aside, &payload).await {
                return refuse(format!(
                    "SkipAndStart cannot set the unreadable state of `{pid}` aside under \
                     `{aside}` ({e}), and starting from the initial state would overwrite it"
                ));
            }
        }
        Err(e) => {
            return refuse(format!(
                "SkipAndStart cannot check `{aside}` before setting the unreadable state of \
                 `{pid}` aside ({e})"
            ));
        }
    }
    tracing::warn!(
        error = %why,
        set_aside_as = %aside,
        "the stored state did not restore; policy SkipAndStart: it is kept, unchanged, under \
         the set-aside id, and the actor starts from its initial state"
    );
    Ok(())
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
            Self::Retry(_) if !err.is_transient() => {
                tracing::error!(error = %err, "recovery failed and trying again cannot help (the data read back is damaged or refused); policy Retry gives up");
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

/// One recovery try. The actor is changed only after everything was read,
/// proved complete, and every event decoded.
async fn replay<A: EventSourced>(
    actor: &mut A,
    pid: &PersistenceId,
    journal: &dyn JournalStorage,
    snapshots: &dyn SnapshotStorage,
) -> Result<ReplayStats, PersistError> {
    let snapshot = match snapshots.load_latest_snapshot(pid).await {
        Ok(Some(snap)) if !snap.sequence_id.is_storable() => Some(Err((
            snap.sequence_id,
            format!(
                "it is stored at {:?}, outside the sequences a snapshot can have",
                snap.sequence_id
            ),
        ))),
        Ok(snapshot) => snapshot.map(Ok),
        // A damaged snapshot is a lost cache entry, not lost state: replay instead.
        Err(PersistError::CorruptSnapshot {
            sequence_id,
            detail,
            ..
        }) => Some(Err((sequence_id, detail))),
        Err(e) => return Err(e),
    };
    let bounds = checked_bounds(pid, journal.read_bounds(pid).await?)?;

    let mut used_snapshot = None;
    let events = match snapshot {
        None => {
            if bounds.deleted_to > SequenceId::ZERO && deletes_after_snapshots(actor) {
                return Err(PersistError::incomplete_journal(
                    pid,
                    SequenceId(1),
                    format_args!(
                        "events up to {} were deleted, which this actor does only once a \
                         snapshot covers them, but no snapshot is stored",
                        bounds.deleted_to.0
                    ),
                ));
            }
            read_decoded(actor, pid, journal, bounds.first_retained(), bounds.highest).await?
        }
        Some(Ok(snap)) => {
            if snap.sequence_id < bounds.deleted_to {
                return Err(PersistError::incomplete_journal(
                    pid,
                    snap.sequence_id.next(),
                    format_args!(
                        "events up to {} were deleted but the latest snapshot is at {}",
                        bounds.deleted_to.0, snap.sequence_id.0
                    ),
                ));
            }
            if snap.sequence_id > bounds.highest {
                tracing::warn!(
                    snapshot_sequence = snap.sequence_id.0,
                    highest = bounds.highest.0,
                    "the latest snapshot is newer than the journal's highest sequence; using it"
                );
            }
            let tail =
                read_decoded(actor, pid, journal, snap.sequence_id.next(), bounds.highest).await?;
            match actor.restore_snapshot(snap.payload) {
                Ok(()) => {
                    actor.set_last_sequence_id(snap.sequence_id);
                    used_snapshot = Some(snap.sequence_id);
                    tail
                }
                // Written for another layout, or damaged where the store's
                // checksum could not see it: replay instead.
                Err(
                    PersistError::SnapshotIncompatible(detail)
                    | PersistError::CorruptSnapshot { detail, .. },
                ) => {
                    replay_without_snapshot(actor, pid, journal, bounds, snap.sequence_id, &detail)
                        .await?
                }
                Err(e) => return Err(e),
            }
        }
        Some(Err((sequence_id, detail))) => {
            replay_without_snapshot(actor, pid, journal, bounds, sequence_id, &detail).await?
        }
    };

    let count = events.len();
    for (seq, event) in &events {
        actor.apply(event);
        actor.set_last_sequence_id(*seq);
    }
    if bounds.highest > actor.last_sequence_id() {
        actor.set_last_sequence_id(bounds.highest);
    }
    Ok(ReplayStats {
        events: count,
        snapshot: used_snapshot,
    })
}

/// The store's bounds, refused when they cannot be true.
fn checked_bounds(
    pid: &PersistenceId,
    bounds: JournalBounds,
) -> Result<JournalBounds, PersistError> {
    let JournalBounds {
        deleted_to,
        highest,
    } = bounds;
    if deleted_to.0 < 0 || highest.0 < 0 || deleted_to > highest || highest > SequenceId::LAST {
        return Err(PersistError::CorruptEntry {
            sequence_id: highest,
            detail: format!(
                "the journal bookkeeping of `{pid}` is damaged: it says events up to {} were \
                 deleted and the highest sequence is {}",
                deleted_to.0, highest.0
            ),
        });
    }
    Ok(bounds)
}

/// True when the actor deletes events only once a snapshot covers them, so
/// that deleted events with no snapshot mean a lost snapshot.
fn deletes_after_snapshots<A: EventSourced>(actor: &A) -> bool {
    actor
        .snapshot_config()
        .is_some_and(|c| c.delete_events_on_snapshot)
}

/// The most events recovery asks the journal for in one read. Events are
/// decoded as they are read ([`JournalStorage::read_events_each`]), so this
/// bounds one query's length, not memory; a store that collects pages holds
/// at most [`EACH_PAGE`](crate::EACH_PAGE) at once.
const REPLAY_PAGE: usize = 65_536;

/// Reads and decodes every event `from ..= to` as the journal reads it,
/// holding no payloads, and proves them complete (see
/// [`read_complete`]); the first failure is a
/// [`PersistError::CorruptEntry`] naming its sequence.
async fn read_decoded<A: EventSourced>(
    // `&mut` only so that the future is `Send` without `A: Sync`.
    actor: &mut A,
    pid: &PersistenceId,
    journal: &dyn JournalStorage,
    from: SequenceId,
    to: SequenceId,
) -> Result<Vec<(SequenceId, A::Event)>, PersistError> {
    // Room for what the bounds promise, up to one read's worth: the figure
    // comes from storage, so damaged bounds must not reserve much.
    let promised = to.0.saturating_sub(from.0).saturating_add(1);
    let mut events = Vec::with_capacity(usize::try_from(promised).unwrap_or(0).min(REPLAY_PAGE));
    let out = &mut events;
    let mut decoded = Vec::with_capacity(1);
    // Moved in as `&mut`: a `&A` would make the future `Send` only for `A: Sync`.
    read_complete(
        journal,
        pid,
        from,
        to,
        REPLAY_PAGE,
        move |entry| match actor.deserialize_entry_into(entry, &mut decoded) {
            Ok(()) => {
                out.extend(decoded.drain(..).map(|e| (entry.sequence_id, e)));
                Ok(())
            }
            Err(err @ PersistError::CorruptEntry { .. }) => Err(err),
            Err(PersistError::IncompatibleEvent { detail, .. }) => {
                Err(PersistError::IncompatibleEvent {
                    sequence_id: entry.sequence_id,
                    detail: format!("event `{}` of `{pid}`: {detail}", entry.event_type),
                })
            }
            Err(other) => Err(PersistError::CorruptEntry {
                sequence_id: entry.sequence_id,
                detail: format!(
                    "event `{}` of `{pid}` does not decode: {other}",
                    entry.event_type
                ),
            }),
        },
    )
    .await?;
    Ok(events)
}

/// The snapshot at `snapshot_seq` cannot be used: replay the whole journal,
/// provided none of its events were deleted.
async fn replay_without_snapshot<A: EventSourced>(
    actor: &mut A,
    pid: &PersistenceId,
    journal: &dyn JournalStorage,
    bounds: JournalBounds,
    snapshot_seq: SequenceId,
    detail: &str,
) -> Result<Vec<(SequenceId, A::Event)>, PersistError> {
    tracing::warn!(
        snapshot_sequence = snapshot_seq.0,
        detail = %detail,
        "snapshot cannot be used; replaying the journal from its start"
    );
    if bounds.deleted_to > SequenceId::ZERO {
        return Err(PersistError::SnapshotIncompatible(format!(
            "the snapshot of `{pid}` at {snapshot_seq:?} cannot be used ({detail}) and the \
             events up to {} were deleted, so the state cannot be rebuilt",
            bounds.deleted_to.0
        )));
    }
    read_decoded(actor, pid, journal, SequenceId(1), bounds.highest).await
}
