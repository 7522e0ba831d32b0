//! The CRC-32 stored beside every event, snapshot and state, the same for
//! every durable store (a row moved between stores stays valid).
//!
//! An event's checksum covers its sequence and event type as well as its
//! payload, so a row whose payload was swapped with another row's, or whose
//! type was damaged, is caught too. Lengths are hashed before variable-length
//! parts so that no two different rows hash the same bytes.

/// The checksum of one journal event.
pub(crate) fn event(sequence: i64, event_type: &str, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(&(event_type.len() as u64).to_le_bytes());
    hasher.update(event_type.as_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The checksum of one snapshot.
pub(crate) fn snapshot(sequence: i64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The checksum of one durable state.
pub(crate) fn state(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_an_event_is_covered() {
        let base = event(1, "Deposited", b"abc");
        assert_ne!(base, event(2, "Deposited", b"abc"));
        assert_ne!(base, event(1, "Deposite", b"abc"));
        assert_ne!(base, event(1, "Deposited", b"abd"));
        // The type's length is hashed: moving a byte from type to payload shows.
        assert_ne!(event(1, "ab", b"c"), event(1, "a", b"bc"));
        assert_eq!(base, event(1, "Deposited", b"abc"));
    }

    #[test]
    fn snapshots_cover_their_sequence() {
        assert_ne!(snapshot(1, b"x"), snapshot(2, b"x"));
        assert_eq!(state(b"x"), crc32fast::hash(b"x"));
    }
}
