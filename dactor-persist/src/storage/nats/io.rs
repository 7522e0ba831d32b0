//! The store's few operations on the server, each retried through leader
//! elections and lost connections until the operation's deadline: a fenced
//! publish, the last message of a subject, the next one from a sequence,
//! one message by sequence, a purge; and chunked bodies on top of them.

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use bytes::Bytes;
use tokio::time::Instant;

use super::Inner;
use super::layout::Place;
use super::record::{Body, ChunkRef, Envelope, MAX_BODY};
use crate::PersistError;

/// What a fenced publish came to.
pub(super) enum Published {
    /// Stored at this stream sequence.
    Stored(u64),
    /// A message with the same id was already stored, at this sequence: our
    /// own earlier try, or a rival's write with the same expectation.
    Duplicate(u64),
    /// The subject's last message is no longer the one expected.
    WrongLast,
}

/// A fenced publish: the expected last sequence of the subject, the message
/// id that makes two writers with one expectation one write, and optionally
/// a roll-up (the subject keeps only this message).
pub(super) struct Fenced<'a> {
    pub(super) subject: &'a str,
    pub(super) expected: u64,
    pub(super) msg_id: String,
    pub(super) rollup: bool,
}

/// The first pause between tries of a request; it doubles up to `MAX_PAUSE`.
pub(super) const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// Sleeps before the next try, or answers the error when the deadline is
/// near: the one retry schedule of every request the store makes.
pub(super) async fn pause(
    deadline: Instant,
    pause: &mut Duration,
    error: String,
) -> Result<(), String> {
    let now = Instant::now();
    if now + *pause >= deadline {
        return Err(error);
    }
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(MAX_PAUSE);
    Ok(())
}

impl Inner {
    /// The deadline of an operation starting now.
    pub(super) fn deadline(&self) -> Instant {
        Instant::now() + self.op_timeout
    }

    /// The error for an operation that could not reach the server in time.
    pub(super) fn unavailable(&self, what: &str, subject: &str, error: &str) -> PersistError {
        PersistError::StorageUnavailable(format!(
            "NATS store: {what} on `{subject}` failed within {:?}: {error}",
            self.op_timeout
        ))
    }

    /// Publishes `payload` fenced.
    pub(super) async fn publish_fenced(
        &self,
        fence: &Fenced<'_>,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Published, PersistError> {
        let mut wait = FIRST_PAUSE;
        loop {
            let mut message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(&fence.msg_id)
                .expected_last_subject_sequence(fence.expected);
            if fence.rollup {
                message = message.header(async_nats::header::NATS_ROLLUP, "sub");
            }
            let error = match self
                .js
                .send_publish(fence.subject.to_owned(), message)
                .await
            {
                Ok(ack) => match ack.await {
                    Ok(ack) if ack.duplicate => return Ok(Published::Duplicate(ack.sequence)),
                    Ok(ack) => return Ok(Published::Stored(ack.sequence)),
                    Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                        return Ok(Published::WrongLast);
                    }
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if error.kind() == PublishErrorKind::MaxPayloadExceeded {
                return Err(PersistError::InvalidInput {
                    persistence_id: crate::PersistenceId(fence.subject.to_owned()),
                    detail: format!("the record is larger than the server takes: {error}"),
                });
            }
            pause(deadline, &mut wait, error.to_string())
                .await
                .map_err(|e| self.unavailable("a write", fence.subject, &e))?;
        }
    }

    /// The last message on `subject`, from the stream's leader.
    pub(super) async fn last_message(
        &self,
        shard: usize,
        subject: &str,
        deadline: Instant,
    ) -> Result<Option<StreamMessage>, PersistError> {
        self.last_on(&self.streams[shard], subject, deadline).await
    }

    /// The last message on `subject` of `stream` (a shard's, or the leases').
    pub(super) async fn last_on(
        &self,
        stream: &Stream,
        subject: &str,
        deadline: Instant,
    ) -> Result<Option<StreamMessage>, PersistError> {
        let mut wait = FIRST_PAUSE;
        loop {
            match stream.get_last_raw_message_by_subject(subject).await {
                Ok(message) => return Ok(Some(message)),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
                Err(e) => pause(deadline, &mut wait, e.to_string())
                    .await
                    .map_err(|e| self.unavailable("reading the last record", subject, &e))?,
            }
        }
    }

    /// The first message on `subject` at stream sequence `from` or later.
    pub(super) async fn next_message(
        &self,
        shard: usize,
        subject: &str,
        from: u64,
        deadline: Instant,
    ) -> Result<Option<StreamMessage>, PersistError> {
        let mut wait = FIRST_PAUSE;
        loop {
            match self.streams[shard]
                .get_first_raw_message_by_subject(subject, from)
                .await
            {
                Ok(message) => return Ok(Some(message)),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
                Err(e) => pause(deadline, &mut wait, e.to_string())
                    .await
                    .map_err(|e| self.unavailable("reading records", subject, &e))?,
            }
        }
    }

    /// The message at stream sequence `seq`, if it is still there.
    pub(super) async fn message_at(
        &self,
        shard: usize,
        seq: u64,
        subject: &str,
        deadline: Instant,
    ) -> Result<Option<StreamMessage>, PersistError> {
        let mut wait = FIRST_PAUSE;
        loop {
            match self.streams[shard].get_raw_message(seq).await {
                Ok(message) => return Ok(Some(message)),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
                Err(e) => pause(deadline, &mut wait, e.to_string())
                    .await
                    .map_err(|e| self.unavailable("reading a record", subject, &e))?,
            }
        }
    }

    /// Removes the messages of `subject` below stream sequence `below`.
    pub(super) async fn purge_below(
        &self,
        shard: usize,
        subject: &str,
        below: u64,
        deadline: Instant,
    ) -> Result<(), PersistError> {
        // The server reads a bound of 0 or 1 as "no bound": everything on
        // the subject would go. Below 2 there is nothing to remove anyway.
        if below <= 1 {
            return Ok(());
        }
        let mut wait = FIRST_PAUSE;
        loop {
            match self.streams[shard]
                .purge()
                .filter(subject)
                .sequence(below)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => pause(deadline, &mut wait, e.to_string())
                    .await
                    .map_err(|e| self.unavailable("removing old records", subject, &e))?,
            }
        }
    }

    /// The largest body written inline; above it a body goes in chunks.
    pub(super) fn inline_limit(&self) -> usize {
        self.chunk_size
    }

    /// The body for `bytes`: inline, or uploaded in chunks to `place.chunks`
    /// (each chunk's publish deduplicated by an id of the write's nonce, so
    /// a retry does not store it twice).
    pub(super) async fn body(
        &self,
        place: &Place,
        nonce: &[u8; 16],
        bytes: Vec<u8>,
        deadline: Instant,
    ) -> Result<Body, PersistError> {
        if bytes.len() <= self.inline_limit() {
            return Ok(Body::Inline(bytes));
        }
        if bytes.len() as u64 > MAX_BODY {
            return Err(PersistError::InvalidInput {
                persistence_id: crate::PersistenceId(place.subject.clone()),
                detail: format!(
                    "a record of {} bytes is above the NATS store's limit of {MAX_BODY} bytes",
                    bytes.len()
                ),
            });
        }
        let crc = crc32fast::hash(&bytes);
        let len = bytes.len() as u64;
        let bytes = Bytes::from(bytes);
        let mut chunks = Vec::new();
        let nonce = hex(nonce);
        for (i, start) in (0..bytes.len()).step_by(self.chunk_size).enumerate() {
            let end = (start + self.chunk_size).min(bytes.len());
            let part = bytes.slice(start..end);
            let chunk_crc = crc32fast::hash(&part);
            let mut wait = FIRST_PAUSE;
            let seq = loop {
                let message = PublishMessage::build()
                    .payload(part.clone())
                    .message_id(format!("c.{nonce}.{i}"));
                let error = match self.js.send_publish(place.chunks.clone(), message).await {
                    Ok(ack) => match ack.await {
                        Ok(ack) => break ack.sequence,
                        Err(e) => e.to_string(),
                    },
                    Err(e) => e.to_string(),
                };
                pause(deadline, &mut wait, error)
                    .await
                    .map_err(|e| self.unavailable("writing a chunk", &place.chunks, &e))?;
            };
            chunks.push(ChunkRef {
                seq,
                len: (end - start) as u32,
                crc: chunk_crc,
            });
        }
        Ok(Body::Chunked { len, crc, chunks })
    }

    /// Best effort: removes the chunks `body` lists, one by one (a value
    /// replaced, records deleted, a write that was not stored). Only the
    /// chunks named go: others' chunks on the subject are never touched.
    pub(super) async fn drop_chunks(&self, place: &Place, body: &Body, deadline: Instant) {
        if let Body::Chunked { chunks, .. } = body {
            for chunk in chunks {
                if Instant::now() >= deadline {
                    break;
                }
                let _ = self.streams[place.shard].delete_message(chunk.seq).await;
            }
        }
    }

    /// The bytes of a body, its chunks fetched and checked. `Ok(None)` when
    /// a chunk is gone (replaced by a newer write since the record was read:
    /// read the record again); `Err(detail)` when something is damaged.
    pub(super) async fn body_bytes(
        &self,
        place: &Place,
        body: Body,
        deadline: Instant,
    ) -> Result<Result<Option<Vec<u8>>, String>, PersistError> {
        let (len, crc, chunks) = match body {
            Body::None => return Ok(Ok(Some(Vec::new()))),
            Body::Inline(bytes) => return Ok(Ok(Some(bytes))),
            Body::Chunked { len, crc, chunks } => (len, crc, chunks),
        };
        // `len` is at most MAX_BODY (checked when the envelope was decoded).
        let mut out = Vec::with_capacity(len as usize);
        for (i, chunk) in chunks.iter().enumerate() {
            let Some(message) = self
                .message_at(place.shard, chunk.seq, &place.chunks, deadline)
                .await?
            else {
                return Ok(Ok(None));
            };
            if message.subject.as_str() != place.chunks {
                return Ok(Err(format!(
                    "chunk {i} at stream sequence {} is a message of `{}`",
                    chunk.seq, message.subject
                )));
            }
            if message.payload.len() != chunk.len as usize
                || crc32fast::hash(&message.payload) != chunk.crc
            {
                return Ok(Err(format!(
                    "chunk {i} at stream sequence {} is damaged ({} bytes, {} expected, or its \
                     checksum does not match)",
                    chunk.seq,
                    message.payload.len(),
                    chunk.len
                )));
            }
            out.extend_from_slice(&message.payload);
        }
        if out.len() as u64 != len || crc32fast::hash(&out) != crc {
            return Ok(Err("its chunks do not add up to the body it names".into()));
        }
        Ok(Ok(Some(out)))
    }

    /// Decodes a message read from `place.subject`, checking it belongs to
    /// `pid`; the error says what was wrong.
    pub(super) fn envelope(&self, message: &StreamMessage, pid: &str) -> Result<Envelope, String> {
        envelope_at(message.sequence, &message.payload, pid)
    }
}

/// Decodes the record stored at stream sequence `seq`, checking it belongs
/// to `pid`; the error says what was wrong.
pub(super) fn envelope_at(seq: u64, payload: &[u8], pid: &str) -> Result<Envelope, String> {
    let envelope = Envelope::decode(payload)
        .map_err(|e| format!("the record at stream sequence {seq}: {e}"))?;
    if envelope.pid != pid {
        return Err(format!(
            "the record at stream sequence {seq} belongs to `{}`",
            envelope.pid
        ));
    }
    Ok(envelope)
}

/// Lowercase hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
