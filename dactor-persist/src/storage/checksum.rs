//! The CRC-32 stored beside every event, snapshot, state and journal
//! bookkeeping row, the same for every durable store (a row moved between
//! stores stays valid).
//!
//! A checksum covers everything that identifies its row as well as its
//! contents: an event's persistence id, sequence and event type as well as
//! its payload. So a row whose key was damaged (moved to another id or
//! sequence), whose payload was swapped with another row's, or whose type was
//! damaged, is caught when it is read. Each kind of row hashes a tag of its
//! own first, and lengths are hashed before variable-length parts, so that no
//! two different rows hash the same bytes.
//!
//! Schema version 1 of the stores used [`v1`], which did not cover the
//! persistence id; the migration to version 2 verifies every row against it
//! before writing the new checksum.

use crc32fast::Hasher;

fn start(tag: &[u8; 2], persistence_id: &str) -> Hasher {
    let mut hasher = Hasher::new();
    hasher.update(tag);
    hasher.update(&(persistence_id.len() as u64).to_le_bytes());
    hasher.update(persistence_id.as_bytes());
    hasher
}

/// The checksum of one journal event.
pub(crate) fn event(persistence_id: &str, sequence: i64, event_type: &str, payload: &[u8]) -> u32 {
    let mut hasher = start(b"E2", persistence_id);
    hasher.update(&sequence.to_le_bytes());
    hasher.update(&(event_type.len() as u64).to_le_bytes());
    hasher.update(event_type.as_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The checksum of one journal event with its tags and metadata (in their
/// stored form): the same as [`event`] for an event with neither, so that
/// events written before they existed keep their checksums.
pub(crate) fn event_with(
    persistence_id: &str,
    sequence: i64,
    event_type: &str,
    payload: &[u8],
    tags: Option<&[u8]>,
    metadata: Option<&[u8]>,
) -> u32 {
    if tags.is_none() && metadata.is_none() {
        return event(persistence_id, sequence, event_type, payload);
    }
    let mut hasher = start(b"E3", persistence_id);
    hasher.update(&sequence.to_le_bytes());
    hasher.update(&(event_type.len() as u64).to_le_bytes());
    hasher.update(event_type.as_bytes());
    hasher.update(&(payload.len() as u64).to_le_bytes());
    hasher.update(payload);
    for part in [tags, metadata] {
        match part {
            Some(bytes) => {
                hasher.update(&[1]);
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
            None => hasher.update(&[0]),
        }
    }
    hasher.finalize()
}

/// The checksum of one snapshot.
pub(crate) fn snapshot(persistence_id: &str, sequence: i64, payload: &[u8]) -> u32 {
    let mut hasher = start(b"S2", persistence_id);
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The checksum of one durable state.
pub(crate) fn state(persistence_id: &str, payload: &[u8]) -> u32 {
    let mut hasher = start(b"T2", persistence_id);
    hasher.update(payload);
    hasher.finalize()
}

/// The checksum of one id's journal bookkeeping: the highest sequence ever
/// written and how far events were deleted.
#[cfg(feature = "sqlite")]
pub(crate) fn bounds(persistence_id: &str, highest: i64, deleted_to: i64) -> u32 {
    let mut hasher = start(b"M2", persistence_id);
    hasher.update(&highest.to_le_bytes());
    hasher.update(&deleted_to.to_le_bytes());
    hasher.finalize()
}

/// A value that is certainly not the checksum `good`: what a migration
/// stores for a row that failed its old checksum, so that it keeps reading
/// back as damaged under the new scheme.
pub(crate) fn poisoned(good: u32) -> u32 {
    !good
}

/// The checksums of schema version 1, which did not cover the persistence id.
pub(crate) mod v1 {
    /// An event's: sequence, event type and payload.
    pub(crate) fn event(sequence: i64, event_type: &str, payload: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&sequence.to_le_bytes());
        hasher.update(&(event_type.len() as u64).to_le_bytes());
        hasher.update(event_type.as_bytes());
        hasher.update(payload);
        hasher.finalize()
    }

    /// A snapshot's: sequence and payload.
    pub(crate) fn snapshot(sequence: i64, payload: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&sequence.to_le_bytes());
        hasher.update(payload);
        hasher.finalize()
    }

    /// A state's: its payload.
    pub(crate) fn state(payload: &[u8]) -> u32 {
        crc32fast::hash(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_an_event_is_covered() {
        let base = event("A:1", 1, "Deposited", b"abc");
        assert_ne!(base, event("A:2", 1, "Deposited", b"abc"));
        assert_ne!(base, event("A:1", 2, "Deposited", b"abc"));
        assert_ne!(base, event("A:1", 1, "Deposite", b"abc"));
        assert_ne!(base, event("A:1", 1, "Deposited", b"abd"));
        // Lengths are hashed: moving a byte between parts shows.
        assert_ne!(event("A:1", 1, "ab", b"c"), event("A:1", 1, "a", b"bc"));
        assert_ne!(event("A:1a", 1, "b", b""), event("A:1", 1, "ab", b""));
        assert_eq!(base, event("A:1", 1, "Deposited", b"abc"));
    }

    #[test]
    fn tags_and_metadata_are_covered_and_absent_ones_change_nothing() {
        let plain = event("A:1", 1, "E", b"x");
        assert_eq!(event_with("A:1", 1, "E", b"x", None, None), plain);
        let tagged = event_with("A:1", 1, "E", b"x", Some(b"t"), None);
        assert_ne!(tagged, plain);
        assert_ne!(tagged, event_with("A:1", 1, "E", b"x", None, Some(b"t")));
        assert_ne!(tagged, event_with("A:1", 1, "E", b"x", Some(b"u"), None));
        assert_ne!(
            event_with("A:1", 1, "E", b"xt", Some(b""), None),
            event_with("A:1", 1, "E", b"x", Some(b"t"), None)
        );
    }

    #[test]
    fn snapshots_states_and_bounds_cover_their_id() {
        assert_ne!(snapshot("A:1", 1, b"x"), snapshot("A:1", 2, b"x"));
        assert_ne!(snapshot("A:1", 1, b"x"), snapshot("A:2", 1, b"x"));
        assert_ne!(state("A:1", b"x"), state("A:2", b"x"));
        assert_ne!(bounds("A:1", 5, 0), bounds("A:1", 5, 1));
        assert_ne!(bounds("A:1", 5, 0), bounds("A:1", 6, 0));
        assert_ne!(bounds("A:1", 5, 0), bounds("A:2", 5, 0));
        // Kinds are told apart by their tag.
        assert_ne!(snapshot("A:1", 1, b""), state("A:1", &1i64.to_le_bytes()));
    }

    #[test]
    fn a_poisoned_checksum_never_matches() {
        for good in [0, 1, u32::MAX, 0x5555_5555] {
            assert_ne!(poisoned(good), good);
        }
    }

    #[test]
    fn the_version_1_scheme_is_kept_for_migrations() {
        assert_ne!(v1::event(1, "E", b"x"), event("", 1, "E", b"x"));
        assert_eq!(v1::state(b"x"), crc32fast::hash(b"x"));
    }
}
