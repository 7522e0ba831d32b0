//! Group commit for durable states: concurrent `save_state` calls share one
//! statement and one commit, as journal writes do (see [`writer`](super::writer)).
//!
//! Every save is a [`Save`] sent to one state-writer task. The task takes the
//! first save off its queue, drains whatever else is waiting (up to the group
//! bounds) and upserts the whole group with one `INSERT ... SELECT FROM
//! unnest(...) ON CONFLICT (persistence_id) DO UPDATE`: one round trip and
//! one WAL flush for all of them. A save is an upsert of a whole state, so
//! nothing depends on the order of different ids; two saves of one id in a
//! group would make the statement touch a row twice, so the later one waits
//! for the next group. When the group's statement fails with an error of the
//! server's, each save is tried alone, so that one bad save (a payload over
//! PostgreSQL's limit) fails alone.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::writer::GroupLimits;
use super::{Shared, errors};
use crate::{PersistError, PersistenceId};

/// One state save, checksummed by the caller, and the caller waiting.
pub(super) struct Save {
    pub(super) pid: PersistenceId,
    pub(super) payload: Vec<u8>,
    pub(super) checksum: i64,
    pub(super) ack: oneshot::Sender<Result<(), PersistError>>,
}

/// What the state writer receives.
pub(super) enum Message {
    Save(Save),
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
    let mut closing = false;
    loop {
        let mut group = std::mem::take(&mut carried);
        if !closing {
            if group.is_empty() {
                match queue.recv().await {
                    Some(Message::Save(save)) => group.push(save),
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
                    Ok(Message::Close) => {
                        closing = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // A caller that gave up waiting was told the save failed.
        group.retain(|save| !save.ack.is_closed());
        let (now, later) = split_repeated(group);
        carried = later;
        if !now.is_empty() {
            shared.save_group(now).await;
        }
        if closing && carried.is_empty() {
            return;
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

impl Shared {
    /// Upserts a group of saves of distinct ids in one statement, and
    /// answers each.
    async fn save_group(&self, group: Vec<Save>) {
        const WHAT: &str = "save states";
        let deadline = Instant::now() + self.op_timeout;
        let conn = match self.connection(WHAT, deadline).await {
            Ok(conn) => conn,
            Err(e) => {
                for save in group {
                    let _ = save.ack.send(Err(e.clone()));
                }
                return;
            }
        };
        let ids: Vec<&str> = group.iter().map(|s| s.pid.as_str()).collect();
        let payloads: Vec<&[u8]> = group.iter().map(|s| s.payload.as_slice()).collect();
        let checksums: Vec<i64> = group.iter().map(|s| s.checksum).collect();
        let together = tokio::time::timeout_at(deadline, async {
            let stmt = conn.prepare_cached(&self.sql.save_states).await?;
            conn.execute(&stmt, &[&ids, &payloads, &checksums]).await
        })
        .await;
        match together {
            Ok(Ok(_)) => {
                self.committed();
                for save in group {
                    let _ = save.ack.send(Ok(()));
                }
            }
            // The server refused the statement: something in one save. Each
            // is tried alone, to fail alone.
            Ok(Err(e)) if group.len() > 1 && e.as_db_error().is_some() => {
                drop(conn);
                for save in group {
                    let result = self.save_one(&save).await;
                    let _ = save.ack.send(result);
                }
            }
            Ok(Err(e)) => {
                let first = group[0].pid.clone();
                let error = self.failed(WHAT, &first, conn, &e);
                let error = if group.len() == 1 {
                    error
                } else {
                    unknown_outcome(error, errors::is_outcome_unknown(&e))
                };
                for save in group {
                    let _ = save.ack.send(Err(error.clone()));
                }
            }
            Err(_elapsed) => {
                super::discard(conn);
                let error = self.timed_out(WHAT, true);
                for save in group {
                    let _ = save.ack.send(Err(error.clone()));
                }
            }
        }
    }

    /// One save in its own statement.
    async fn save_one(&self, save: &Save) -> Result<(), PersistError> {
        const WHAT: &str = "save a state";
        let deadline = Instant::now() + self.op_timeout;
        let conn = self.connection(WHAT, deadline).await?;
        let alone = tokio::time::timeout_at(deadline, async {
            let stmt = conn.prepare_cached(&self.sql.save_state).await?;
            conn.execute(&stmt, &[&save.pid.0, &save.payload, &save.checksum])
                .await
        })
        .await;
        match alone {
            Ok(Ok(_)) => {
                self.committed();
                Ok(())
            }
            Ok(Err(e)) => Err(self.failed(WHAT, &save.pid, conn, &e)),
            Err(_elapsed) => {
                super::discard(conn);
                Err(self.timed_out(WHAT, true))
            }
        }
    }
}

/// A group's error, saying that the save may have been stored when the
/// connection broke after the statement was sent.
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
            ack: oneshot::channel().0,
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
