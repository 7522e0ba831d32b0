//! [`Offset`]: a position in a store's global order of events.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A position in one store's global order of events (or of durable-state
/// changes): totally ordered, and exclusive when a query resumes from it
/// (the event at the offset itself is not delivered again).
///
/// Opaque: compare offsets, store them (as text through `Display` and
/// `FromStr`, or with serde), and hand them back to the store that produced
/// them; their values mean nothing across stores. [`Offset::START`] is
/// before every event.
///
/// # Examples
///
/// ```
/// use dactor_persist::query::Offset;
///
/// let stored = Offset::START.to_string();
/// let back: Offset = stored.parse().unwrap();
/// assert_eq!(back, Offset::START);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(u128);

impl Offset {
    /// Before every event: a query from here reads everything.
    pub const START: Offset = Offset(0);

    /// An offset from a single 64-bit position (SQLite, in-memory).
    pub(crate) fn position(position: i64) -> Self {
        Offset(u128::from(position.max(0).unsigned_abs()))
    }

    /// An offset from a (transaction, position) pair, ordered by
    /// transaction first (PostgreSQL).
    #[cfg(any(test, feature = "postgres", feature = "nats", feature = "testkit"))]
    pub(crate) fn pair(high: i64, low: i64) -> Self {
        let high = u128::from(high.max(0).unsigned_abs());
        let low = u128::from(low.max(0).unsigned_abs());
        Offset((high << 64) | low)
    }

    /// The single position of an offset made by [`Offset::position`]
    /// (saturating for one that is not).
    pub(crate) fn as_position(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// The pair of an offset made by [`Offset::pair`].
    #[cfg(any(test, feature = "postgres", feature = "nats"))]
    pub(crate) fn as_pair(self) -> (i64, i64) {
        let high = i64::try_from(self.0 >> 64).unwrap_or(i64::MAX);
        let low = i64::try_from(self.0 & u128::from(u64::MAX)).unwrap_or(i64::MAX);
        (high, low)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The text of an [`Offset`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetParseError(String);

impl fmt::Display for OffsetParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an offset: {:?} (offsets are unsigned decimal numbers)",
            self.0
        )
    }
}

impl std::error::Error for OffsetParseError {}

impl FromStr for Offset {
    type Err = OffsetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u128>()
            .map(Offset)
            .map_err(|_| OffsetParseError(s.to_owned()))
    }
}

impl Serialize for Offset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_order_by_their_first_part_then_their_second() {
        assert!(Offset::pair(1, 999) < Offset::pair(2, 0));
        assert!(Offset::pair(2, 1) < Offset::pair(2, 2));
        assert_eq!(Offset::pair(7, 9).as_pair(), (7, 9));
        assert_eq!(Offset::position(42).as_position(), 42);
        assert!(Offset::START < Offset::position(1));
        assert_eq!(
            Offset::pair(i64::MAX, i64::MAX).as_pair(),
            (i64::MAX, i64::MAX)
        );
    }

    #[test]
    fn offsets_round_trip_as_text_and_through_serde() {
        for offset in [
            Offset::START,
            Offset::position(5),
            Offset::pair(123_456, 789),
        ] {
            assert_eq!(offset.to_string().parse::<Offset>().unwrap(), offset);
            let bytes = postcard::to_allocvec(&offset).unwrap();
            assert_eq!(postcard::from_bytes::<Offset>(&bytes).unwrap(), offset);
        }
        assert!("-1".parse::<Offset>().is_err());
        assert!("x".parse::<Offset>().is_err());
    }
}
