//! Snapshots and durable states: one subject per id and kind whose last
//! message is the value. Each write is fenced on the subject's last message
//! (so "the snapshot with the highest sequence" is decided atomically) and
//! rolls the subject up (`Nats-Rollup: sub`), so the server keeps only the
//! latest. A deletion writes a tombstone the same way: the subject is never
//! empty, and the fence never opens.

use bytes::Bytes;
use tokio::time::Instant;

use super::Inner;
use super::io::{Fenced, Published};
use super::layout::{Kind, Place};
use super::record::{Body, Envelope, What};
use crate::storage::validate_snapshot_sequence;
use crate::{PersistError, PersistenceId, SequenceId, SnapshotEntry};

/// How many times a value write is tried against a subject that moved under
/// it before it gives up; how many times a read follows a value replaced
/// while its chunks were being fetched.
const MAX_TRIES: usize = 64;

/// The last value of a subject, decoded.
pub(super) struct Current {
    pub(super) stream_seq: u64,
    pub(super) envelope: Envelope,
}

impl Inner {
    /// The last message of `place`, checked to belong to `pid` and to be one
    /// of `allowed`; the error is the caller's `damaged(detail)`.
    pub(super) async fn current(
        &self,
        pid: &PersistenceId,
        place: &Place,
        allowed: [What; 2],
        deadline: Instant,
        damaged: &(dyn Fn(String) -> PersistError + Sync),
    ) -> Result<Option<Current>, PersistError> {
        let Some(message) = self
            .last_message(place.shard, &place.subject, deadline)
            .await?
        else {
            return Ok(None);
        };
        let envelope = self.envelope(&message, pid.as_str()).map_err(damaged)?;
        if !allowed.contains(&envelope.what) {
            return Err(damaged(format!(
                "the record at stream sequence {} is a {:?} record",
                message.sequence, envelope.what
            )));
        }
        Ok(Some(Current {
            stream_seq: message.sequence,
            envelope,
        }))
    }

    /// Writes `envelope` as the subject's only value, expecting its last
    /// message at `expected`. `Ok(Some(at))` when stored (by this call or an
    /// earlier try of it), `Ok(None)` when the subject moved: read it again.
    pub(super) async fn replace(
        &self,
        pid: &PersistenceId,
        place: &Place,
        kind: &str,
        expected: u64,
        envelope: &Envelope,
        deadline: Instant,
    ) -> Result<Option<u64>, PersistError> {
        let fence = Fenced {
            subject: &place.subject,
            expected,
            msg_id: format!("{kind}.{}.{expected}", place.token),
            rollup: true,
        };
        let stored = self
            .publish_fenced(&fence, Bytes::from(envelope.encode()), deadline)
            .await?;
        let at = match stored {
            Published::Stored(at) => return Ok(Some(at)),
            Published::Duplicate(at) => at,
            Published::WrongLast => {
                // Perhaps an earlier try of this write landed: then it is last.
                match self
                    .last_message(place.shard, &place.subject, deadline)
                    .await?
                {
                    Some(message) => message.sequence,
                    None => return Ok(None),
                }
            }
        };
        let Some(message) = self
            .message_at(place.shard, at, &place.subject, deadline)
            .await?
        else {
            return Ok(None);
        };
        Ok(match self.envelope(&message, pid.as_str()) {
            Ok(stored) if stored.nonce == envelope.nonce => Some(at),
            _ => None,
        })
    }

    /// Saves a snapshot at `seq` unless one at a higher sequence is stored
    /// (which [`load_snapshot`](Inner::load_snapshot) would answer instead).
    pub(super) async fn save_snapshot(
        &self,
        pid: &PersistenceId,
        seq: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        validate_snapshot_sequence(pid, seq)?;
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::Snapshot);
        let nonce = self.nonce();
        let body = self
            .body(&place, &nonce, payload.to_vec(), deadline)
            .await?;
        let damaged = |detail: String| PersistError::CorruptSnapshot {
            persistence_id: pid.clone(),
            sequence_id: seq,
            detail,
        };
        let allowed = [What::Snapshot, What::SnapshotDeleted];
        for _ in 0..MAX_TRIES {
            let current = match self.current(pid, &place, allowed, deadline, &damaged).await {
                Ok(current) => current,
                // A damaged snapshot is replaced: it could never be loaded.
                Err(PersistError::CorruptSnapshot { detail, .. }) => {
                    tracing::warn!(persistence_id = %pid, %detail, "NATS store: replacing a damaged snapshot");
                    self.last_message(place.shard, &place.subject, deadline)
                        .await?
                        .map(|m| Current {
                            stream_seq: m.sequence,
                            // Stands for the damaged one, whose chunks (if
                            // any) are not known: they stay.
                            envelope: tombstone(pid, What::SnapshotDeleted, [0; 16]),
                        })
                }
                Err(e) => return Err(e),
            };
            if let Some(c) = &current
                && c.envelope.what == What::Snapshot
                && c.envelope.highest > seq.0
            {
                // A later snapshot stands; this one could never be loaded.
                self.drop_chunks(&place, &body, deadline).await;
                return Ok(());
            }
            let envelope = Envelope {
                what: What::Snapshot,
                nonce,
                deleted_to: 0,
                highest: seq.0,
                first: 0,
                last: 0,
                fills: 0,
                pid: pid.0.clone(),
                body: body.clone(),
            };
            let expected = current.as_ref().map_or(0, |c| c.stream_seq);
            if let Some(at) = self
                .replace(pid, &place, "s", expected, &envelope, deadline)
                .await?
            {
                let _ = at;
                if let Some(c) = &current {
                    self.drop_chunks(&place, &c.envelope.body, deadline).await;
                }
                return Ok(());
            }
        }
        Err(self.unavailable(
            "saving a snapshot",
            &place.subject,
            &format!("the snapshot moved under {MAX_TRIES} tries in a row"),
        ))
    }

    /// The latest snapshot, if any.
    pub(super) async fn load_snapshot(
        &self,
        pid: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::Snapshot);
        let allowed = [What::Snapshot, What::SnapshotDeleted];
        let mut missed: Option<u64> = None;
        for _ in 0..MAX_TRIES {
            let damaged = |detail: String| PersistError::CorruptSnapshot {
                persistence_id: pid.clone(),
                sequence_id: SequenceId::ZERO,
                detail,
            };
            let Some(current) = self
                .current(pid, &place, allowed, deadline, &damaged)
                .await?
            else {
                return Ok(None);
            };
            if current.envelope.what == What::SnapshotDeleted {
                return Ok(None);
            }
            let seq = SequenceId(current.envelope.highest);
            if !seq.is_storable() {
                return Err(PersistError::CorruptSnapshot {
                    persistence_id: pid.clone(),
                    sequence_id: seq,
                    detail: format!("the snapshot names sequence {}", seq.0),
                });
            }
            match self
                .body_bytes(&place, current.envelope.body, deadline)
                .await?
            {
                Ok(Some(payload)) => {
                    return Ok(Some(SnapshotEntry {
                        sequence_id: seq,
                        payload,
                    }));
                }
                // Replaced while its chunks were read: read the new one;
                // still the same snapshot, its chunk is gone for good.
                Ok(None) if missed == Some(current.stream_seq) => {
                    return Err(PersistError::CorruptSnapshot {
                        persistence_id: pid.clone(),
                        sequence_id: seq,
                        detail: "a chunk of the snapshot is missing".into(),
                    });
                }
                Ok(None) => missed = Some(current.stream_seq),
                Err(detail) => {
                    return Err(PersistError::CorruptSnapshot {
                        persistence_id: pid.clone(),
                        sequence_id: seq,
                        detail,
                    });
                }
            }
        }
        Err(self.unavailable(
            "loading a snapshot",
            &place.subject,
            &format!("the snapshot was replaced under {MAX_TRIES} reads in a row"),
        ))
    }

    /// Deletes the snapshot when its sequence is below `seq` (only the
    /// latest is kept, so that is every snapshot below `seq`).
    pub(super) async fn delete_snapshots_before(
        &self,
        pid: &PersistenceId,
        seq: SequenceId,
    ) -> Result<(), PersistError> {
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::Snapshot);
        let nonce = self.nonce();
        let damaged = |detail: String| PersistError::CorruptSnapshot {
            persistence_id: pid.clone(),
            sequence_id: SequenceId::ZERO,
            detail,
        };
        let allowed = [What::Snapshot, What::SnapshotDeleted];
        for _ in 0..MAX_TRIES {
            let current = self.current(pid, &place, allowed, deadline, &damaged).await;
            let current = match current {
                Ok(Some(c)) if c.envelope.what == What::Snapshot && c.envelope.highest < seq.0 => c,
                Ok(_) => return Ok(()),
                // A damaged snapshot below or at anything is removed too.
                Err(PersistError::CorruptSnapshot { .. }) => {
                    self.tombstone_damaged(
                        pid,
                        &place,
                        "s",
                        What::SnapshotDeleted,
                        nonce,
                        deadline,
                    )
                    .await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let tombstone = tombstone(pid, What::SnapshotDeleted, nonce);
            if let Some(at) = self
                .replace(pid, &place, "s", current.stream_seq, &tombstone, deadline)
                .await?
            {
                let _ = at;
                self.drop_chunks(&place, &current.envelope.body, deadline)
                    .await;
                return Ok(());
            }
        }
        Err(self.unavailable(
            "deleting snapshots",
            &place.subject,
            &format!("the snapshot moved under {MAX_TRIES} tries in a row"),
        ))
    }

    /// Replaces a damaged last value by a tombstone (its chunks, not known,
    /// stay).
    async fn tombstone_damaged(
        &self,
        pid: &PersistenceId,
        place: &Place,
        kind: &str,
        what: What,
        nonce: [u8; 16],
        deadline: Instant,
    ) -> Result<(), PersistError> {
        let Some(message) = self
            .last_message(place.shard, &place.subject, deadline)
            .await?
        else {
            return Ok(());
        };
        let tombstone = tombstone(pid, what, nonce);
        self.replace(pid, place, kind, message.sequence, &tombstone, deadline)
            .await?;
        Ok(())
    }

    /// Saves the durable state of `pid`, replacing the previous one.
    pub(super) async fn save_state(
        &self,
        pid: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::State);
        let nonce = self.nonce();
        let body = self
            .body(&place, &nonce, payload.to_vec(), deadline)
            .await?;
        let envelope = Envelope {
            what: What::State,
            nonce,
            deleted_to: 0,
            highest: 0,
            first: 0,
            last: 0,
            fills: 0,
            pid: pid.0.clone(),
            body: body.clone(),
        };
        self.put_state(pid, &place, &envelope, deadline).await
    }

    /// Writes a state or its tombstone; the previous value's stream sequence
    /// comes from the cache when the last write went through this store.
    async fn put_state(
        &self,
        pid: &PersistenceId,
        place: &Place,
        envelope: &Envelope,
        deadline: Instant,
    ) -> Result<(), PersistError> {
        // The cache saves a read, unless the value replaced has chunks:
        // then it is read, so that exactly its chunks are removed after.
        let mut expected = self
            .cached(&place.subject)
            .filter(|h| !h.chunked)
            .map(|h| h.stream_seq);
        let mut replaced: Option<Envelope> = None;
        for _ in 0..MAX_TRIES {
            let expect = match expected {
                Some(seq) => seq,
                None => {
                    let message = self
                        .last_message(place.shard, &place.subject, deadline)
                        .await?;
                    replaced = message
                        .as_ref()
                        .and_then(|m| self.envelope(m, pid.as_str()).ok());
                    message.map_or(0, |m| m.sequence)
                }
            };
            if let Some(at) = self
                .replace(pid, place, "d", expect, envelope, deadline)
                .await?
            {
                let chunked = matches!(envelope.body, Body::Chunked { .. });
                self.remember(
                    &place.subject,
                    super::Head {
                        stream_seq: at,
                        chunked,
                        ..super::Head::EMPTY
                    },
                );
                if let Some(replaced) = &replaced {
                    self.drop_chunks(place, &replaced.body, deadline).await;
                }
                return Ok(());
            }
            expected = None;
        }
        Err(self.unavailable(
            "saving a state",
            &place.subject,
            &format!("the state moved under {MAX_TRIES} tries in a row"),
        ))
    }

    /// The durable state of `pid`, if any.
    pub(super) async fn load_state(
        &self,
        pid: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::State);
        let damaged = |detail: String| PersistError::CorruptState {
            persistence_id: pid.clone(),
            detail,
        };
        let allowed = [What::State, What::StateDeleted];
        let mut missed: Option<u64> = None;
        for _ in 0..MAX_TRIES {
            let Some(current) = self
                .current(pid, &place, allowed, deadline, &damaged)
                .await?
            else {
                return Ok(None);
            };
            self.remember(
                &place.subject,
                super::Head {
                    stream_seq: current.stream_seq,
                    chunked: matches!(current.envelope.body, Body::Chunked { .. }),
                    ..super::Head::EMPTY
                },
            );
            if current.envelope.what == What::StateDeleted {
                return Ok(None);
            }
            match self
                .body_bytes(&place, current.envelope.body, deadline)
                .await?
            {
                Ok(Some(payload)) => return Ok(Some(payload)),
                // Replaced while its chunks were read, or a chunk gone for
                // good when the same state comes back.
                Ok(None) if missed == Some(current.stream_seq) => {
                    return Err(damaged("a chunk of the state is missing".into()));
                }
                Ok(None) => missed = Some(current.stream_seq),
                Err(detail) => return Err(damaged(detail)),
            }
        }
        Err(self.unavailable(
            "loading a state",
            &place.subject,
            &format!("the state was replaced under {MAX_TRIES} reads in a row"),
        ))
    }

    /// Deletes the durable state of `pid` (a tombstone; nothing when none).
    pub(super) async fn delete_state(&self, pid: &PersistenceId) -> Result<(), PersistError> {
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::State);
        let nonce = self.nonce();
        let Some(message) = self
            .last_message(place.shard, &place.subject, deadline)
            .await?
        else {
            return Ok(());
        };
        if let Ok(envelope) = self.envelope(&message, pid.as_str())
            && envelope.what == What::StateDeleted
        {
            return Ok(());
        }
        self.forget(&place.subject);
        self.put_state(
            pid,
            &place,
            &tombstone(pid, What::StateDeleted, nonce),
            deadline,
        )
        .await
    }
}

fn tombstone(pid: &PersistenceId, what: What, nonce: [u8; 16]) -> Envelope {
    Envelope {
        what,
        nonce,
        deleted_to: 0,
        highest: 0,
        first: 0,
        last: 0,
        fills: 0,
        pid: pid.0.clone(),
        body: Body::None,
    }
}
