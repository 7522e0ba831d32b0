//! Reading the records of one subject in order, from a stream sequence up
//! to another: the first few by single requests to the stream's leader
//! (cheap for a short journal), the rest through an ordered consumer, which
//! streams them without a round trip each. The consumer checks that its
//! deliveries are gapless and in order (and starts over where it left off
//! otherwise); the caller checks what the records say.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::io::{FIRST_PAUSE, pause};
use super::layout::Place;
use super::{Head, Inner};

/// How many records are fetched one request each before a consumer is made.
const SINGLE_GETS: usize = 4;

/// How long the consumer may stay silent before the cursor asks the leader
/// whether anything is left to read.
const STALL: Duration = Duration::from_millis(500);

/// One message a cursor read.
pub(super) struct Found {
    pub(super) seq: u64,
    pub(super) payload: Bytes,
    /// When the server stored it.
    pub(super) time: SystemTime,
}

/// Records of one subject (or of a wildcard of subjects), in stream order,
/// up to a stream sequence.
pub(super) struct Cursor<'a> {
    inner: &'a Inner,
    shard: usize,
    subject: &'a str,
    next: u64,
    to: u64,
    deadline: Instant,
    gets_left: usize,
    consumer: Option<(Ordered, String)>,
    /// The consumer said nothing more was pending: nothing is left up to
    /// `to` (later messages have later sequences).
    drained: bool,
    /// `to` is a message of the subject (a journal's last record), which
    /// the cursor must deliver: ending short of it is an error, not an end.
    must_reach: bool,
    /// The last stream sequence delivered.
    delivered: u64,
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        self.retire();
    }
}

impl Inner {
    /// The records of `subject` at stream sequences `from ..= to`.
    pub(super) fn cursor<'a>(
        &'a self,
        shard: usize,
        subject: &'a str,
        from: u64,
        to: u64,
        deadline: Instant,
    ) -> Cursor<'a> {
        Cursor {
            inner: self,
            shard,
            subject,
            next: from.max(1),
            to,
            deadline,
            gets_left: SINGLE_GETS,
            consumer: None,
            drained: false,
            must_reach: false,
            delivered: 0,
        }
    }
}

impl Inner {
    /// The records of a journal at `place` from stream sequence `from` up
    /// to its `head`, which the cursor must reach: a leader that answers
    /// "nothing more" short of it (one that has not applied its log yet,
    /// just after an election) makes the read fail as unavailable rather
    /// than return part of a journal as the whole.
    pub(super) fn journal_cursor<'a>(
        &'a self,
        place: &'a Place,
        from: u64,
        head: Head,
        deadline: Instant,
    ) -> Cursor<'a> {
        let mut cursor = self.cursor(place.shard, &place.subject, from, head.stream_seq, deadline);
        cursor.must_reach = true;
        cursor
    }
}

impl Cursor<'_> {
    /// The next record; `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<Found>, crate::PersistError> {
        let mut step = self.step().await?;
        if step.is_none() && self.must_reach && self.delivered < self.to {
            // The consumer (its pending count) or the leader said nothing
            // more; ask the leader once more before calling it short.
            let left = self
                .inner
                .next_message(
                    self.shard,
                    self.subject,
                    self.delivered.saturating_add(1),
                    self.deadline,
                )
                .await?;
            if let Some(m) = left.filter(|m| m.sequence <= self.to) {
                self.retire();
                self.drained = false;
                self.gets_left = SINGLE_GETS;
                self.next = m.sequence.saturating_add(1);
                step = Some(Found {
                    seq: m.sequence,
                    payload: m.payload,
                    time: SystemTime::from(m.time),
                });
            }
        }
        match step {
            Some(found) => {
                self.delivered = found.seq;
                Ok(Some(found))
            }
            None if self.must_reach && self.delivered < self.to => Err(self.inner.unavailable(
                "reading records",
                self.subject,
                &format!(
                    "the stream's leader answered records up to stream sequence {} only, \
                         short of the last one, {} (a leader that has not applied its log \
                         yet); try again",
                    self.delivered, self.to
                ),
            )),
            None => Ok(None),
        }
    }

    async fn step(&mut self) -> Result<Option<Found>, crate::PersistError> {
        if self.next > self.to || self.drained {
            return Ok(None);
        }
        if self.consumer.is_none() && self.gets_left > 0 {
            self.gets_left -= 1;
            let found = self
                .inner
                .next_message(self.shard, self.subject, self.next, self.deadline)
                .await?;
            return Ok(self.take(found.map(|m| Found {
                seq: m.sequence,
                payload: m.payload,
                time: SystemTime::from(m.time),
            })));
        }
        if self.consumer.is_none() {
            let opened = open(
                self.inner,
                self.shard,
                self.subject,
                self.next,
                self.deadline,
            )
            .await?;
            self.consumer = Some(opened);
        }
        loop {
            let Some((messages, _)) = self.consumer.as_mut() else {
                return Ok(None);
            };
            let now = Instant::now();
            if now >= self.deadline {
                return Err(self.inner.unavailable(
                    "reading records",
                    self.subject,
                    "the consumer delivered nothing in time",
                ));
            }
            let wait = STALL.min(self.deadline - now);
            match tokio::time::timeout(wait, messages.next()).await {
                Ok(Some(Ok(message))) => {
                    let (seq, time) = match message.info() {
                        Ok(info) => {
                            self.drained = info.pending == 0;
                            (info.stream_sequence, SystemTime::from(info.published))
                        }
                        Err(e) => {
                            return Err(self.inner.unavailable(
                                "reading records",
                                self.subject,
                                &format!("a delivery without its sequence: {e}"),
                            ));
                        }
                    };
                    if seq < self.next {
                        continue; // delivered again after the consumer started over
                    }
                    let payload = message.payload.clone();
                    return Ok(self.take(Some(Found { seq, payload, time })));
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(subject = self.subject, error = %e, "NATS store: consumer error");
                    // The ordered consumer starts over by itself; a pause
                    // keeps a broken connection from spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(None) => {
                    return Err(self.inner.unavailable(
                        "reading records",
                        self.subject,
                        "the consumer ended early",
                    ));
                }
                Err(_silent) => {
                    // Nothing more to deliver, or a consumer that stalled
                    // (seen after every node of a cluster restarted): ask
                    // the leader, and go on from its answer with a new
                    // consumer later.
                    let left = self
                        .inner
                        .next_message(self.shard, self.subject, self.next, self.deadline)
                        .await?;
                    self.retire();
                    self.gets_left = SINGLE_GETS;
                    return Ok(self.take(left.map(|m| Found {
                        seq: m.sequence,
                        payload: m.payload,
                        time: SystemTime::from(m.time),
                    })));
                }
            }
        }
    }

    /// Drops the consumer, and asks the server to delete it in the
    /// background (it would drop the idle consumer after 30 s; many
    /// recoveries would pile them up meanwhile).
    fn retire(&mut self) {
        if let Some((_, name)) = self.consumer.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let stream = self.inner.streams[self.shard].clone();
            handle.spawn(async move {
                let _ = stream.delete_consumer(&name).await;
            });
        }
    }

    /// Moves past `found`, or to the end when there is none within range.
    fn take(&mut self, found: Option<Found>) -> Option<Found> {
        match found {
            Some(found) if found.seq >= self.next && found.seq <= self.to => {
                self.next = found.seq.saturating_add(1);
                Some(found)
            }
            _ => {
                self.next = self.to.saturating_add(1);
                None
            }
        }
    }
}

/// An ordered consumer of `subject` from stream sequence `from` (a
/// function, not a method: the cursor holds a consumer that is not `Sync`).
async fn open(
    inner: &Inner,
    shard: usize,
    subject: &str,
    from: u64,
    deadline: Instant,
) -> Result<(Ordered, String), crate::PersistError> {
    let mut wait = FIRST_PAUSE;
    loop {
        let config = OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        let error = match inner.streams[shard].create_consumer(config).await {
            Ok(consumer) => {
                let name = consumer.cached_info().name.clone();
                match consumer.messages().await {
                    Ok(messages) => return Ok((messages, name)),
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        pause(deadline, &mut wait, error)
            .await
            .map_err(|e| inner.unavailable("reading records", subject, &e))?;
    }
}
