//! The stored form of every message the store writes: an envelope that names
//! its id, what it is, the journal's bounds after it and its body (inline, or
//! the list of its chunks), closed by a CRC-32 of all of it.
//!
//! ```text
//! "DPN1" what:u8 nonce:[u8;16] deleted_to:i64 highest:i64 first:i64 last:i64
//! fills:u64 pid_len:u32 pid body_tag:u8 body crc32:u32   (integers little-endian)
//! body: 0 = none | 1 = len:u32 bytes | 2 = len:u64 crc:u32 count:u32 (seq:u64 len:u32 crc:u32)*
//! ```
//!
//! The events of a journal record, inline or reassembled from chunks:
//!
//! ```text
//! count:u32 (seq:i64 type_len:u32 type payload_len:u32 payload tags_len:u32 tags meta_len:u32 meta)*
//! ```

use crate::storage::extras;
use crate::{JournalEntry, Metadata};

const MAGIC: &[u8; 4] = b"DPN1";

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum What {
    /// A batch of events.
    Events = 1,
    /// A journal's deletion marker: events up to `deleted_to` are gone.
    Deleted = 2,
    /// A snapshot taken at `highest`.
    Snapshot = 3,
    /// Every snapshot was deleted.
    SnapshotDeleted = 4,
    /// A durable state.
    State = 5,
    /// The durable state was deleted.
    StateDeleted = 6,
    /// A projection's record (offset, pause, source).
    Projection = 7,
    /// A projection's lease, taken or renewed.
    Lease = 8,
}

impl What {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => What::Events,
            2 => What::Deleted,
            3 => What::Snapshot,
            4 => What::SnapshotDeleted,
            5 => What::State,
            6 => What::StateDeleted,
            7 => What::Projection,
            8 => What::Lease,
            _ => return None,
        })
    }
}

/// One chunk of a body too large for one message: where it is and its CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkRef {
    pub(super) seq: u64,
    pub(super) len: u32,
    pub(super) crc: u32,
}

/// A message's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    None,
    Inline(Vec<u8>),
    Chunked {
        len: u64,
        crc: u32,
        chunks: Vec<ChunkRef>,
    },
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Envelope {
    pub(super) what: What,
    pub(super) nonce: [u8; 16],
    pub(super) deleted_to: i64,
    pub(super) highest: i64,
    /// A batch's first and last sequence (0 in other records).
    pub(super) first: i64,
    pub(super) last: i64,
    /// How many batches of the journal so far went below its highest
    /// sequence (into a gap): while 0, records are in sequence order.
    pub(super) fills: u64,
    pub(super) pid: String,
    pub(super) body: Body,
}

/// The largest body a record may claim (1 GiB): a damaged length must not
/// make a read allocate without bound.
pub(super) const MAX_BODY: u64 = 1 << 30;

impl Envelope {
    /// The stored bytes.
    pub(super) fn encode(&self) -> Vec<u8> {
        let body_len = match &self.body {
            Body::None => 0,
            Body::Inline(b) => b.len() + 4,
            Body::Chunked { chunks, .. } => 16 + chunks.len() * 16,
        };
        let mut out = Vec::with_capacity(4 + 1 + 16 + 40 + 4 + self.pid.len() + 1 + body_len + 4);
        out.extend_from_slice(MAGIC);
        out.push(self.what as u8);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.deleted_to.to_le_bytes());
        out.extend_from_slice(&self.highest.to_le_bytes());
        out.extend_from_slice(&self.first.to_le_bytes());
        out.extend_from_slice(&self.last.to_le_bytes());
        out.extend_from_slice(&self.fills.to_le_bytes());
        put_bytes(&mut out, self.pid.as_bytes());
        match &self.body {
            Body::None => out.push(0),
            Body::Inline(bytes) => {
                out.push(1);
                put_bytes(&mut out, bytes);
            }
            Body::Chunked { len, crc, chunks } => {
                out.push(2);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&crc.to_le_bytes());
                out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
                for chunk in chunks {
                    out.extend_from_slice(&chunk.seq.to_le_bytes());
                    out.extend_from_slice(&chunk.len.to_le_bytes());
                    out.extend_from_slice(&chunk.crc.to_le_bytes());
                }
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a message; the error says what was wrong.
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let Some((content, crc)) = bytes.split_last_chunk::<4>() else {
            return Err(format!("{} bytes are too short for a record", bytes.len()));
        };
        if !content.starts_with(MAGIC) {
            return Err("does not start with this store's record marker".into());
        }
        if crc32fast::hash(content) != u32::from_le_bytes(*crc) {
            return Err("its checksum does not match".into());
        }
        let mut r = Reader(&content[MAGIC.len()..]);
        let what_byte = r.u8()?;
        let what = What::from_byte(what_byte).ok_or_else(|| format!("unknown kind {what_byte}"))?;
        let nonce = r.array::<16>()?;
        let deleted_to = r.i64()?;
        let highest = r.i64()?;
        let first = r.i64()?;
        let last = r.i64()?;
        let fills = r.u64()?;
        let pid = String::from_utf8(r.bytes()?.to_vec())
            .map_err(|_| "its persistence id is not UTF-8".to_owned())?;
        let body = match r.u8()? {
            0 => Body::None,
            1 => Body::Inline(r.bytes()?.to_vec()),
            2 => {
                let len = r.u64()?;
                let crc = r.u32()?;
                let count = r.u32()?;
                if len > MAX_BODY {
                    return Err(format!("claims a body of {len} bytes"));
                }
                // Each chunk holds at least one byte and takes 16 bytes
                // here: a count above either is damage, not a reason to
                // allocate.
                if u64::from(count) > len.max(1) || count as usize > r.0.len() / 16 {
                    return Err(format!("claims {count} chunks for {len} bytes"));
                }
                let mut chunks = Vec::with_capacity(count as usize);
                let mut total: u64 = 0;
                for _ in 0..count {
                    let chunk = ChunkRef {
                        seq: r.u64()?,
                        len: r.u32()?,
                        crc: r.u32()?,
                    };
                    total = total.saturating_add(u64::from(chunk.len));
                    chunks.push(chunk);
                }
                if total != len {
                    return Err(format!("its chunks hold {total} bytes, it claims {len}"));
                }
                Body::Chunked { len, crc, chunks }
            }
            tag => return Err(format!("unknown body kind {tag}")),
        };
        if !r.0.is_empty() {
            return Err(format!("{} bytes follow its end", r.0.len()));
        }
        Ok(Self {
            what,
            nonce,
            deleted_to,
            highest,
            first,
            last,
            fills,
            pid,
            body,
        })
    }
}

/// One event of a journal record, borrowed for writing.
pub(super) struct OutEvent<'a> {
    pub(super) seq: i64,
    pub(super) event_type: &'a str,
    pub(super) payload: &'a [u8],
    pub(super) tags: Option<Vec<u8>>,
    pub(super) metadata: Option<&'a Metadata>,
}

/// One event read back, with its tags and metadata (for the read side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredEvent {
    pub(super) entry: JournalEntry,
    pub(super) tags: Vec<String>,
    pub(super) metadata: Metadata,
}

/// The body of a journal record.
pub(super) fn encode_events(events: &[OutEvent<'_>]) -> Vec<u8> {
    let size: usize = events
        .iter()
        .map(|e| 24 + e.event_type.len() + e.payload.len() + e.tags.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for event in events {
        out.extend_from_slice(&event.seq.to_le_bytes());
        put_bytes(&mut out, event.event_type.as_bytes());
        put_bytes(&mut out, event.payload);
        put_bytes(&mut out, event.tags.as_deref().unwrap_or_default());
        let meta = event.metadata.map(Metadata::encode).unwrap_or_default();
        put_bytes(&mut out, &meta);
    }
    out
}

/// The events of a journal record; the error says what was wrong.
pub(super) fn decode_events(bytes: &[u8]) -> Result<Vec<StoredEvent>, String> {
    let mut r = Reader(bytes);
    let count = r.u32()?;
    // Each event takes at least 24 bytes: a larger count is damage.
    if count as usize > bytes.len() / 24 {
        return Err(format!("claims {count} events in {} bytes", bytes.len()));
    }
    let mut events = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let seq = r.i64()?;
        let event_type = std::str::from_utf8(r.bytes()?)
            .map_err(|_| format!("the type of event {seq} is not UTF-8"))?
            .to_owned();
        let payload = r.bytes()?.to_vec();
        let tags = match r.bytes()? {
            [] => Vec::new(),
            stored => extras::decode_tags(stored).map_err(|e| format!("event {seq}: {e}"))?,
        };
        let metadata = match r.bytes()? {
            [] => Metadata::default(),
            stored => Metadata::decode(stored).map_err(|e| format!("event {seq}: {e}"))?,
        };
        events.push(StoredEvent {
            entry: JournalEntry {
                sequence_id: crate::SequenceId(seq),
                event_type,
                payload,
            },
            tags,
            metadata,
        });
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes follow its events", r.0.len()));
    }
    Ok(events)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Bodies are bounded by MAX_BODY (checked before encoding), far below 4 GiB.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a stored record front to back; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "ends early: {n} bytes wanted, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: Body) -> Envelope {
        Envelope {
            what: What::Events,
            nonce: [7; 16],
            deleted_to: 2,
            highest: 9,
            first: 8,
            last: 9,
            fills: 1,
            pid: "Counter:ü".into(),
            body,
        }
    }

    #[test]
    fn envelopes_round_trip() {
        for body in [
            Body::None,
            Body::Inline(b"abc".to_vec()),
            Body::Chunked {
                len: 5,
                crc: 3,
                chunks: vec![
                    ChunkRef {
                        seq: 4,
                        len: 2,
                        crc: 1,
                    },
                    ChunkRef {
                        seq: 9,
                        len: 3,
                        crc: 2,
                    },
                ],
            },
        ] {
            let e = envelope(body);
            assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn every_damage_is_an_error() {
        let bytes = envelope(Body::Inline(b"abc".to_vec())).encode();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(Envelope::decode(&damaged).is_err(), "flip at {i}");
        }
        for len in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn events_round_trip_and_damage_is_caught() {
        let meta = Metadata::new().with_correlation_id("c");
        let events = [
            OutEvent {
                seq: 1,
                event_type: "A",
                payload: b"",
                tags: None,
                metadata: None,
            },
            OutEvent {
                seq: 2,
                event_type: "Bé",
                payload: b"xyz",
                tags: extras::encode_tags(&["t".to_owned()]),
                metadata: Some(&meta),
            },
        ];
        let bytes = encode_events(&events);
        let back = decode_events(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].entry.payload, b"xyz");
        assert_eq!(back[1].tags, ["t"]);
        assert_eq!(back[1].metadata, meta);
        for len in 0..bytes.len() {
            assert!(decode_events(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_events(&huge).is_err());
    }
}
