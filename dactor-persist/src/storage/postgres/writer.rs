//! Group commit: the writer tasks that coalesce concurrent journal writes
//! into one multi-row statement.
//!
//! Every journal write of the store is a [`Request`] sent to a queue that a
//! few writer tasks share. A writer takes the first request off the queue,
//! drains whatever else is already waiting (up to the group bounds) and stores
//! the whole group with one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
//! NOTHING RETURNING write_id, sequence`: one round trip and one commit (one
//! WAL flush) for all of them. While one writer waits for its commit, the next
//! gathers the requests that arrive meanwhile.
//!
//! **Why this shape.** Each request carries its own random `write_id`, so the
//! rows that come back say exactly which requests were stored; a request whose
//! row did not come back lost its sequence to another writer (or to a delete)
//! and fails alone, while its neighbours commit. The alternative, a savepoint
//! per request, costs a statement (and on PostgreSQL a subtransaction) per
//! request. A group of single-event writes runs as one autocommit statement;
//! a group holding a multi-event batch runs in a transaction, so that a batch
//! one of whose events was refused can be undone inside it before the commit
//! (a batch is stored whole or not at all, and nobody ever sees part of it).
//!
//! Two requests of one group naming the same (persistence id, sequence) would
//! make the outcome of the second depend on the first's (if the first is a
//! batch undone for another reason, the sequence was free after all): the
//! second waits for the next group instead.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use super::{Failure, Shared, errors};
use crate::{PersistError, PersistenceId, SequenceId};

/// One event of a journal write, checksummed by the caller.
pub(super) struct Event {
    pub(super) sequence: i64,
    pub(super) event_type: String,
    pub(super) payload: Vec<u8>,
    pub(super) checksum: i64,
    pub(super) tags: Vec<String>,
    /// The stored forms of the tags and the metadata (`None`: none).
    pub(super) tags_blob: Option<Vec<u8>>,
    pub(super) metadata: Option<Vec<u8>>,
}

/// A journal write (one event or one atomic batch of one id) and the caller
/// waiting for its outcome.
pub(super) struct Request {
    pub(super) pid: PersistenceId,
    pub(super) events: Vec<Event>,
    /// Stored in every row of this write; reused when the write is retried
    /// after an attempt whose outcome is unknown.
    pub(super) write_id: i64,
    /// An earlier attempt with this `write_id` may have been stored: a
    /// conflict must first check whether the rows are that attempt's.
    pub(super) retrying_unknown: bool,
    pub(super) ack: oneshot::Sender<Result<(), Failure>>,
}

impl Request {
    fn bytes(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.payload.len() + e.event_type.len() + self.pid.0.len())
            .sum()
    }
}

/// What the writer tasks receive.
pub(super) enum Message {
    Write(Request),
    /// Store what came before, then stop (one per writer task).
    Close,
}

/// How large one group may grow.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupLimits {
    pub(super) max_requests: usize,
    pub(super) max_bytes: usize,
}

/// The queue the writer tasks share.
pub(super) type Queue = Arc<Mutex<mpsc::UnboundedReceiver<Message>>>;

/// A writer task's body: runs until the store is closed or dropped, storing
/// every request that reached the queue before that.
pub(super) async fn run(shared: Arc<Shared>, queue: Queue, limits: GroupLimits) {
    let mut carried: Vec<Request> = Vec::new();
    let mut closing = false;
    loop {
        let mut group = std::mem::take(&mut carried);
        if !closing {
            let mut rx = queue.lock().await;
            if group.is_empty() {
                match rx.recv().await {
                    Some(Message::Write(request)) => group.push(request),
                    Some(Message::Close) | None => return,
                }
            }
            let mut bytes: usize = group.iter().map(Request::bytes).sum();
            while group.len() < limits.max_requests && bytes < limits.max_bytes {
                match rx.try_recv() {
                    Ok(Message::Write(request)) => {
                        bytes += request.bytes();
                        group.push(request);
                    }
                    Ok(Message::Close) => {
                        closing = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // A caller that gave up waiting (its bound passed) was told the write
        // failed: it must not be stored behind its back.
        group.retain(|request| !request.ack.is_closed());
        let (now, later) = split_overlapping(group);
        carried = later;
        if !now.is_empty() {
            shared.store_group(now).await;
        }
        if closing && carried.is_empty() {
            return;
        }
    }
}

/// Splits off the requests that name a (persistence id, sequence) that an
/// earlier request of the group names too: they go in the next group.
fn split_overlapping(group: Vec<Request>) -> (Vec<Request>, Vec<Request>) {
    if group.len() < 2 {
        return (group, Vec::new());
    }
    let mut taken: HashSet<(&str, i64)> = HashSet::with_capacity(group.len());
    let mut later_at = Vec::new();
    for (index, request) in group.iter().enumerate() {
        let overlaps = request
            .events
            .iter()
            .any(|e| taken.contains(&(request.pid.0.as_str(), e.sequence)));
        if overlaps {
            later_at.push(index);
        } else {
            taken.extend(
                request
                    .events
                    .iter()
                    .map(|e| (request.pid.0.as_str(), e.sequence)),
            );
        }
    }
    if later_at.is_empty() {
        return (group, Vec::new());
    }
    let mut now = Vec::with_capacity(group.len() - later_at.len());
    let mut later = Vec::with_capacity(later_at.len());
    let mut next_later = later_at.into_iter().peekable();
    for (index, request) in group.into_iter().enumerate() {
        if next_later.peek() == Some(&index) {
            next_later.next();
            later.push(request);
        } else {
            now.push(request);
        }
    }
    (now, later)
}

/// How many times a group is tried again after a serialization failure or a
/// deadlock (CockroachDB asks clients to retry those).
const RETRIES: u32 = 3;

impl Shared {
    /// Stores one group and answers every caller in it.
    async fn store_group(&self, group: Vec<Request>) {
        let deadline = Instant::now() + self.op_timeout;
        let outcomes = self.try_group(&group, deadline, true).await;
        if outcomes.iter().any(Result::is_ok) {
            self.committed();
        }
        for (request, outcome) in group.into_iter().zip(outcomes) {
            let _ = request.ack.send(outcome);
        }
    }

    /// The outcome of each request of `group`, in order. When the server
    /// refuses the group's statement for its data (a persistence id too long
    /// for an index entry, say) and `split` is set, each request is tried
    /// alone, so that only the faulty one fails.
    async fn try_group(
        &self,
        group: &[Request],
        deadline: Instant,
        split: bool,
    ) -> Vec<Result<(), Failure>> {
        let everyone = |failure: Failure| vec![Err(failure); group.len()];
        let mut conn = match self.connection("write events", deadline).await {
            Ok(conn) => conn,
            // No statement was sent: nothing was stored.
            Err(error) => {
                return everyone(Failure {
                    error,
                    unknown: false,
                });
            }
        };
        let mut attempt = 0;
        loop {
            let result =
                tokio::time::timeout_at(deadline, self.insert_group(&mut conn, group)).await;
            match result {
                Ok(Ok(stored)) => return self.settle(&mut conn, group, stored, deadline).await,
                Ok(Err(e)) if errors::is_retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "group write retried");
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                Ok(Err(e)) if split && group.len() > 1 && !errors::is_outcome_unknown(&e) => {
                    tracing::debug!(error = %errors::describe(&e), "group refused; writing its requests one by one");
                    drop(conn);
                    let mut outcomes = Vec::with_capacity(group.len());
                    for request in group {
                        let alone = Box::pin(self.try_group(
                            std::slice::from_ref(request),
                            deadline,
                            false,
                        ));
                        outcomes.extend(alone.await);
                    }
                    return outcomes;
                }
                // ON CONFLICT DO NOTHING means the key never raises this;
                // should a server raise it all the same, it is what it says.
                Ok(Err(e)) if group.len() == 1 && errors::is_unique_violation(&e) => {
                    return everyone(Failure {
                        error: PersistError::SequenceConflict {
                            persistence_id: group[0].pid.clone(),
                            sequence_id: SequenceId(
                                group[0].events.first().map_or(0, |e| e.sequence),
                            ),
                        },
                        unknown: false,
                    });
                }
                Ok(Err(e)) if group.len() == 1 && errors::is_too_large(&e) => {
                    return everyone(Failure {
                        error: super::too_large(&group[0].pid, &e),
                        unknown: false,
                    });
                }
                Ok(Err(e)) => {
                    let unknown = errors::is_outcome_unknown(&e);
                    if errors::is_connection_broken(&e) {
                        super::discard(conn);
                    }
                    let error = self.unavailable("cannot write events", &e, unknown);
                    tracing::warn!(error = %error, requests = group.len(), "group write failed");
                    return everyone(Failure { error, unknown });
                }
                Err(_elapsed) => {
                    super::discard(conn);
                    let error = self.timed_out("writing events", true);
                    tracing::warn!(error = %error, requests = group.len(), "group write timed out");
                    return everyone(Failure {
                        error,
                        unknown: true,
                    });
                }
            }
        }
    }

    /// Runs the group's insert (in a transaction when a batch is in it, so
    /// that a partly refused batch can be undone) and returns the (write_id,
    /// sequence) of every stored row.
    async fn insert_group(
        &self,
        conn: &mut deadpool_postgres::Object,
        group: &[Request],
    ) -> Result<HashSet<(i64, i64)>, tokio_postgres::Error> {
        if let [request] = group
            && let [event] = request.events.as_slice()
            && event.tags.is_empty()
        {
            let stmt = conn.prepare_cached(&self.sql.insert_event).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                &request.pid.0,
                &event.sequence,
                &event.event_type,
                &event.payload,
                &event.checksum,
                &request.write_id,
                &event.metadata,
            ];
            let row = conn.query_opt(&stmt, &params).await?;
            return match row {
                Some(row) => Ok(HashSet::from([(row.try_get(0)?, row.try_get(1)?)])),
                None => Ok(HashSet::new()),
            };
        }
        let rows: usize = group.iter().map(|r| r.events.len()).sum();
        let mut pids: Vec<&str> = Vec::with_capacity(rows);
        let mut seqs: Vec<i64> = Vec::with_capacity(rows);
        let mut types: Vec<&str> = Vec::with_capacity(rows);
        let mut payloads: Vec<&[u8]> = Vec::with_capacity(rows);
        let mut checksums: Vec<i64> = Vec::with_capacity(rows);
        let mut write_ids: Vec<i64> = Vec::with_capacity(rows);
        let mut tag_blobs: Vec<Option<&[u8]>> = Vec::with_capacity(rows);
        let mut metadata: Vec<Option<&[u8]>> = Vec::with_capacity(rows);
        // The tags one by one: (tag, persistence id, sequence).
        let (mut tags, mut tag_pids, mut tag_seqs) = (Vec::new(), Vec::new(), Vec::new());
        for request in group {
            for event in &request.events {
                pids.push(&request.pid.0);
                seqs.push(event.sequence);
                types.push(&event.event_type);
                payloads.push(&event.payload);
                checksums.push(event.checksum);
                write_ids.push(request.write_id);
                tag_blobs.push(event.tags_blob.as_deref());
                metadata.push(event.metadata.as_deref());
                for tag in &event.tags {
                    tags.push(tag.as_str());
                    tag_pids.push(request.pid.0.as_str());
                    tag_seqs.push(event.sequence);
                }
            }
        }
        let tagged = !tags.is_empty();
        let sql = if tagged {
            &self.sql.insert_tagged_events
        } else {
            &self.sql.insert_events
        };
        let plain: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &pids, &seqs, &types, &payloads, &checksums, &write_ids, &tag_blobs, &metadata,
        ];
        let with_tags: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
            &pids, &seqs, &types, &payloads, &checksums, &write_ids, &tag_blobs, &metadata, &tags,
            &tag_pids, &tag_seqs,
        ];
        let params: &[&(dyn tokio_postgres::types::ToSql + Sync)] =
            if tagged { &with_tags } else { &plain };
        let collect = |rows: Vec<tokio_postgres::Row>| -> Result<HashSet<(i64, i64)>, _> {
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        };

        let batches = group.iter().any(|r| r.events.len() > 1);
        if !batches {
            // Each request is one row: one autocommit statement is atomic for each.
            let stmt = conn.prepare_cached(sql).await?;
            return collect(conn.query(&stmt, params).await?);
        }
        let tx = conn.transaction().await?;
        let stmt = tx.prepare_cached(sql).await?;
        let stored = collect(tx.query(&stmt, params).await?)?;
        let mut undoing = false;
        for request in group {
            let count = request
                .events
                .iter()
                .filter(|e| stored.contains(&(request.write_id, e.sequence)))
                .count();
            if count > 0 && count < request.events.len() {
                if !undoing {
                    // Not a removal the journal's trigger should record.
                    tx.execute(&self.sql.undoing_batch, &[]).await?;
                    undoing = true;
                }
                let undo = tx.prepare_cached(&self.sql.undo_events).await?;
                let seqs: Vec<i64> = request.events.iter().map(|e| e.sequence).collect();
                tx.execute(&undo, &[&request.pid.0, &seqs, &request.write_id])
                    .await?;
                if tagged {
                    let undo = tx.prepare_cached(&self.sql.undo_tags).await?;
                    tx.execute(&undo, &[&request.pid.0, &seqs]).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Turns the stored rows into each request's outcome: stored whole, or a
    /// conflict at its first refused sequence, unless an earlier attempt of
    /// the same write turns out to hold those sequences.
    async fn settle(
        &self,
        conn: &mut deadpool_postgres::Object,
        group: &[Request],
        stored: HashSet<(i64, i64)>,
        deadline: Instant,
    ) -> Vec<Result<(), Failure>> {
        let mut outcomes = Vec::with_capacity(group.len());
        for request in group {
            let refused = request
                .events
                .iter()
                .find(|e| !stored.contains(&(request.write_id, e.sequence)));
            let Some(refused) = refused else {
                outcomes.push(Ok(()));
                continue;
            };
            let conflict = Failure {
                error: PersistError::SequenceConflict {
                    persistence_id: request.pid.clone(),
                    sequence_id: SequenceId(refused.sequence),
                },
                unknown: false,
            };
            if !request.retrying_unknown {
                outcomes.push(Err(conflict));
                continue;
            }
            // An earlier attempt of this very write may have been stored
            // although its caller never heard so: then this is a success.
            let earlier = tokio::time::timeout_at(deadline, self.written_by(conn, request)).await;
            outcomes.push(match earlier {
                Ok(Ok(true)) => {
                    tracing::info!(
                        persistence_id = %request.pid,
                        sequence = request.events[0].sequence,
                        "a write whose outcome was unknown had been stored"
                    );
                    Ok(())
                }
                Ok(Ok(false)) => Err(conflict),
                Ok(Err(e)) => Err(Failure {
                    error: self.unavailable(
                        "cannot tell whether an earlier attempt of the write was stored",
                        &e,
                        true,
                    ),
                    unknown: true,
                }),
                Err(_) => Err(Failure {
                    error: self.timed_out("checking an earlier attempt of a write", true),
                    unknown: true,
                }),
            });
        }
        outcomes
    }

    /// True when every event of `request` is stored under its write_id with
    /// its checksum: an earlier attempt of the same write was committed.
    async fn written_by(
        &self,
        conn: &mut deadpool_postgres::Object,
        request: &Request,
    ) -> Result<bool, tokio_postgres::Error> {
        let stmt = conn.prepare_cached(&self.sql.written_by).await?;
        let seqs: Vec<i64> = request.events.iter().map(|e| e.sequence).collect();
        let rows = conn.query(&stmt, &[&request.pid.0, &seqs]).await?;
        let mut found = 0;
        for row in &rows {
            let sequence: i64 = row.try_get(0)?;
            let write_id: i64 = row.try_get(1)?;
            let checksum: i64 = row.try_get(2)?;
            let ours = request
                .events
                .iter()
                .any(|e| e.sequence == sequence && e.checksum == checksum);
            if write_id != request.write_id || !ours {
                return Ok(false);
            }
            found += 1;
        }
        Ok(found == request.events.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pid: &str, seqs: &[i64]) -> Request {
        let (ack, _rx) = oneshot::channel();
        Request {
            pid: PersistenceId(pid.into()),
            events: seqs
                .iter()
                .map(|&sequence| Event {
                    sequence,
                    event_type: "E".into(),
                    payload: Vec::new(),
                    checksum: 0,
                    tags: Vec::new(),
                    tags_blob: None,
                    metadata: None,
                })
                .collect(),
            write_id: 0,
            retrying_unknown: false,
            ack,
        }
    }

    fn shape(requests: &[Request]) -> Vec<(String, Vec<i64>)> {
        requests
            .iter()
            .map(|r| {
                (
                    r.pid.0.clone(),
                    r.events.iter().map(|e| e.sequence).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn overlapping_requests_wait_for_the_next_group() {
        let group = vec![
            request("a", &[1, 2]),
            request("b", &[2]),
            request("a", &[2]),
            request("a", &[3]),
            request("a", &[3, 4]),
        ];
        let (now, later) = split_overlapping(group);
        assert_eq!(
            shape(&now),
            vec![
                ("a".into(), vec![1, 2]),
                ("b".into(), vec![2]),
                ("a".into(), vec![3])
            ]
        );
        assert_eq!(
            shape(&later),
            vec![("a".into(), vec![2]), ("a".into(), vec![3, 4])]
        );
    }

    #[test]
    fn distinct_requests_stay_together() {
        let group = vec![request("a", &[1]), request("b", &[1]), request("a", &[2])];
        let (now, later) = split_overlapping(group);
        assert_eq!(now.len(), 3);
        assert!(later.is_empty());
    }
}
