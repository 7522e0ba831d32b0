//! The writer thread: the one connection that writes, and group commit.
//!
//! Every write of the store (events, deletes, snapshots, states) is a
//! [`Request`] sent to this thread. The thread takes the first request off its
//! queue, drains whatever else is already waiting (up to the group bounds),
//! runs them all in one transaction and commits once: one disk flush for the
//! whole group. Only then is each caller answered, so an acknowledged write is
//! a committed one. A request that fails (a sequence conflict) is undone alone,
//! by a savepoint or by SQLite's statement rollback, and its neighbours commit.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvError, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, params};
use tokio::sync::oneshot;

use super::{checksum, sqlite_error};
use crate::{PersistError, PersistenceId, SequenceId};

/// One event of a journal write, checksummed by the caller.
pub(super) struct Event {
    pub(super) sequence: i64,
    pub(super) event_type: String,
    pub(super) payload: Vec<u8>,
    pub(super) checksum: u32,
}

/// A write, as the writer thread runs it.
pub(super) enum Op {
    /// Events of one id, stored all or none.
    Events {
        pid: PersistenceId,
        events: Vec<Event>,
    },
    DeleteEventsTo {
        pid: PersistenceId,
        to: i64,
    },
    SaveSnapshot {
        pid: PersistenceId,
        sequence: i64,
        payload: Vec<u8>,
        checksum: u32,
    },
    DeleteSnapshotsBefore {
        pid: PersistenceId,
        sequence: i64,
    },
    SaveState {
        pid: PersistenceId,
        payload: Vec<u8>,
        checksum: u32,
    },
    DeleteState {
        pid: PersistenceId,
    },
}

impl Op {
    /// Payload bytes, to bound a group's size.
    fn bytes(&self) -> usize {
        match self {
            Op::Events { events, .. } => events.iter().map(|e| e.payload.len()).sum(),
            Op::SaveSnapshot { payload, .. } | Op::SaveState { payload, .. } => payload.len(),
            _ => 0,
        }
    }
}

/// A write and the caller waiting for its outcome.
pub(super) struct Request {
    pub(super) op: Op,
    pub(super) ack: oneshot::Sender<Result<(), PersistError>>,
}

/// What the writer thread receives.
pub(super) enum Message {
    Write(Request),
    /// Commit what came before, close the connection, answer, and stop.
    Close(oneshot::Sender<()>),
}

/// What the writer has done, shared with the store for [`super::SqliteStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) commits: AtomicU64,
    pub(super) requests: AtomicU64,
}

/// How large one group commit may grow.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupLimits {
    pub(super) max_requests: usize,
    pub(super) max_bytes: usize,
}

const BEGIN: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";
const SAVEPOINT: &str = "SAVEPOINT request";
const RELEASE: &str = "RELEASE request";
const ROLLBACK_TO: &str = "ROLLBACK TO request";

/// Inserts one event. A taken sequence fails on the primary key; a deleted
/// one (used up) is refused before, from the bookkeeping row.
const INSERT_EVENT: &str =
    "INSERT INTO journal (persistence_id, sequence, event_type, payload, checksum)
     VALUES (?1, ?2, ?3, ?4, ?5)";

/// The bookkeeping row of one id.
const READ_META: &str =
    "SELECT highest, deleted_to, checksum FROM journal_meta WHERE persistence_id = ?1";

/// The largest stored sequence of one id: the highest, for an id whose
/// bookkeeping row is missing.
const MAX_SEQUENCE: &str =
    "SELECT coalesce(max(sequence), 0) FROM journal WHERE persistence_id = ?1";

const DELETE_EVENTS: &str = "DELETE FROM journal WHERE persistence_id = ?1 AND sequence <= ?2";

const WRITE_META: &str = "INSERT INTO journal_meta (persistence_id, highest, deleted_to, checksum)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (persistence_id) DO UPDATE SET
         highest = excluded.highest,
         deleted_to = excluded.deleted_to,
         checksum = excluded.checksum";

const SAVE_SNAPSHOT: &str = "INSERT INTO snapshots (persistence_id, sequence, payload, checksum)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (persistence_id, sequence) DO UPDATE SET
         payload = excluded.payload, checksum = excluded.checksum";

const DELETE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE persistence_id = ?1 AND sequence < ?2";

const SAVE_STATE: &str =
    "INSERT INTO states (persistence_id, payload, checksum) VALUES (?1, ?2, ?3)
     ON CONFLICT (persistence_id) DO UPDATE SET
         payload = excluded.payload, checksum = excluded.checksum";

const DELETE_STATE: &str = "DELETE FROM states WHERE persistence_id = ?1";

/// The writer thread's body: runs until the store is closed or dropped,
/// committing every request that reached the queue before that.
pub(super) fn run(
    conn: Connection,
    rx: Receiver<Message>,
    limits: GroupLimits,
    path: Arc<Path>,
    counters: Arc<Counters>,
) {
    let writer = Writer {
        conn,
        path,
        counters,
        checkpoints: Cell::new(Checkpoints {
            large: false,
            small_groups_in_a_row: 0,
        }),
    };
    let mut group: Vec<Request> = Vec::new();
    let close_ack = loop {
        let close = match next_message(&rx) {
            Ok(Message::Write(request)) => {
                let mut bytes = request.op.bytes();
                group.push(request);
                drain(&rx, &mut group, &mut bytes, limits)
            }
            Ok(Message::Close(ack)) => Some(ack),
            // Every handle is gone (the store was dropped): nothing more can arrive.
            Err(_) => break None,
        };
        if !group.is_empty() {
            writer.commit_group(&mut group);
        }
        if close.is_some() {
            break close;
        }
    };
    // Closing the last connection checkpoints the WAL into the database file.
    drop(writer);
    if let Some(ack) = close_ack {
        let _ = ack.send(());
    }
}

/// How long the writer polls for the next request before it sleeps. An actor
/// persisting event after event sends its next write soon after its
/// acknowledgement, but on a virtual machine waking its tokio worker alone
/// often takes longer than 50 us; catching the write without a sleep and
/// wake-up of this thread as well saves as much again. Measured: paired
/// sequential runs against raw SQLite went from 0.56-0.71x at 50 us to
/// 0.69-0.78x at 250 us. The polling yields the CPU between tries.
const SPIN: Duration = Duration::from_micros(250);

/// While a group of several writes is gathered, how long the writer waits for
/// one more before it commits ...
const GATHER_QUIET: Duration = Duration::from_micros(30);
/// ... and how long it gathers at most.
const GATHER_MAX: Duration = Duration::from_micros(1000);

/// The next message: polled for [`SPIN`], then waited for.
fn next_message(rx: &Receiver<Message>) -> Result<Message, RecvError> {
    let deadline = Instant::now() + SPIN;
    loop {
        match rx.try_recv() {
            Ok(message) => return Ok(message),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) if Instant::now() >= deadline => return rx.recv(),
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
}

/// Moves the requests already waiting into `group`, up to the limits. Returns
/// the close request if one was met (the requests before it are in `group`).
fn drain(
    rx: &Receiver<Message>,
    group: &mut Vec<Request>,
    bytes: &mut usize,
    limits: GroupLimits,
) -> Option<oneshot::Sender<()>> {
    let started = Instant::now();
    let mut last_arrival = started;
    while group.len() < limits.max_requests && *bytes < limits.max_bytes {
        match rx.try_recv() {
            Ok(Message::Write(request)) => {
                *bytes += request.op.bytes();
                group.push(request);
                last_arrival = Instant::now();
            }
            Ok(Message::Close(ack)) => return Some(ack),
            Err(TryRecvError::Disconnected) => break,
            // Writes are still streaming in from many callers: a little
            // patience fills the group, and every write saved from the next
            // commit saves that commit's flush.
            Err(TryRecvError::Empty)
                if group.len() > 1
                    && last_arrival.elapsed() < GATHER_QUIET
                    && started.elapsed() < GATHER_MAX =>
            {
                std::thread::yield_now();
            }
            Err(TryRecvError::Empty) => break,
        }
    }
    None
}

/// Why a request failed: its own fault (the others go on), or the
/// transaction's (the group cannot commit).
enum Failure {
    Request(PersistError),
    Transaction(PersistError),
}

struct Writer {
    conn: Connection,
    path: Arc<Path>,
    counters: Arc<Counters>,
    checkpoints: Cell<Checkpoints>,
}

/// When SQLite checkpoints (copies the WAL into the database file and
/// flushes it, inside the commit that crosses the threshold).
///
/// One threshold does not suit both loads, as measured in `BENCHMARKS.md`:
/// - A writer persisting one event per commit wants SQLite's default, 1000
///   pages: the WAL then stays small and is rewritten from its start, over
///   blocks already allocated. With a larger threshold the WAL file grows at
///   every commit, and each flush must also record the new size: a third of
///   the sequential speed was lost to that.
/// - Many actors writing at once dirty one page per actor in every group
///   commit, so at 1000 pages a checkpoint ran inside almost every commit,
///   halving throughput. These want 16384 pages (64 MiB).
///
/// So the threshold follows the group sizes, with some hysteresis.
#[derive(Debug, Clone, Copy)]
struct Checkpoints {
    large: bool,
    small_groups_in_a_row: u32,
}

impl Checkpoints {
    const SMALL_PAGES: i64 = 1000;
    const LARGE_PAGES: i64 = 16384;
    /// A group this large switches to the large threshold ...
    const LARGE_GROUP: usize = 64;
    /// ... and this many groups of under 8 requests in a row switch back.
    const BACK_TO_SMALL: u32 = 256;

    /// The threshold to set after a group of `size` requests, if it changes.
    fn after_group(&mut self, size: usize) -> Option<i64> {
        if size >= Self::LARGE_GROUP {
            self.small_groups_in_a_row = 0;
            if !self.large {
                self.large = true;
                return Some(Self::LARGE_PAGES);
            }
        } else if self.large && size < 8 {
            self.small_groups_in_a_row += 1;
            if self.small_groups_in_a_row >= Self::BACK_TO_SMALL {
                self.large = false;
                self.small_groups_in_a_row = 0;
                return Some(Self::SMALL_PAGES);
            }
        } else {
            self.small_groups_in_a_row = 0;
        }
        None
    }
}

impl Writer {
    /// Runs `group` in one transaction, commits, and answers every caller;
    /// leaves `group` empty.
    fn commit_group(&self, group: &mut Vec<Request>) {
        let size = group.len();
        self.tune_checkpoints(size);
        if let Err(e) = self.exec(BEGIN) {
            let err = sqlite_error(&self.path, "cannot begin a write transaction", &e);
            for request in group.drain(..) {
                let _ = request.ack.send(Err(err.clone()));
            }
            return;
        }
        let mut outcomes: Vec<Result<(), PersistError>> = Vec::with_capacity(size);
        let mut broken: Option<PersistError> = None;
        for request in group.iter() {
            if let Some(err) = &broken {
                outcomes.push(Err(err.clone()));
                continue;
            }
            match self.apply(&request.op) {
                Ok(()) => outcomes.push(Ok(())),
                Err(Failure::Request(err)) => outcomes.push(Err(err)),
                Err(Failure::Transaction(err)) => {
                    outcomes.push(Err(err.clone()));
                    broken = Some(err);
                }
            }
        }
        let commit_error = match broken {
            Some(err) => {
                self.rollback();
                Some(err)
            }
            None => match self.exec(COMMIT) {
                Ok(()) => None,
                Err(e) => {
                    self.rollback();
                    Some(sqlite_error(
                        &self.path,
                        "commit failed; nothing of it was stored",
                        &e,
                    ))
                }
            },
        };
        if commit_error.is_none() {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            self.counters
                .requests
                .fetch_add(size as u64, Ordering::Relaxed);
        }
        if let Some(err) = &commit_error {
            tracing::warn!(path = %self.path.display(), error = %err, requests = size, "group commit failed");
        }
        for (request, outcome) in group.drain(..).zip(outcomes) {
            let outcome = match (&commit_error, outcome) {
                (Some(err), Ok(())) => Err(err.clone()),
                (_, outcome) => outcome,
            };
            let _ = request.ack.send(outcome);
        }
        tracing::trace!(requests = size, "group committed");
    }

    /// Moves the checkpoint threshold with the load (see [`Checkpoints`]).
    fn tune_checkpoints(&self, size: usize) {
        let mut checkpoints = self.checkpoints.get();
        if let Some(pages) = checkpoints.after_group(size) {
            match self.conn.pragma_update(None, "wal_autocheckpoint", pages) {
                Ok(()) => tracing::debug!(pages, "WAL checkpoint threshold changed"),
                // Only speed depends on it: carry on with the old one.
                Err(e) => tracing::warn!(error = %e, "cannot change the WAL checkpoint threshold"),
            }
        }
        self.checkpoints.set(checkpoints);
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.exec("ROLLBACK")
        {
            tracing::error!(path = %self.path.display(), error = %e, "rollback failed");
        }
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Runs one request inside the open transaction. On a request failure its
    /// changes are undone and the transaction stays usable.
    fn apply(&self, op: &Op) -> Result<(), Failure> {
        match op {
            // No savepoint: the bookkeeping is read first, the insert is one
            // statement that SQLite undoes by itself when it fails, and a
            // failure after it fails the whole group.
            Op::Events { pid, events } if events.len() == 1 => self.write_events(pid, events),
            Op::Events { pid, events } => self.in_savepoint(|| self.write_events(pid, events)),
            Op::DeleteEventsTo { pid, to } => self.in_savepoint(|| self.delete_events_to(pid, *to)),
            Op::SaveSnapshot {
                pid,
                sequence,
                payload,
                checksum,
            } => self
                .run(
                    SAVE_SNAPSHOT,
                    params![pid.as_str(), sequence, payload, checksum],
                )
                .map(drop),
            Op::DeleteSnapshotsBefore { pid, sequence } => self
                .run(DELETE_SNAPSHOTS, params![pid.as_str(), sequence])
                .map(drop),
            Op::SaveState {
                pid,
                payload,
                checksum,
            } => self
                .run(SAVE_STATE, params![pid.as_str(), payload, checksum])
                .map(drop),
            Op::DeleteState { pid } => self.run(DELETE_STATE, params![pid.as_str()]).map(drop),
        }
    }

    /// Stores the events of one request and raises the id's highest
    /// sequence in its bookkeeping row. With more than one event it must run
    /// in a savepoint.
    fn write_events(&self, pid: &PersistenceId, events: &[Event]) -> Result<(), Failure> {
        let conflict = |sequence: i64| {
            Failure::Request(PersistError::SequenceConflict {
                persistence_id: pid.clone(),
                sequence_id: SequenceId(sequence),
            })
        };
        let (highest, deleted_to) = self.meta(pid)?;
        if let Some(used) = events.iter().find(|e| e.sequence <= deleted_to) {
            // The sequence was deleted, so it is used up.
            return Err(conflict(used.sequence));
        }
        for event in events {
            let inserted = self.conn.prepare_cached(INSERT_EVENT).and_then(|mut stmt| {
                stmt.execute(params![
                    pid.as_str(),
                    event.sequence,
                    event.event_type,
                    event.payload,
                    event.checksum
                ])
            });
            match inserted {
                Ok(_) => {}
                Err(e) if is_primary_key_violation(&e) => return Err(conflict(event.sequence)),
                Err(e) => return Err(self.statement_failure("cannot write an event", &e)),
            }
        }
        let top = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        if top > highest {
            // The events are in: from here a failure must undo them, and
            // only a failed group can do that without a savepoint.
            self.write_meta(pid, top, deleted_to).map_err(|f| match f {
                Failure::Request(err) | Failure::Transaction(err) => Failure::Transaction(err),
            })?;
        }
        Ok(())
    }

    /// The id's (highest, deleted_to), from its bookkeeping row, checked; for
    /// an id without one, the largest stored sequence and 0.
    fn meta(&self, pid: &PersistenceId) -> Result<(i64, i64), Failure> {
        let row = self.conn.prepare_cached(READ_META).and_then(|mut stmt| {
            let mut rows = stmt.query(params![pid.as_str()])?;
            Ok(match rows.next()? {
                Some(row) => Some((
                    row.get_ref(0)?.as_i64().ok(),
                    row.get_ref(1)?.as_i64().ok(),
                    row.get_ref(2)?.as_i64().ok(),
                )),
                None => None,
            })
        });
        match row {
            Err(e) => Err(self.statement_failure("cannot read the journal bookkeeping", &e)),
            Ok(None) => self
                .conn
                .prepare_cached(MAX_SEQUENCE)
                .and_then(|mut stmt| stmt.query_row(params![pid.as_str()], |r| r.get(0)))
                .map(|max: i64| (max, 0))
                .map_err(|e| self.statement_failure("cannot read the highest sequence", &e)),
            Ok(Some((Some(highest), Some(deleted_to), Some(sum))))
                if sum == i64::from(checksum::bounds(pid.as_str(), highest, deleted_to)) =>
            {
                Ok((highest, deleted_to))
            }
            Ok(Some(_)) => Err(Failure::Request(PersistError::StoreDamaged {
                store: format!("SQLite file {}, table journal_meta", self.path.display()),
                detail: format!(
                    "the journal bookkeeping of `{pid}` fails its checksum; nothing was written"
                ),
            })),
        }
    }

    fn write_meta(
        &self,
        pid: &PersistenceId,
        highest: i64,
        deleted_to: i64,
    ) -> Result<(), Failure> {
        let sum = checksum::bounds(pid.as_str(), highest, deleted_to);
        self.run(WRITE_META, params![pid.as_str(), highest, deleted_to, sum])
            .map(drop)
    }

    fn delete_events_to(&self, pid: &PersistenceId, to: i64) -> Result<(), Failure> {
        if to < 1 {
            return Ok(());
        }
        let (highest, deleted_to) = self.meta(pid)?;
        if highest == 0 {
            return Ok(());
        }
        self.run(DELETE_EVENTS, params![pid.as_str(), to])?;
        // Sequences above the highest were never used: they stay free.
        let deleted_to = deleted_to.max(to.min(highest));
        self.write_meta(pid, highest, deleted_to)
    }

    fn run(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<usize, Failure> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params))
            .map_err(|e| self.statement_failure("a write failed", &e))
    }

    /// Runs `body` under a savepoint: on failure everything it did is undone.
    fn in_savepoint(&self, body: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
        self.exec(SAVEPOINT)
            .map_err(|e| self.statement_failure("cannot open a savepoint", &e))?;
        let result = body();
        if self.conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error or a full
            // disk): the savepoint is gone with it.
            return result;
        }
        let undo = if result.is_err() {
            self.exec(ROLLBACK_TO)
        } else {
            Ok(())
        };
        match undo.and_then(|()| self.exec(RELEASE)) {
            Ok(()) => result,
            Err(e) => Err(Failure::Transaction(sqlite_error(
                &self.path,
                "cannot close a savepoint",
                &e,
            ))),
        }
    }

    /// A statement failed for a reason other than a conflict. If SQLite rolled
    /// the transaction back on its own, the group cannot commit.
    fn statement_failure(&self, what: &str, e: &rusqlite::Error) -> Failure {
        let err = sqlite_error(&self.path, what, e);
        if self.conn.is_autocommit() {
            Failure::Transaction(err)
        } else {
            Failure::Request(err)
        }
    }
}

fn is_primary_key_violation(e: &rusqlite::Error) -> bool {
    match e.sqlite_error() {
        Some(err) => {
            err.code == ErrorCode::ConstraintViolation
                && err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Checkpoints;

    #[test]
    fn the_checkpoint_threshold_follows_the_group_sizes() {
        let mut c = Checkpoints {
            large: false,
            small_groups_in_a_row: 0,
        };
        assert_eq!(c.after_group(1), None, "starts small");
        assert_eq!(c.after_group(500), Some(Checkpoints::LARGE_PAGES));
        assert_eq!(c.after_group(700), None, "already large");
        for _ in 1..Checkpoints::BACK_TO_SMALL {
            assert_eq!(c.after_group(1), None);
        }
        assert_eq!(c.after_group(1), Some(Checkpoints::SMALL_PAGES));
        // A middling group neither switches up nor counts towards switching down.
        assert_eq!(c.after_group(500), Some(Checkpoints::LARGE_PAGES));
        assert_eq!(c.after_group(1), None);
        assert_eq!(c.after_group(20), None);
        assert_eq!(c.small_groups_in_a_row, 0);
    }
}
