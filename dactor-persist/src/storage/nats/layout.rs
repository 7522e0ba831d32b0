//! Where a persistence id's messages live: the stream of its shard, and one
//! subject per kind of record.
//!
//! Ids are spread over `shards` streams by a stable hash (FNV-1a, 64 bits),
//! so that no stream holds the subject index of every id. Within a stream,
//! an id owns these subjects (a projection, by its name, the `p` ones):
//!
//! | subject | holds |
//! |---|---|
//! | `<prefix>.<shard>.j.<token>` | journal records (batches of events, deletion markers) |
//! | `<prefix>.<shard>.s.<token>` | the latest snapshot (older ones rolled up) |
//! | `<prefix>.<shard>.d.<token>` | the durable state (older ones rolled up) |
//! | `<prefix>.<shard>.p.<token>` | a projection's record (offset, pause, source) |
//! | `<prefix>.<shard>.jc.<token>`, `.sc.`, `.dc.`, `.pc.` | chunks of records above the server's message size |
//!
//! Projection leases live apart, in `<stream prefix>_LEASES` on
//! `<prefix>.lease.<token>`, whose messages expire.
//!
//! The token spells the id with `[A-Za-z0-9_-]` kept and every other byte as
//! `~XX`, so two ids never share a token; an id whose token would exceed
//! [`MAX_DIRECT_TOKEN`] bytes is named by its SHA-256 instead. Every record
//! also carries its id, and reads check it.

use crate::{PersistError, PersistenceId};

/// The version of this layout, written in each stream's description.
pub(super) const LAYOUT_VERSION: u32 = 1;

/// The longest token spelled out; longer ones are hashed (subjects must fit
/// the server's 4 KiB control line).
pub(super) const MAX_DIRECT_TOKEN: usize = 240;

/// The kinds of subject an id owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Journal,
    Snapshot,
    State,
    /// A projection's record (the "id" is the projection's name).
    Projection,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Journal => "j",
            Kind::Snapshot => "s",
            Kind::State => "d",
            Kind::Projection => "p",
        }
    }

    fn chunk_code(self) -> &'static str {
        match self {
            Kind::Journal => "jc",
            Kind::Snapshot => "sc",
            Kind::State => "dc",
            Kind::Projection => "pc",
        }
    }
}

/// Stream and subject names of one store.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) stream_prefix: String,
    pub(super) subject_prefix: String,
    pub(super) shards: u32,
}

/// Where one id's records of one kind go.
#[derive(Debug, Clone)]
pub(super) struct Place {
    /// Index of the shard's stream.
    pub(super) shard: usize,
    /// The subject of the records.
    pub(super) subject: String,
    /// The subject of their chunks.
    pub(super) chunks: String,
    /// The token of the id, for message ids.
    pub(super) token: String,
}

impl Layout {
    /// Checks the names: a stream name of `[A-Za-z0-9_-]`, a subject prefix of
    /// dot-separated tokens of the same, 1 to 1024 shards.
    pub(super) fn new(
        stream_prefix: String,
        subject_prefix: String,
        shards: u32,
    ) -> Result<Self, PersistError> {
        let bad = |what: String| PersistError::IncompatibleStore(format!("NATS store: {what}"));
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !plain(&stream_prefix) || stream_prefix.len() > 200 {
            return Err(bad(format!(
                "stream prefix {stream_prefix:?} must be 1 to 200 characters of A-Z, a-z, 0-9, `_` \
                 and `-`"
            )));
        }
        if subject_prefix.len() > 200 || !subject_prefix.split('.').all(plain) {
            return Err(bad(format!(
                "subject prefix {subject_prefix:?} must be dot-separated tokens of A-Z, a-z, 0-9, \
                 `_` and `-` (no wildcards, no empty token), at most 200 characters"
            )));
        }
        if !(1..=1024).contains(&shards) {
            return Err(bad(format!("shards must be 1 to 1024, got {shards}")));
        }
        Ok(Self {
            stream_prefix,
            subject_prefix,
            shards,
        })
    }

    /// The stream of shard `shard`.
    pub(super) fn stream_name(&self, shard: usize) -> String {
        format!("{}_{shard}", self.stream_prefix)
    }

    /// The subjects the stream of `shard` takes.
    pub(super) fn stream_subjects(&self, shard: usize) -> String {
        format!("{}.{shard}.>", self.subject_prefix)
    }

    /// The stream of projection leases, whose messages expire.
    pub(super) fn lease_stream(&self) -> String {
        format!("{}_LEASES", self.stream_prefix)
    }

    /// The subject of the lease of projection `name` (its token as an id's).
    pub(super) fn lease_subject(&self, name: &str) -> String {
        format!("{}.lease.{}", self.subject_prefix, token(name))
    }

    /// The description a stream of this layout carries; checked at connect.
    pub(super) fn description(&self, shard: usize) -> String {
        format!(
            "dactor-persist store, layout {LAYOUT_VERSION}, shard {shard} of {}",
            self.shards
        )
    }

    /// Where the records of `kind` of `pid` go.
    pub(super) fn place(&self, pid: &PersistenceId, kind: Kind) -> Place {
        let shard = shard_of(pid.as_str(), self.shards);
        let token = token(pid.as_str());
        Place {
            shard,
            subject: format!("{}.{shard}.{}.{token}", self.subject_prefix, kind.code()),
            chunks: format!(
                "{}.{shard}.{}.{token}",
                self.subject_prefix,
                kind.chunk_code()
            ),
            token,
        }
    }
}

/// The shard of an id: FNV-1a (64 bits) of its bytes, modulo `shards`.
/// Stable across versions and platforms: changing it would strand data.
pub(super) fn shard_of(id: &str, shards: u32) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // `shards` is at least 1 (checked by `Layout::new`).
    (hash % u64::from(shards.max(1))) as usize
}

/// The subject token of an id: `i` and the id with bytes outside
/// `[A-Za-z0-9_-]` as `~XX`, or `h` and the SHA-256 of the id when that
/// would be longer than [`MAX_DIRECT_TOKEN`].
pub(super) fn token(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 1);
    out.push('i');
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push('~');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0xf));
        }
        if out.len() > MAX_DIRECT_TOKEN {
            return hashed(id);
        }
    }
    out
}

/// The id a spelled-out token names (`None` for a hashed one, or a token
/// this layout did not make).
pub(super) fn id_of(token: &str) -> Option<String> {
    let spelled = token.strip_prefix('i')?;
    let mut bytes = Vec::with_capacity(spelled.len());
    let mut rest = spelled.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'~' {
            let hex = tail.get(..2)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            bytes.push(value);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

fn hashed(id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut out = String::with_capacity(65);
    out.push('h');
    for byte in digest.as_ref() {
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0xf));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble & 0xf)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_valid_subject_tokens() {
        let ids = [
            "",
            "a",
            "A",
            "a b",
            "a.b",
            "a*",
            "a>",
            "a~2E",
            "~",
            "Counter:1",
            "日本",
            "x\ty",
        ];
        let tokens: Vec<String> = ids.iter().map(|id| token(id)).collect();
        for (i, t) in tokens.iter().enumerate() {
            assert!(!t.is_empty());
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'~'),
                "{t:?}"
            );
            for other in &tokens[i + 1..] {
                assert_ne!(t, other);
            }
        }
        assert_eq!(token("a.b"), "ia~2Eb");
        for id in ids {
            assert_eq!(id_of(&token(id)).as_deref(), Some(id), "{id:?}");
        }
        assert_eq!(id_of(&token(&"x".repeat(4096))), None);
        assert_eq!(id_of("i~4"), None);
    }

    #[test]
    fn long_ids_are_hashed_and_stay_distinct() {
        let long = "x".repeat(4096);
        let a = token(&long);
        let b = token(&format!("{long}z"));
        assert!(a.starts_with('h') && a.len() == 65);
        assert_ne!(a, b);
        assert!(token(&"y".repeat(MAX_DIRECT_TOKEN - 1)).starts_with('i'));
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned: a different hash would move every stored id.
        assert_eq!(shard_of("Counter:1", 8), shard_of("Counter:1", 8));
        assert_eq!(shard_of("", 8), (0xcbf2_9ce4_8422_2325u64 % 8) as usize);
        let mut seen = [0usize; 8];
        for i in 0..8000 {
            seen[shard_of(&format!("Account:{i}"), 8)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn names_are_checked() {
        assert!(Layout::new("DACTOR".into(), "dactor".into(), 8).is_ok());
        assert!(Layout::new("DA CTOR".into(), "dactor".into(), 8).is_err());
        assert!(Layout::new("D".into(), "app.*".into(), 8).is_err());
        assert!(Layout::new("D".into(), "app..x".into(), 8).is_err());
        assert!(Layout::new("D".into(), "app.x".into(), 0).is_err());
    }
}
