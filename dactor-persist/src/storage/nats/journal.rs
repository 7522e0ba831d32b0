//! Journals: one record per batch on the id's journal subject, appended
//! under the fence, read back record by record, deleted by a marker and a
//! purge.
//!
//! Every record carries the journal's bounds after it (`deleted_to`,
//! `highest`) and how many batches so far went into a gap below the highest
//! sequence (`fills`), so the last record of the subject answers
//! [`read_bounds`](crate::JournalStorage::read_bounds) alone. While `fills`
//! is 0 (always, for an actor: it writes at its end) records are in
//! sequence order and a page is read record by record; after a gap was
//! filled, a read scans the journal whole and sorts it.
//!
//! The subject is never purged to empty: its last record always stays, and
//! with it the fence (an empty subject would accept a write expecting
//! nothing).

use std::collections::BTreeSet;

use bytes::Bytes;
use tokio::time::Instant;

use super::io::{Fenced, Published, envelope_at};
use super::layout::{Kind, Place};
use super::record::{Body, Envelope, OutEvent, StoredEvent, What, decode_events, encode_events};
use super::{Head, Inner};
use crate::storage::{NewEvent, extras, validate_batch};
use crate::{PersistError, PersistenceId, SequenceId};

/// How many times a write is tried against a journal that moved under it
/// (other writers, a deletion) before it gives up.
const MAX_FENCE_TRIES: usize = 64;

/// A record of a journal, read back and checked.
#[derive(Clone)]
struct Record {
    stream_seq: u64,
    envelope: Envelope,
}

impl Inner {
    /// The journal's last record, fresh from the leader: its head, and the
    /// nonce of the write that stored it.
    pub(super) async fn journal_head(
        &self,
        pid: &PersistenceId,
        place: &Place,
        deadline: Instant,
    ) -> Result<(Head, Option<[u8; 16]>), PersistError> {
        let Some(message) = self
            .last_message(place.shard, &place.subject, deadline)
            .await?
        else {
            let head = Head::EMPTY;
            self.remember(&place.subject, head);
            return Ok((head, None));
        };
        let envelope = self
            .envelope(&message, pid.as_str())
            .and_then(|e| check_record(&e).map(|()| e))
            .map_err(|detail| PersistError::CorruptEntry {
                sequence_id: SequenceId::ZERO,
                detail: format!("the journal of `{pid}` ends in a damaged record: {detail}"),
            })?;
        let head = Head {
            stream_seq: message.sequence,
            highest: envelope.highest,
            deleted_to: envelope.deleted_to,
            fills: envelope.fills,
            chunked: false,
        };
        self.remember(&place.subject, head);
        Ok((head, Some(envelope.nonce)))
    }

    /// Appends `events` as one record, under the fence.
    pub(super) async fn append(
        &self,
        pid: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        if events.is_empty() {
            return Ok(());
        }
        let plain: Vec<(SequenceId, &str, &[u8])> = events
            .iter()
            .map(|e| (e.sequence_id, e.event_type, e.payload))
            .collect();
        validate_batch(pid, &plain)?;
        let mut seqs: Vec<i64> = plain.iter().map(|e| e.0.0).collect();
        seqs.sort_unstable();
        let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::Journal);
        let mut head = match self.cached(&place.subject) {
            Some(head) => head,
            None => self.journal_head(pid, &place, deadline).await?.0,
        };
        // Checked before the body's chunks are uploaded, and again only
        // when the journal moved.
        self.check_taken(pid, &place, &seqs, head, deadline).await?;
        let mut checked = head;
        let mut out: Vec<OutEvent<'_>> = events
            .iter()
            .map(|e| OutEvent {
                seq: e.sequence_id.0,
                event_type: e.event_type,
                payload: e.payload,
                tags: extras::encode_tags(e.tags),
                metadata: e.some_metadata(),
            })
            .collect();
        // A record holds its events in ascending order, whatever the batch's.
        out.sort_by_key(|e| e.seq);
        let nonce = self.nonce();
        let body = self
            .body(&place, &nonce, encode_events(&out), deadline)
            .await?;
        for _ in 0..MAX_FENCE_TRIES {
            if head != checked {
                self.check_taken(pid, &place, &seqs, head, deadline).await?;
                checked = head;
            }
            let fill = first <= head.highest;
            let after = Head {
                stream_seq: 0,
                highest: head.highest.max(last),
                deleted_to: head.deleted_to,
                fills: head.fills.saturating_add(u64::from(fill)),
                chunked: false,
            };
            let envelope = Envelope {
                what: What::Events,
                nonce,
                deleted_to: after.deleted_to,
                highest: after.highest,
                first,
                last,
                fills: after.fills,
                pid: pid.0.clone(),
                body: body.clone(),
            };
            let fence = fence(&place, head.stream_seq);
            let stored = self
                .publish_fenced(&fence, Bytes::from(envelope.encode()), deadline)
                .await?;
            let at = match stored {
                Published::Stored(at) => Some(at),
                Published::Duplicate(at) => self.ours(pid, &place, at, &nonce, deadline).await?,
                Published::WrongLast => None,
            };
            if let Some(at) = at {
                self.remember(
                    &place.subject,
                    Head {
                        stream_seq: at,
                        ..after
                    },
                );
                return Ok(());
            }
            let (fresh, last_nonce) = self.journal_head(pid, &place, deadline).await?;
            if last_nonce == Some(nonce) {
                // An earlier try of this write landed; its answer was lost.
                return Ok(());
            }
            head = fresh;
        }
        Err(self.unavailable(
            "a write",
            &place.subject,
            &format!("the journal moved under {MAX_FENCE_TRIES} tries in a row"),
        ))
    }

    /// Refuses a batch with a sequence the journal at `head` holds or held:
    /// at or below `deleted_to`, or stored in a record. Names the lowest
    /// such sequence of the last record when it has one, else the lowest.
    /// Reads records only when the batch goes below the highest sequence,
    /// and the whole journal only for a write into a gap.
    async fn check_taken(
        &self,
        pid: &PersistenceId,
        place: &Place,
        sorted: &[i64],
        head: Head,
        deadline: Instant,
    ) -> Result<(), PersistError> {
        let conflict = |seq: i64| PersistError::SequenceConflict {
            persistence_id: pid.clone(),
            sequence_id: SequenceId(seq),
        };
        let below: Vec<i64> = sorted
            .iter()
            .copied()
            .filter(|&s| s <= head.highest)
            .collect();
        let Some(&lowest) = below.first() else {
            return Ok(());
        };
        if lowest <= head.deleted_to {
            return Err(conflict(lowest));
        }
        let wanted: BTreeSet<i64> = below.iter().copied().collect();
        let highest_wanted = below[below.len() - 1];
        // The last record first: a writer that lost a race (the common way
        // here) finds its sequences there, and a conflict needs no scan.
        if let Some(message) = self
            .message_at(place.shard, head.stream_seq, &place.subject, deadline)
            .await?
        {
            let record = record(pid, message.sequence, &message.payload)?;
            let e = &record.envelope;
            if e.what == What::Events && e.last >= lowest && e.first <= highest_wanted {
                let taken = self
                    .events_of(pid, place, record, deadline)
                    .await?
                    .iter()
                    .map(|event| event.entry.sequence_id.0)
                    .filter(|seq| wanted.contains(seq))
                    .min();
                if let Some(seq) = taken {
                    return Err(conflict(seq));
                }
            }
        }
        // A write into a gap: every record is read (never the runtime's way).
        // Streamed record by record: only the candidates' bodies are read.
        let mut taken: Option<i64> = None;
        let mut cursor = self.journal_cursor(place, 1, head, deadline);
        while let Some(super::scan::Found { seq, payload, .. }) = cursor.next().await? {
            let record = record(pid, seq, &payload)?;
            let e = &record.envelope;
            if e.what != What::Events || e.last < lowest || e.first > highest_wanted {
                continue;
            }
            for event in self.events_of(pid, place, record, deadline).await? {
                let seq = event.entry.sequence_id.0;
                if wanted.contains(&seq) {
                    taken = Some(taken.map_or(seq, |t| t.min(seq)));
                }
            }
        }
        match taken {
            Some(seq) => Err(conflict(seq)),
            None => Ok(()),
        }
    }

    /// Every record of the journal up to the head's, in stream order.
    async fn records(
        &self,
        pid: &PersistenceId,
        place: &Place,
        head: Head,
        deadline: Instant,
    ) -> Result<Vec<Record>, PersistError> {
        let mut out = Vec::new();
        let mut cursor = self.journal_cursor(place, 1, head, deadline);
        while let Some(super::scan::Found { seq, payload, .. }) = cursor.next().await? {
            out.push(record(pid, seq, &payload)?);
        }
        Ok(out)
    }

    /// The events of a batch record, its chunks fetched, checked against
    /// its envelope.
    async fn events_of(
        &self,
        pid: &PersistenceId,
        place: &Place,
        record: Record,
        deadline: Instant,
    ) -> Result<Vec<StoredEvent>, PersistError> {
        let Record {
            stream_seq,
            envelope,
        } = record;
        let damaged = |detail: String| PersistError::CorruptEntry {
            sequence_id: SequenceId(envelope.first),
            detail: format!(
                "the journal of `{pid}`: the record at stream sequence {stream_seq}: {detail}"
            ),
        };
        let body = match self
            .body_bytes(place, envelope.body.clone(), deadline)
            .await?
        {
            Ok(Some(body)) => body,
            Ok(None) => return Err(damaged("a chunk of it is missing".into())),
            Err(detail) => return Err(damaged(detail)),
        };
        let events = decode_events(&body).map_err(damaged)?;
        check_events(&events, &envelope).map_err(damaged)?;
        Ok(events)
    }

    /// `Some(at)` when the message at stream sequence `at` is the write with
    /// `nonce` (a retry of ours that the server deduplicated).
    async fn ours(
        &self,
        pid: &PersistenceId,
        place: &Place,
        at: u64,
        nonce: &[u8; 16],
        deadline: Instant,
    ) -> Result<Option<u64>, PersistError> {
        let Some(message) = self
            .message_at(place.shard, at, &place.subject, deadline)
            .await?
        else {
            return Ok(None);
        };
        Ok(match self.envelope(&message, pid.as_str()) {
            Ok(envelope) if envelope.nonce == *nonce => Some(at),
            _ => None,
        })
    }

    /// The events of `pid` from `from` on: record by record while records
    /// are in sequence order, stopping after the record that brings the
    /// page to `max` events; the whole journal, sorted, after a gap fill.
    pub(super) async fn read_page(
        &self,
        pid: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<StoredEvent>, PersistError> {
        let deadline = self.deadline();
        let Some((place, head, from)) = self.opening(pid, from, deadline).await? else {
            return Ok(Vec::new());
        };
        if head.fills > 0 {
            return self.read_sorted(pid, &place, head, from, deadline).await;
        }
        let mut out: Vec<StoredEvent> = Vec::new();
        let start = self.hint(&place.subject, from).unwrap_or(1);
        let mut cursor = self.journal_cursor(&place, start, head, deadline);
        let mut prev_last = 0i64;
        // The previous batch record, and its events once decoded: a record
        // that repeats it is a write the server stored twice.
        let mut prev: Option<(Record, Option<Vec<StoredEvent>>)> = None;
        // The cursor's stream sequences only go up, to the head: this ends.
        while let Some(super::scan::Found { seq, payload, .. }) = cursor.next().await? {
            let record = record(pid, seq, &payload)?;
            let next = seq.saturating_add(1);
            let e = &record.envelope;
            if e.what == What::Deleted {
                continue;
            }
            let last = e.last;
            let mut decoded = None;
            let mut repeated_upto = 0i64;
            if e.first <= prev_last {
                let events = self
                    .events_of(pid, &place, record.clone(), deadline)
                    .await?;
                let before = match prev.take() {
                    Some((_, Some(events))) => events,
                    Some((earlier, None)) => self.events_of(pid, &place, earlier, deadline).await?,
                    None => Vec::new(),
                };
                repeats(pid, &events, &before, prev_last, seq)?;
                decoded = Some(events);
                repeated_upto = prev_last;
            }
            prev_last = prev_last.max(last);
            if last < from && decoded.is_none() {
                prev = Some((record, None));
                continue;
            }
            let events = match decoded {
                Some(events) => events,
                None => {
                    self.events_of(pid, &place, record.clone(), deadline)
                        .await?
                }
            };
            out.extend(
                events
                    .iter()
                    .filter(|e| {
                        e.entry.sequence_id.0 > repeated_upto && e.entry.sequence_id.0 >= from
                    })
                    .cloned(),
            );
            prev = Some((record, Some(events)));
            if out.len() >= max {
                self.hint_next(&place.subject, prev_last.saturating_add(1), next);
                break;
            }
        }
        Ok(out)
    }

    /// What a read of `pid`'s events from `from` starts from: the journal's
    /// place, its head (fresh from the leader), and the first sequence
    /// still stored at or after `from`; `None` when there is nothing to read.
    pub(super) async fn opening(
        &self,
        pid: &PersistenceId,
        from: SequenceId,
        deadline: Instant,
    ) -> Result<Option<(Place, Head, i64)>, PersistError> {
        let place = self.layout.place(pid, Kind::Journal);
        let (head, _) = self.journal_head(pid, &place, deadline).await?;
        let from = from.0.max(head.deleted_to.saturating_add(1)).max(1);
        if head.stream_seq == 0 || from > head.highest {
            return Ok(None);
        }
        Ok(Some((place, head, from)))
    }

    /// Every event from `from` on, from every record, sorted; a sequence
    /// stored twice is damage (the fence stores each once).
    async fn read_sorted(
        &self,
        pid: &PersistenceId,
        place: &Place,
        head: Head,
        from: i64,
        deadline: Instant,
    ) -> Result<Vec<StoredEvent>, PersistError> {
        let mut out: Vec<StoredEvent> = Vec::new();
        for record in self.records(pid, place, head, deadline).await? {
            let e = &record.envelope;
            if e.what != What::Events || e.last < from {
                continue;
            }
            let events = self.events_of(pid, place, record, deadline).await?;
            out.extend(events.into_iter().filter(|e| e.entry.sequence_id.0 >= from));
        }
        // Stable: of a write stored twice, the first copy stays.
        out.sort_by_key(|e| e.entry.sequence_id);
        if let Some(pair) = out
            .windows(2)
            .find(|w| w[0].entry.sequence_id == w[1].entry.sequence_id && w[0] != w[1])
        {
            return Err(two_writes(pid, pair[0].entry.sequence_id.0, None));
        }
        out.dedup();
        Ok(out)
    }

    /// Deletes the events of `pid` up to `to` (capped at the highest): a
    /// marker record saying so, then a purge of the records it covers whole.
    pub(super) async fn delete_to(
        &self,
        pid: &PersistenceId,
        to: SequenceId,
    ) -> Result<(), PersistError> {
        let deadline = self.deadline();
        let place = self.layout.place(pid, Kind::Journal);
        let nonce = self.nonce();
        let mut head = self.journal_head(pid, &place, deadline).await?.0;
        for _ in 0..MAX_FENCE_TRIES {
            let target = to.0.min(head.highest);
            if target <= head.deleted_to {
                return Ok(());
            }
            let marker = Envelope {
                what: What::Deleted,
                nonce,
                deleted_to: target,
                highest: head.highest,
                first: 0,
                last: 0,
                fills: head.fills,
                pid: pid.0.clone(),
                body: Body::None,
            };
            let fence = fence(&place, head.stream_seq);
            let stored = self
                .publish_fenced(&fence, Bytes::from(marker.encode()), deadline)
                .await?;
            let at = match stored {
                Published::Stored(at) => Some(at),
                Published::Duplicate(at) => self.ours(pid, &place, at, &nonce, deadline).await?,
                Published::WrongLast => None,
            };
            let at = match at {
                Some(at) => at,
                None => {
                    let (fresh, last_nonce) = self.journal_head(pid, &place, deadline).await?;
                    if last_nonce != Some(nonce) {
                        head = fresh;
                        continue;
                    }
                    fresh.stream_seq
                }
            };
            self.remember(
                &place.subject,
                Head {
                    stream_seq: at,
                    deleted_to: target,
                    ..head
                },
            );
            return self
                .purge_deleted(pid, &place, target, head.highest, at, deadline)
                .await;
        }
        Err(self.unavailable(
            "a deletion",
            &place.subject,
            &format!("the journal moved under {MAX_FENCE_TRIES} tries in a row"),
        ))
    }

    /// Purges the leading records wholly at or below `deleted_to`, and their
    /// chunks; the marker at `marker` and every record from the first one
    /// still needed stay (reads skip what they hold at or below
    /// `deleted_to`).
    async fn purge_deleted(
        &self,
        pid: &PersistenceId,
        place: &Place,
        deleted_to: i64,
        highest: i64,
        marker: u64,
        deadline: Instant,
    ) -> Result<(), PersistError> {
        let mut keep_from = marker;
        // The bodies of the records removed: their chunks go too, and only
        // theirs (a later record's chunks may sit below the marker).
        let mut removed: Vec<Body> = Vec::new();
        let mut cursor = self.cursor(
            place.shard,
            &place.subject,
            1,
            marker.saturating_sub(1),
            deadline,
        );
        while let Some(super::scan::Found { seq, payload, .. }) = cursor.next().await? {
            let Ok(record) = record(pid, seq, &payload) else {
                // A damaged record is left for reads to report.
                keep_from = seq;
                break;
            };
            let e = &record.envelope;
            if e.what == What::Events && e.last > deleted_to {
                keep_from = seq;
                break;
            }
            removed.push(record.envelope.body);
        }
        drop(cursor);
        if keep_from == marker && deleted_to < highest {
            // Records past `deleted_to` exist below the marker, and the
            // scan met none: the leader answered short. Purging below the
            // marker would take them. The marker alone already hides what
            // was deleted (reads skip it), so the deletion stands; only the
            // space waits for a later deletion's purge.
            tracing::warn!(
                persistence_id = %pid,
                "NATS store: the stream's leader did not show the records to keep; deleted \
                 events are hidden but not purged yet"
            );
            return Ok(());
        }
        self.purge_below(place.shard, &place.subject, keep_from, deadline)
            .await?;
        for body in &removed {
            self.drop_chunks(place, body, deadline).await;
        }
        self.forget_hints(&place.subject);
        Ok(())
    }
}

/// Checks that the events of the record at stream sequence `at` up to
/// `upto` repeat those of the record before it (`before`): a write the
/// server stored twice. On servers before 2.11 a write in flight during a
/// leader change and its retry can both be stored (the expected sequence is
/// checked before proposing, not when applying; the message id's
/// deduplication is rebuilt from applied messages only). A repeat of the
/// same events is the same write, read once; different events are two
/// writers' and nothing can tell which is right.
fn repeats(
    pid: &PersistenceId,
    events: &[StoredEvent],
    before: &[StoredEvent],
    upto: i64,
    at: u64,
) -> Result<(), PersistError> {
    for event in events.iter().filter(|e| e.entry.sequence_id.0 <= upto) {
        let seq = event.entry.sequence_id;
        let same = before
            .binary_search_by_key(&seq, |e| e.entry.sequence_id)
            .is_ok_and(|i| before[i] == *event);
        if !same {
            return Err(two_writes(pid, seq.0, Some(at)));
        }
    }
    Ok(())
}

/// Two different events were stored at `seq`.
fn two_writes(pid: &PersistenceId, seq: i64, at: Option<u64>) -> PersistError {
    let place = at.map_or(String::new(), |at| {
        format!(" (the second at stream sequence {at})")
    });
    PersistError::CorruptEntry {
        sequence_id: SequenceId(seq),
        detail: format!(
            "the journal of `{pid}` holds two different events at sequence {seq}{place}: two \
             writers were both accepted (a NATS server before 2.11 can accept both during a \
             leader change), and nothing tells which is right"
        ),
    }
}

/// Decodes and checks the journal record stored at stream sequence `seq`.
fn record(pid: &PersistenceId, seq: u64, payload: &[u8]) -> Result<Record, PersistError> {
    let envelope = envelope_at(seq, payload, pid.as_str())
        .and_then(|e| check_record(&e).map(|()| e))
        .map_err(|detail| PersistError::CorruptEntry {
            sequence_id: SequenceId::ZERO,
            detail: format!("the journal of `{pid}`: {detail}"),
        })?;
    Ok(Record {
        stream_seq: seq,
        envelope,
    })
}

/// The fence of a write expecting the subject's last message at `expected`:
/// the message id is derived from that expectation, so two writers with the
/// same expectation are one write to the server (2.9 and 2.10 do not check
/// the expectation when applying a replicated write, only on the leader
/// before proposing it).
fn fence(place: &Place, expected: u64) -> Fenced<'_> {
    Fenced {
        subject: &place.subject,
        expected,
        msg_id: format!("j.{}.{expected}", place.token),
        rollup: false,
    }
}

/// A journal record must be events or a marker, with sane bounds.
fn check_record(e: &Envelope) -> Result<(), String> {
    let sane = e.deleted_to >= 0
        && e.deleted_to <= e.highest
        && (e.highest == 0 || SequenceId(e.highest).is_storable());
    if !sane {
        return Err(format!(
            "its bounds are impossible (deleted to {}, highest {})",
            e.deleted_to, e.highest
        ));
    }
    match e.what {
        What::Deleted => Ok(()),
        What::Events if e.first >= 1 && e.first <= e.last && e.last <= e.highest => Ok(()),
        What::Events => Err(format!(
            "its events {} to {} do not fit its highest {}",
            e.first, e.last, e.highest
        )),
        other => Err(format!("it is a {other:?} record")),
    }
}

/// The events of a record must be what its envelope says: ascending, from
/// `first` to `last`.
fn check_events(events: &[StoredEvent], envelope: &Envelope) -> Result<(), String> {
    let (Some(head), Some(tail)) = (events.first(), events.last()) else {
        return Err("it holds no events".into());
    };
    if head.entry.sequence_id.0 != envelope.first || tail.entry.sequence_id.0 != envelope.last {
        return Err(format!(
            "it holds events {} to {}, its envelope says {} to {}",
            head.entry.sequence_id.0, tail.entry.sequence_id.0, envelope.first, envelope.last
        ));
    }
    if events
        .windows(2)
        .any(|w| w[0].entry.sequence_id >= w[1].entry.sequence_id)
    {
        return Err("its events are not in ascending order".into());
    }
    Ok(())
}
