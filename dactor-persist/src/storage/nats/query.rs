//! The read side on NATS: events by persistence id on any layout; events
//! across ids and state changes in the order of the one stream of a
//! single-shard store (`shards(1)`), the only total order JetStream keeps.
//!
//! Offsets are pairs (stream sequence of the record, index of the event in
//! it); a stream only appends at its end, so no event is ever added at or
//! below an offset a reader was given. Events deleted by
//! `delete_events_to` leave the queries as they leave the journal: records
//! wholly deleted are purged, and the rest are filtered by each id's
//! current bounds, read fresh for every page.

use std::collections::HashMap;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::Inner;
use super::io::{FIRST_PAUSE, envelope_at, pause};
use super::layout::{Kind, Place};
use super::record::{What, decode_events};
use super::scan::Found;
use crate::query::{EventEnvelope, EventFilter, EventPage, Offset, StateChange, StatePage};
use crate::{PersistError, PersistenceId, SequenceId};

/// The most records one page of a query across ids reads.
const MAX_SCANNED: usize = 10_000;

/// Where a page of an all-events query starts: the record at `seq`, events
/// after index `skip_to` of it.
fn start_of(after: Offset) -> (u64, Option<i64>) {
    let (seq, index) = after.as_pair();
    let seq = seq.max(0).unsigned_abs();
    if after == Offset::START {
        (1, None)
    } else if index == i64::MAX {
        (seq.saturating_add(1), None)
    } else {
        (seq, Some(index))
    }
}

impl Inner {
    /// The error for a query across ids on a store of several shards.
    fn unordered(&self, what: &str) -> PersistError {
        PersistError::IncompatibleStore(format!(
            "NATS store: {what} need one total order of events, which JetStream keeps within one \
             stream; this store spreads ids over {} streams (shards). Open the store with \
             .shards(1) for the read side (a new store: the shard count is fixed for the life \
             of the data)",
            self.layout.shards
        ))
    }

    /// The stream's last sequence now: the horizon of a current query.
    async fn last_seq(&self, shard: usize, deadline: Instant) -> Result<u64, PersistError> {
        let mut wait = FIRST_PAUSE;
        loop {
            match self.streams[shard].get_info().await {
                Ok(info) => return Ok(info.state.last_sequence),
                Err(e) => pause(deadline, &mut wait, e.to_string())
                    .await
                    .map_err(|e| {
                        self.unavailable(
                            "reading the stream's state",
                            &self.layout.stream_name(shard),
                            &e,
                        )
                    })?,
            }
        }
    }

    /// The offset of the newest event now (single shard only).
    pub(super) async fn event_head(&self) -> Result<Offset, PersistError> {
        if self.layout.shards != 1 {
            return Err(self.unordered("queries across ids"));
        }
        let last = self.last_seq(0, self.deadline()).await?;
        Ok(horizon(last))
    }

    /// Up to about `max` events after `after` passing `filter`, in stream
    /// order (single shard only).
    pub(super) async fn events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError> {
        if self.layout.shards != 1 {
            return Err(self.unordered("queries across ids"));
        }
        let deadline = self.deadline();
        let last = self.last_seq(0, deadline).await?;
        let (from, skip_to) = start_of(after);
        let subjects = format!("{}.0.j.*", self.layout.subject_prefix);
        let mut cursor = self.cursor(0, &subjects, from, last, deadline);
        let mut out: Vec<EventEnvelope> = Vec::new();
        let mut deleted: HashMap<PersistenceId, i64> = HashMap::new();
        let mut full_at: Option<Offset> = None;
        // The events met in this page, by id and sequence: a write the
        // server stored twice meets one of them again (see `read_events`).
        let mut met: HashMap<(PersistenceId, i64), EventEnvelope> = HashMap::new();
        let mut scanned = 0usize;
        let give_back = Instant::now() + self.op_timeout / 2;
        while let Some(found) = cursor.next().await? {
            scanned += 1;
            let events = self.record_events(&found, &mut deleted, deadline).await?;
            // A filter that rarely matches must not keep a page reading
            // (and remembering) without end: after so many records, or half
            // the operation's time, the page ends where the scan is.
            let enough = scanned >= MAX_SCANNED || Instant::now() >= give_back;
            let Some(events) = events else {
                if enough {
                    full_at = Some(Offset::pair(to_i64(found.seq), i64::MAX));
                    break;
                }
                continue;
            };
            for (index, mut envelope) in events {
                let key = (envelope.persistence_id.clone(), envelope.sequence_id.0);
                if let Some(earlier) = met.get(&key) {
                    repeat_of(std::slice::from_ref(earlier), &envelope)?;
                    continue;
                }
                met.insert(key, envelope.clone());
                if found.seq == from && skip_to.is_some_and(|skip| index <= skip) {
                    continue;
                }
                envelope.offset = Offset::pair(to_i64(found.seq), index);
                if filter.matches(&envelope) {
                    out.push(envelope);
                }
            }
            if out.len() >= max || enough {
                // A page ends at a record's end: its last offset bounds it.
                full_at = Some(Offset::pair(to_i64(found.seq), i64::MAX));
                break;
            }
        }
        let horizon = full_at.unwrap_or_else(|| horizon(last));
        Ok(EventPage::new(out, horizon))
    }

    /// The events of the journal record `found`, as envelopes (offsets
    /// still to set) with their index in the record, without those its id
    /// has deleted since; `None` for a deletion marker.
    async fn record_events(
        &self,
        found: &Found,
        deleted: &mut HashMap<PersistenceId, i64>,
        deadline: Instant,
    ) -> Result<Option<Vec<(i64, EventEnvelope)>>, PersistError> {
        let damaged = |detail: String| PersistError::CorruptEntry {
            sequence_id: SequenceId::ZERO,
            detail: format!(
                "the journal record at stream sequence {}: {detail}",
                found.seq
            ),
        };
        let envelope = super::record::Envelope::decode(&found.payload).map_err(damaged)?;
        let pid = PersistenceId(envelope.pid.clone());
        let envelope = envelope_at(found.seq, &found.payload, pid.as_str()).map_err(damaged)?;
        match envelope.what {
            What::Events => {}
            What::Deleted => return Ok(None),
            other => return Err(damaged(format!("it is a {other:?} record"))),
        }
        let deleted_to = match deleted.get(&pid) {
            Some(&d) => d,
            None => {
                let place = self.layout.place(&pid, Kind::Journal);
                let d = self
                    .journal_head(&pid, &place, deadline)
                    .await?
                    .0
                    .deleted_to;
                deleted.insert(pid.clone(), d);
                d
            }
        };
        if envelope.last <= deleted_to {
            return Ok(Some(Vec::new()));
        }
        let place = self.layout.place(&pid, Kind::Journal);
        let first = envelope.first;
        let body = match self.body_bytes(&place, envelope.body, deadline).await? {
            Ok(Some(body)) => body,
            Ok(None) => {
                return Err(PersistError::CorruptEntry {
                    sequence_id: SequenceId(first),
                    detail: format!(
                        "the journal of `{pid}`: a chunk of the record at stream sequence {} is \
                         missing",
                        found.seq
                    ),
                });
            }
            Err(detail) => return Err(damaged(detail)),
        };
        let events = decode_events(&body).map_err(damaged)?;
        // Numbered before the deleted ones are left out: an offset names
        // the event's place in its record for good, whatever is deleted.
        Ok(Some(
            events
                .into_iter()
                .enumerate()
                .filter(|(_, e)| e.entry.sequence_id.0 > deleted_to)
                .map(|(index, e)| {
                    (
                        index as i64,
                        EventEnvelope {
                            persistence_id: pid.clone(),
                            sequence_id: e.entry.sequence_id,
                            offset: Offset::START,
                            event_type: e.entry.event_type,
                            payload: e.entry.payload,
                            timestamp: found.time,
                            tags: e.tags,
                            metadata: e.metadata,
                        },
                    )
                })
                .collect(),
        ))
    }

    /// Up to `max` events of one id from `from`, as envelopes, with offsets
    /// of its shard's stream (any layout: for one id they follow sequences).
    pub(super) async fn envelopes(
        &self,
        pid: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError> {
        let deadline = self.deadline();
        let Some((place, head, from)) = self.opening(pid, from, deadline).await? else {
            return Ok(Vec::new());
        };
        if head.fills > 0 {
            // Offsets must follow sequences: a journal with a filled gap
            // has none that do.
            return Err(PersistError::IncompatibleStore(format!(
                "NATS store: the journal of `{pid}` had events written into a gap below its \
                 highest sequence, so its events have no offsets in sequence order; read it with \
                 read_events"
            )));
        }
        // Where a page of this journal's reads left off (shared with
        // `read_events_page`): paging does not start over each time.
        let start = self.hint(&place.subject, from).unwrap_or(1);
        let mut cursor = self.journal_cursor(&place, start, head, deadline);
        let mut deleted = HashMap::from([(pid.clone(), head.deleted_to)]);
        let mut out: Vec<EventEnvelope> = Vec::new();
        let mut upto = 0i64;
        while let Some(found) = cursor.next().await? {
            let Some(events) = self.record_events(&found, &mut deleted, deadline).await? else {
                continue;
            };
            for (index, mut envelope) in events {
                let seq = envelope.sequence_id.0;
                if seq <= upto {
                    // A write the server stored twice (see `read_events`):
                    // read once when it repeats, an error when it differs.
                    repeat_of(&out, &envelope)?;
                    continue;
                }
                upto = seq;
                if seq < from {
                    continue;
                }
                envelope.offset = Offset::pair(to_i64(found.seq), index);
                out.push(envelope);
            }
            if out.len() >= max {
                self.hint_next(
                    &place.subject,
                    upto.saturating_add(1),
                    found.seq.saturating_add(1),
                );
                break;
            }
        }
        Ok(out)
    }

    /// Up to `max` ids with a journal after `after`, in byte order,
    /// optionally of one entity type: every journal subject is listed (the
    /// server's subject index), so each call costs the number of ids.
    pub(super) async fn persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError> {
        let deadline = self.deadline();
        let mut ids: Vec<PersistenceId> = Vec::new();
        for shard in 0..self.streams.len() {
            let filter = format!("{}.{shard}.j.*", self.layout.subject_prefix);
            let mut subjects = self.streams[shard]
                .info_with_subjects(&filter)
                .await
                .map_err(|e| self.unavailable("listing journals", &filter, &e.to_string()))?;
            while let Some(subject) = subjects.next().await {
                let (subject, _count) = subject
                    .map_err(|e| self.unavailable("listing journals", &filter, &e.to_string()))?;
                let token = subject.rsplit('.').next().unwrap_or_default();
                let pid = match super::layout::id_of(token) {
                    Some(id) => PersistenceId(id),
                    // A hashed token: the id is in its records.
                    None => match self.last_message(shard, &subject, deadline).await? {
                        Some(message) => match super::record::Envelope::decode(&message.payload) {
                            Ok(envelope) => PersistenceId(envelope.pid),
                            Err(detail) => {
                                return Err(PersistError::CorruptEntry {
                                    sequence_id: SequenceId::ZERO,
                                    detail: format!("the last record of `{subject}`: {detail}"),
                                });
                            }
                        },
                        None => continue,
                    },
                };
                let wanted = entity_type.is_none_or(|t| pid.entity_type() == t)
                    && after.is_none_or(|a| pid.0.as_bytes() > a.0.as_bytes());
                if wanted {
                    ids.push(pid);
                }
            }
        }
        ids.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        ids.truncate(max);
        Ok(ids)
    }

    /// The offset of the newest state change now (single shard only).
    pub(super) async fn state_head(&self) -> Result<Offset, PersistError> {
        if self.layout.shards != 1 {
            return Err(self.unordered("state-change queries"));
        }
        Ok(horizon(self.last_seq(0, self.deadline()).await?))
    }

    /// The latest state of each id saved after `after`, in save order
    /// (older saves were rolled up), optionally of one entity type.
    pub(super) async fn state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError> {
        if self.layout.shards != 1 {
            return Err(self.unordered("state-change queries"));
        }
        let deadline = self.deadline();
        let last = self.last_seq(0, deadline).await?;
        // A state change's offset is (its stream sequence, 0): resuming
        // after it starts at the next sequence.
        let from = match start_of(after) {
            (seq, Some(_)) => seq.saturating_add(1),
            (seq, None) => seq,
        };
        let subjects = format!("{}.0.d.*", self.layout.subject_prefix);
        let mut cursor = self.cursor(0, &subjects, from, last, deadline);
        let mut out = Vec::new();
        let mut full_at = None;
        while let Some(found) = cursor.next().await? {
            let damaged = |detail: String| PersistError::CorruptState {
                persistence_id: PersistenceId(String::new()),
                detail: format!("the state at stream sequence {}: {detail}", found.seq),
            };
            let envelope = super::record::Envelope::decode(&found.payload).map_err(damaged)?;
            let pid = PersistenceId(envelope.pid.clone());
            if envelope.what != What::State || entity_type.is_some_and(|t| pid.entity_type() != t) {
                continue;
            }
            let place: Place = self.layout.place(&pid, Kind::State);
            let payload = match self.body_bytes(&place, envelope.body, deadline).await? {
                Ok(Some(payload)) => payload,
                // Replaced since (the newer save comes later in the stream),
                // unless it is still the id's state: then a chunk is gone.
                Ok(None) => {
                    let current = self.last_message(0, &place.subject, deadline).await?;
                    if current.is_some_and(|m| m.sequence == found.seq) {
                        return Err(PersistError::CorruptState {
                            persistence_id: pid,
                            detail: "a chunk of the state is missing".into(),
                        });
                    }
                    continue;
                }
                Err(detail) => {
                    return Err(PersistError::CorruptState {
                        persistence_id: pid,
                        detail,
                    });
                }
            };
            out.push(StateChange {
                persistence_id: pid,
                offset: Offset::pair(to_i64(found.seq), 0),
                payload,
                timestamp: found.time,
            });
            if out.len() >= max {
                full_at = Some(Offset::pair(to_i64(found.seq), i64::MAX));
                break;
            }
        }
        Ok(StatePage::new(
            out,
            full_at.unwrap_or_else(|| horizon(last)),
        ))
    }
}

/// Checks that `envelope` repeats the event of its id and sequence already
/// in `out` (when it is there: an event filtered out or on an earlier page
/// cannot be compared, and is skipped).
fn repeat_of(out: &[EventEnvelope], envelope: &EventEnvelope) -> Result<(), PersistError> {
    let earlier = out.iter().rev().find(|e| {
        e.persistence_id == envelope.persistence_id && e.sequence_id == envelope.sequence_id
    });
    match earlier {
        Some(e)
            if (&e.event_type, &e.payload, &e.tags, &e.metadata)
                != (
                    &envelope.event_type,
                    &envelope.payload,
                    &envelope.tags,
                    &envelope.metadata,
                ) =>
        {
            Err(PersistError::CorruptEntry {
                sequence_id: envelope.sequence_id,
                detail: format!(
                    "the journal of `{}` holds two different events at sequence {}: two writers \
                     were both accepted (a NATS server before 2.11 can accept both during a \
                     leader change), and nothing tells which is right",
                    envelope.persistence_id, envelope.sequence_id.0
                ),
            })
        }
        _ => Ok(()),
    }
}

/// Everything up to and including the record at `seq`.
fn horizon(seq: u64) -> Offset {
    if seq == 0 {
        Offset::START
    } else {
        Offset::pair(to_i64(seq), i64::MAX)
    }
}

fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
