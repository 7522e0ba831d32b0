//! Group commit for durable states: concurrent `save_state` calls share one
//! statement and one commit, as journal writes do (see [`writer`](super::writer)).
//!
//! Every save is a [`Save`] sent to one state-writer task. The task takes the
//! first save off its queue, drains whatever else is waiting (up to the group
//! bounds) and upserts the whole group with one `INSERT ... SELECT FROM
//! unnest(...) ON CONFLICT (persistence_id) DO UPDATE`: one round trip and
//! one WAL flush for all of them.
//!
//! - **Order.** A save is an upsert of a whole state, so saves of different
//!   ids do not depend on each other; two saves of one id in a group would
//!   make the statement touch a row twice, so the later one waits for the
//!   next group. A save holds the store's count of saves under way until the
//!   writer is done with it, even when its caller has given up waiting: no
//!   later save (or delete) of any id runs on its own meanwhile, so none can
//!   be overtaken by it.
//! - **Bounds.** Each save carries its caller's deadline: one whose caller
//!   has given up, or whose deadline passed, is dropped before its group
//!   runs, and a group runs within its earliest deadline. A statement past
//!   it is cancelled on the server (best effort: it may have committed).
//! - **Failures.** A refusal that belongs to one row (bad data, a constraint,
//!   a payload over PostgreSQL's limits) is found by trying the group's saves
//!   one by one, so one bad save fails alone; any other error answers the
//!   whole group. Serialization failures and deadlocks are retried, as for
//!   every other statement of the store; ids are sorted in each group, so
//!   that two nodes' groups take their row locks in the same order.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use deadpool_postgres::Object;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::super::in_flight::InFlight;
use super::writer::GroupLimits;
use super::{Shared, errors};
use crate::{PersistError, PersistenceId};

/// One state save, checksummed by the caller, and the caller waiting.
pub(super) struct Save {
    pub(super) pid: PersistenceId,
    pub(super) payload: Vec<u8>,
    pub(super) checksum: i64,
    /// The caller stops waiting then.
    pub(super) deadline: Instant,
    pub(super) ack: oneshot::Sender<Result<(), PersistError>>,
    /// Counted among the saves under way until the writer drops it.
    pub(super) _counted: InFlight<Arc<AtomicUsize>>,
}

impl Save {
    /// The caller is still waiting, and may still be answered in time.
    fn wanted(&self, now: Instant) -> bool {
        !self.ack.is_closed() && self.deadline > now
    }
}

/// What the state writer receives.
pub(super) enum Message {
    Save(Save),
    /// Answered once every save sent before it is done with (a delete
    /// waits for it, so that no save sent before overtakes it).
    Barrier(oneshot::Sender<()>),
    /// Store what came before, then stop.
    Close,
}

/// The state writer's body: runs until the store is closed or dropped,
/// storing every save that reached the queue before that.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Message>,
    limits: GroupLimits,
) {
    let mut carried: Vec<Save> = Vec::new();
    let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
    let mut closing = false;
    loop {
        let mut group = std::mem::take(&mut carried);
        // Gathering stops at a barrier: what came after it waits for it.
        if !closing && barriers.is_empty() {
            if group.is_empty() {
                match queue.recv().await {
                    Some(Message::Save(save)) => group.push(save),
                    Some(Message::Barrier(done)) => {
                        let _ = done.send(());
                        continue;
                    }
                    Some(Message::Close) | None => return,
                }
            }
            let mut bytes: usize = group.iter().map(|s| s.payload.len()).sum();
            while group.len() < limits.max_requests && bytes < limits.max_bytes {
                match queue.try_recv() {
                    Ok(Message::Save(save)) => {
                        bytes += save.payload.len();
                        group.push(save);
                    }
                    Ok(Message::Barrier(done)) => {
                        barriers.push(done);
                        break;
                    }
                    Ok(Message::Close) => {
                        closing = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // A caller that gave up waiting was told the save failed: it must
        // not be stored behind its back.
        let now = Instant::now();
        group.retain(|save| save.wanted(now));
        let (mut now, later) = split_repeated(group);
        carried = later;
        if !now.is_empty() {
            now.sort_by(|a, b| a.pid.0.cmp(&b.pid.0));
            shared.save_group(now).await;
        }
        if carried.is_empty() {
            for done in barriers.drain(..) {
                let _ = done.send(());
            }
            if closing {
                return;
            }
        }
    }
}

/// Splits off the saves of an id that an earlier save of the group names:
/// they go in the next group, in their order.
fn split_repeated(group: Vec<Save>) -> (Vec<Save>, Vec<Save>) {
    let mut seen = HashSet::new();
    group
        .into_iter()
        .partition(|save| seen.insert(save.pid.0.clone()))
}

/// A refusal of the server's that belongs to one row rather than to the
/// statement or the server: bad data (class 22), a constraint (23), a
/// limit exceeded such as a payload too large (54).
fn refused_a_row(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        ["22", "23", "54"]
            .iter()
            .any(|class| c.code().starts_with(class))
    })
}

/// How a statement of the state writer ended.
enum Ran {
    Done,
    Failed(tokio_postgres::Error),
    TimedOut,
}

impl Shared {
    /// Upserts a group of saves of distinct ids in one statement, and
    /// answers each.
    async fn save_group(&self, group: Vec<Save>) {
        const WHAT: &str = "save states";
        let Some(deadline) = group.iter().map(|s| s.deadline).min() else {
            return;
        };
        let conn = match self.connection(WHAT, deadline).await {
            Ok(conn) => conn,
            Err(e) => return answer_all(group, &e),
        };
        let ids: Vec<&str> = group.iter().map(|s| s.pid.as_str()).collect();
        let payloads: Vec<&[u8]> = group.iter().map(|s| s.payload.as_slice()).collect();
        let checksums: Vec<i64> = group.iter().map(|s| s.checksum).collect();
        let sql = &self.sql.save_states;
        let ran = self
            .run_statement(&conn, deadline, sql, &[&ids, &payloads, &checksums])
            .await;
        match ran {
            Ran::Done => {
                self.committed();
                for save in group {
                    let _ = save.ack.send(Ok(()));
                }
            }
            // One save's data was refused: each is tried alone, to fail alone.
            Ran::Failed(e) if group.len() > 1 && refused_a_row(&e) => {
                for save in group {
                    if !save.wanted(Instant::now()) {
                        continue;
                    }
                    let result = self.save_one(&conn, &save).await;
                    let _ = save.ack.send(result);
                }
            }
            Ran::Failed(e) => {
                let unknown = errors::is_outcome_unknown(&e);
                let error = self.failed(WHAT, &group[0].pid, conn, &e);
                answer_all(group, &unknown_outcome(error, unknown));
            }
            Ran::TimedOut => {
                super::discard(conn);
                answer_all(group, &self.timed_out(WHAT, true));
            }
        }
    }

    /// One save in its own statement, on the group's connection.
    async fn save_one(&self, conn: &Object, save: &Save) -> Result<(), PersistError> {
        const WHAT: &str = "save a state";
        let sql = &self.sql.save_state;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&save.pid.0, &save.payload, &save.checksum];
        match self.run_statement(conn, save.deadline, sql, &params).await {
            Ran::Done => {
                self.committed();
                Ok(())
            }
            Ran::Failed(e) if errors::is_too_large(&e) => Err(super::too_large(&save.pid, &e)),
            Ran::Failed(e) => Err(self.unavailable(WHAT, &e, errors::is_outcome_unknown(&e))),
            Ran::TimedOut => Err(self.timed_out(WHAT, true)),
        }
    }

    /// Runs one statement by `deadline`, retrying serialization failures and
    /// deadlocks; a statement still running at the deadline is cancelled on
    /// the server, best effort.
    async fn run_statement(
        &self,
        conn: &Object,
        deadline: Instant,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Ran {
        let mut attempt = 0u32;
        loop {
            let ran = tokio::time::timeout_at(deadline, async {
                let stmt = conn.prepare_cached(sql).await?;
                conn.execute(&stmt, params).await
            })
            .await;
            match ran {
                Ok(Ok(_)) => return Ran::Done,
                Ok(Err(e)) if errors::is_retryable(&e) && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                Ok(Err(e)) => return Ran::Failed(e),
                Err(_elapsed) => {
                    let cancel = conn.cancel_token();
                    tokio::spawn(async move {
                        let _ = cancel.cancel_query(tokio_postgres::NoTls).await;
                    });
                    return Ran::TimedOut;
                }
            }
        }
    }
}

/// Answers every save of a group with the same error.
fn answer_all(group: Vec<Save>, error: &PersistError) {
    for save in group {
        let _ = save.ack.send(Err(error.clone()));
    }
}

/// An error that says the save may have been stored, when the connection
/// broke after the statement was sent.
fn unknown_outcome(error: PersistError, unknown: bool) -> PersistError {
    match error {
        PersistError::StorageUnavailable(detail) if unknown => PersistError::StorageUnavailable(
            format!("{detail}; the state may or may not have been saved"),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(id: &str) -> Save {
        Save {
            pid: PersistenceId::new("S", id),
            payload: Vec::new(),
            checksum: 0,
            deadline: Instant::now(),
            ack: oneshot::channel().0,
            _counted: InFlight::enter(Arc::new(AtomicUsize::new(0))),
        }
    }

    #[test]
    fn a_repeated_id_waits_for_the_next_group_in_order() {
        let group = vec![save("a"), save("b"), save("a"), save("c"), save("a")];
        let (now, later) = split_repeated(group);
        let ids = |g: &[Save]| g.iter().map(|s| s.pid.0.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&now), ["S:a", "S:b", "S:c"]);
        assert_eq!(ids(&later), ["S:a", "S:a"]);
    }
}
