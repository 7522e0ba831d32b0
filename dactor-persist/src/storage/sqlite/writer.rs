//! The writer thread: the one connection that writes, and group commit.
//!
//! Every write of the store (events, deletes, snapshots, states) is a
//! [`Request`] sent to this thread. The thread takes the first request off its
//! queue, drains whatever else is already waiting (up to the group bounds),
//! runs them all in one transaction and commits once: one disk flush for the
//! whole group. Only then is each caller answered, so an acknowledged write is
//! a committed one. A request that fails (a sequence conflict) is undone alone,
//! by a savepoint or by SQLite's statement rollback, and its neighbours commit.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvError, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, params};
use tokio::sync::oneshot;

use super::streams::{self, Lookup, Stream};
use super::{extras, sqlite_error};
use crate::query::to_micros;
use crate::{PersistError, PersistenceId, SequenceId};

/// One event of a journal write, checksummed by the caller.
pub(super) struct Event {
    pub(super) sequence: i64,
    pub(super) event_type: String,
    pub(super) payload: Vec<u8>,
    pub(super) tags: Vec<String>,
    /// The stored forms of the tags and the metadata (`None`: none).
    pub(super) tags_blob: Option<Vec<u8>>,
    pub(super) metadata: Option<Vec<u8>>,
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
    /// Work of the store's own (a projection's batch and its offset), run
    /// under a savepoint in a group of its own: what it writes commits, or
    /// rolls back, alone.
    Run(std::sync::Mutex<Option<Job>>),
}

/// Work run on the writer's connection inside its transaction.
pub(super) type Job = Box<dyn FnOnce(&Connection, &Path) -> Result<(), PersistError> + Send>;

impl Op {
    /// Payload bytes, to bound a group's size.
    fn bytes(&self) -> usize {
        match self {
            Op::Events { events, .. } => events.iter().map(|e| e.payload.len()).sum(),
            Op::SaveSnapshot { payload, .. } | Op::SaveState { payload, .. } => payload.len(),
            _ => 0,
        }
    }

    /// Whether the write commits in a group of its own.
    fn alone(&self) -> bool {
        matches!(self, Op::Run(_))
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

/// Appends one event to the log. A taken sequence fails on the unique
/// index (stream, sequence); a deleted one (used up) is refused before, from
/// the stream's bookkeeping.
const INSERT_EVENT: &str = "INSERT INTO events
     (stream, sequence, event_type, payload, written_at, tags, metadata, checksum)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const INSERT_TAG: &str = "INSERT INTO event_tags (tag, position) VALUES (?1, ?2)";

const NEW_STREAM: &str = "INSERT INTO streams
     (id, persistence_id, entity_type, highest, deleted_to, checksum)
     VALUES (?1, ?2, ?3, 0, 0, ?4)";

const UPDATE_STREAM: &str =
    "UPDATE streams SET highest = ?2, deleted_to = ?3, checksum = ?4 WHERE id = ?1";

/// The tagged events a delete removes, to remove their tags.
const TAGGED_TO: &str = "SELECT position, tags FROM events
     WHERE stream = ?1 AND sequence <= ?2 AND tags IS NOT NULL";

const DELETE_TAG: &str = "DELETE FROM event_tags WHERE tag = ?1 AND position = ?2";

const DELETE_EVENTS: &str = "DELETE FROM events WHERE stream = ?1 AND sequence <= ?2";

/// The next place in the order of state saves.
const NEXT_STATE_POSITION: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'state_position' RETURNING value";

const SAVE_SNAPSHOT: &str = "INSERT INTO snapshots (persistence_id, sequence, payload, checksum)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (persistence_id, sequence) DO UPDATE SET
         payload = excluded.payload, checksum = excluded.checksum";

const DELETE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE persistence_id = ?1 AND sequence < ?2";

const SAVE_STATE: &str = "INSERT INTO states
     (persistence_id, payload, checksum, position, written_at) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (persistence_id) DO UPDATE SET
         payload = excluded.payload, checksum = excluded.checksum,
         position = excluded.position, written_at = excluded.written_at";

const DELETE_STATE: &str = "DELETE FROM states WHERE persistence_id = ?1";

/// The writer thread's body: runs until the store is closed or dropped,
/// committing every request that reached the queue before that.
pub(super) fn run(
    conn: Connection,
    rx: Receiver<Message>,
    limits: GroupLimits,
    path: Arc<Path>,
    counters: Arc<Counters>,
    commits: Arc<tokio::sync::watch::Sender<u64>>,
) {
    let writer = Writer {
        conn,
        path,
        counters,
        checkpoints: Cell::new(Checkpoints {
            large: false,
            small_groups_in_a_row: 0,
        }),
        now: Cell::new(0),
        commits,
        streams: RefCell::new(HashMap::new()),
        data_version: Cell::new(None),
    };
    let mut group: Vec<Request> = Vec::new();
    // A write met while draining that must commit alone: the next group.
    let mut carried: Option<Request> = None;
    let close_ack = loop {
        let next = match carried.take() {
            Some(request) => Ok(Message::Write(request)),
            None => next_message(&rx),
        };
        let close = match next {
            Ok(Message::Write(request)) if request.op.alone() => {
                group.push(request);
                None
            }
            Ok(Message::Write(request)) => {
                let mut bytes = request.op.bytes();
                group.push(request);
                let (close, alone) = drain(&rx, &mut group, &mut bytes, limits);
                carried = alone;
                close
            }
            Ok(Message::Close(ack)) => Some(ack),
            // Every handle is gone (the store was dropped): nothing more can arrive.
            Err(_) => break None,
        };
        if !group.is_empty() {
            writer.commit_group(&mut group);
        }
        if close.is_some() {
            if let Some(request) = carried.take() {
                group.push(request);
                writer.commit_group(&mut group);
            }
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
/// the close request if one was met (the requests before it are in `group`),
/// and a request that must commit alone, if one ended the draining.
fn drain(
    rx: &Receiver<Message>,
    group: &mut Vec<Request>,
    bytes: &mut usize,
    limits: GroupLimits,
) -> (Option<oneshot::Sender<()>>, Option<Request>) {
    let started = Instant::now();
    let mut last_arrival = started;
    while group.len() < limits.max_requests && *bytes < limits.max_bytes {
        match rx.try_recv() {
            Ok(Message::Write(request)) if request.op.alone() => return (None, Some(request)),
            Ok(Message::Write(request)) => {
                *bytes += request.op.bytes();
                group.push(request);
                last_arrival = Instant::now();
            }
            Ok(Message::Close(ack)) => return (Some(ack), None),
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
    (None, None)
}

/// Why a request failed: its own fault (the others go on), or the
/// transaction's (the group cannot commit).
enum Failure {
    Request(PersistError),
    Transaction(PersistError),
}

impl Failure {
    /// A failure after part of a request was written without a savepoint:
    /// only failing the group undoes it.
    fn into_transaction(self) -> Failure {
        match self {
            Failure::Request(err) | Failure::Transaction(err) => Failure::Transaction(err),
        }
    }
}

struct Writer {
    conn: Connection,
    path: Arc<Path>,
    counters: Arc<Counters>,
    checkpoints: Cell<Checkpoints>,
    /// The write time of the group being committed (microseconds).
    now: Cell<i64>,
    /// Tells live queries of this process that a group committed.
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// The streams this writer has read or written, as they stand in the
    /// file: saves a lookup per write. Trusted only while no other
    /// connection has committed (SQLite's `data_version` says so), and
    /// forgotten with every rolled-back write.
    streams: RefCell<HashMap<PersistenceId, Stream>>,
    data_version: Cell<Option<i64>>,
}

/// The most streams the writer remembers before it starts afresh.
const CACHED_STREAMS: usize = 100_000;

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
        self.now.set(to_micros(std::time::SystemTime::now()));
        if let Err(e) = self.exec(BEGIN) {
            let err = sqlite_error(&self.path, "cannot begin a write transaction", &e);
            for request in group.drain(..) {
                let _ = request.ack.send(Err(err.clone()));
            }
            return;
        }
        self.forget_streams_if_others_wrote();
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
            self.commits.send_modify(|n| *n = n.wrapping_add(1));
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

    /// Forgets the remembered streams when another connection committed
    /// since this writer's last look (a second process on the file).
    fn forget_streams_if_others_wrote(&self) {
        let version = self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .ok();
        if version.is_none() || version != self.data_version.get() {
            self.streams.borrow_mut().clear();
        }
        self.data_version.set(version);
    }

    /// The stream of `pid`: remembered, or looked up.
    fn stream(&self, pid: &PersistenceId) -> Result<Lookup, PersistError> {
        if let Some(stream) = self.streams.borrow().get(pid) {
            return Ok(Lookup::Found(*stream));
        }
        let found = streams::lookup(&self.conn, &self.path, pid)?;
        if let Lookup::Found(stream) = found {
            self.remember(pid, stream);
        }
        Ok(found)
    }

    fn remember(&self, pid: &PersistenceId, stream: Stream) {
        let mut cache = self.streams.borrow_mut();
        if cache.len() >= CACHED_STREAMS && !cache.contains_key(pid) {
            cache.clear();
        }
        cache.insert(pid.clone(), stream);
    }

    fn forget(&self, pid: &PersistenceId) {
        self.streams.borrow_mut().remove(pid);
    }

    fn rollback(&self) {
        self.streams.borrow_mut().clear();
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
            Op::Events { pid, events } if events.len() == 1 => self
                .write_events(pid, events)
                .inspect_err(|_| self.forget(pid)),
            Op::Events { pid, events } => self
                .in_savepoint(|| self.write_events(pid, events))
                .inspect_err(|_| self.forget(pid)),
            Op::DeleteEventsTo { pid, to } => self
                .in_savepoint(|| self.delete_events_to(pid, *to))
                .inspect_err(|_| self.forget(pid)),
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
            } => {
                let position: i64 = self
                    .conn
                    .prepare_cached(NEXT_STATE_POSITION)
                    .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
                    .map_err(|e| self.statement_failure("cannot count a state save", &e))?;
                self.run(
                    SAVE_STATE,
                    params![pid.as_str(), payload, checksum, position, self.now.get()],
                )
                .map(drop)
            }
            Op::DeleteState { pid } => self.run(DELETE_STATE, params![pid.as_str()]).map(drop),
            Op::Run(job) => {
                let job = job.lock().ok().and_then(|mut job| job.take());
                let Some(job) = job else {
                    return Ok(());
                };
                self.in_savepoint(|| {
                    let result = job(&self.conn, &self.path);
                    if self.conn.is_autocommit() {
                        // The work ended the transaction itself (a COMMIT or
                        // ROLLBACK in a projection handler): what it wrote
                        // may have committed without its offset.
                        return Err(Failure::Transaction(PersistError::StorageUnavailable(
                            format!(
                                "work run in a write transaction of the SQLite store {} ended \
                                 that transaction itself (COMMIT or ROLLBACK in a projection \
                                 handler); the store's own transaction must be left to it",
                                self.path.display()
                            ),
                        )));
                    }
                    result.map_err(Failure::Request)
                })
            }
        }
    }

    /// Stores the events of one request and raises the id's highest
    /// sequence in its stream's bookkeeping. With more than one event it must
    /// run in a savepoint.
    fn write_events(&self, pid: &PersistenceId, events: &[Event]) -> Result<(), Failure> {
        let conflict = |sequence: i64| {
            Failure::Request(PersistError::SequenceConflict {
                persistence_id: pid.clone(),
                sequence_id: SequenceId(sequence),
            })
        };
        let stream = match self.stream(pid) {
            Ok(Lookup::Found(stream)) => stream,
            Ok(Lookup::Free(slot)) => {
                let sum = streams::row_checksum(pid.as_str(), 0, 0);
                self.run(
                    NEW_STREAM,
                    params![slot, pid.as_str(), pid.entity_type(), sum],
                )?;
                let stream = Stream {
                    id: slot,
                    highest: 0,
                    deleted_to: 0,
                };
                self.remember(pid, stream);
                stream
            }
            Err(err) => return Err(self.lookup_failure(err)),
        };
        if let Some(used) = events.iter().find(|e| e.sequence <= stream.deleted_to) {
            // The sequence was deleted, so it is used up.
            return Err(conflict(used.sequence));
        }
        let written_at = self.now.get();
        for event in events {
            let inserted = self.conn.prepare_cached(INSERT_EVENT).and_then(|mut stmt| {
                stmt.execute(params![
                    stream.id,
                    event.sequence,
                    event.event_type,
                    event.payload,
                    written_at,
                    event.tags_blob,
                    event.metadata,
                    event.checksum
                ])
            });
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(conflict(event.sequence)),
                Err(e) => return Err(self.statement_failure("cannot write an event", &e)),
            }
            if !event.tags.is_empty() {
                let position = self.conn.last_insert_rowid();
                for tag in &event.tags {
                    self.run(INSERT_TAG, params![tag, position])
                        .map_err(Failure::into_transaction)?;
                }
            }
        }
        let top = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        if top > stream.highest {
            // The events are in: from here a failure must undo them, and
            // only a failed group can do that without a savepoint.
            let sum = streams::row_checksum(pid.as_str(), top, stream.deleted_to);
            self.run(
                UPDATE_STREAM,
                params![stream.id, top, stream.deleted_to, sum],
            )
            .map_err(Failure::into_transaction)?;
            self.remember(
                pid,
                Stream {
                    highest: top,
                    ..stream
                },
            );
        }
        Ok(())
    }

    /// A stream lookup's error, for the request: damage or a full window
    /// is the request's own (nothing was written); a SQLite error the
    /// transaction's when SQLite rolled it back.
    fn lookup_failure(&self, err: PersistError) -> Failure {
        if self.conn.is_autocommit() {
            Failure::Transaction(err)
        } else {
            Failure::Request(err)
        }
    }

    fn delete_events_to(&self, pid: &PersistenceId, to: i64) -> Result<(), Failure> {
        if to < 1 {
            return Ok(());
        }
        let stream = match self.stream(pid) {
            Ok(Lookup::Found(stream)) => stream,
            Ok(Lookup::Free(_)) => return Ok(()),
            Err(err) => return Err(self.lookup_failure(err)),
        };
        if stream.highest == 0 {
            return Ok(());
        }
        let tagged: Vec<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(TAGGED_TO)
            .and_then(|mut stmt| {
                stmt.query_map(params![stream.id, to], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.statement_failure("cannot read the tags of deleted events", &e))?;
        for (position, blob) in tagged {
            // Tags that do not decode were damaged: their rows stay (found
            // by `verify`), the events go.
            for tag in extras::decode_tags(&blob).unwrap_or_default() {
                self.run(DELETE_TAG, params![tag, position])?;
            }
        }
        self.run(DELETE_EVENTS, params![stream.id, to])?;
        // Sequences above the highest were never used: they stay free.
        let deleted_to = stream.deleted_to.max(to.min(stream.highest));
        let sum = streams::row_checksum(pid.as_str(), stream.highest, deleted_to);
        self.run(
            UPDATE_STREAM,
            params![stream.id, stream.highest, deleted_to, sum],
        )?;
        self.remember(
            pid,
            Stream {
                deleted_to,
                ..stream
            },
        );
        Ok(())
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

/// A unique index refused the row: (stream, sequence) is taken.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    match e.sqlite_error() {
        Some(err) => {
            err.code == ErrorCode::ConstraintViolation
                && (err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
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
