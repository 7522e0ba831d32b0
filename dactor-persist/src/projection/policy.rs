//! What a projection does when its handler fails.

use std::time::Duration;

/// What a projection does when its handler fails on an event (or an event
/// does not decode): try again with a doubling delay, then stop or skip.
///
/// A batch that still fails after its tries is split: each of its events is
/// tried alone under the same policy, so a skip skips exactly the events
/// that fail, and every skip is logged with the event's persistence id and
/// sequence and counted in [`ProjectionStatus::events_skipped`](super::ProjectionStatus).
/// Nothing is dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionFailurePolicy {
    /// Tries after the first (0: none).
    pub retries: u32,
    /// The delay before the first retry; doubled each time, at most 30 s.
    pub initial_delay: Duration,
    /// What follows the last try.
    pub then: AfterRetries,
}

/// What a projection does once its tries on an event are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterRetries {
    /// The projection stops, its status [`Failed`](super::ProjectionState::Failed)
    /// naming the event; its offset stays before the event, so a restart
    /// tries it again.
    Stop,
    /// The event is skipped: logged, counted, and the offset moves past it.
    Skip,
}

impl ProjectionFailurePolicy {
    /// Stops at the first failure.
    pub const STOP: Self = Self {
        retries: 0,
        initial_delay: Duration::ZERO,
        then: AfterRetries::Stop,
    };

    /// Skips a failing event at once.
    pub const SKIP: Self = Self {
        retries: 0,
        initial_delay: Duration::ZERO,
        then: AfterRetries::Skip,
    };

    /// Tries `retries` more times from `initial_delay`, then stops.
    pub fn retry_then_stop(retries: u32, initial_delay: Duration) -> Self {
        Self {
            retries,
            initial_delay,
            then: AfterRetries::Stop,
        }
    }

    /// Tries `retries` more times from `initial_delay`, then skips the event.
    pub fn retry_then_skip(retries: u32, initial_delay: Duration) -> Self {
        Self {
            retries,
            initial_delay,
            then: AfterRetries::Skip,
        }
    }

    /// The delay before retry number `retry` (1 for the first), or `None`
    /// when the tries are used up.
    pub(crate) fn delay(&self, retry: u32) -> Option<Duration> {
        (retry <= self.retries).then(|| backoff(self.initial_delay, retry))
    }
}

impl Default for ProjectionFailurePolicy {
    /// Five retries from 100 ms (about 3 s in all), then stop.
    fn default() -> Self {
        Self::retry_then_stop(5, Duration::from_millis(100))
    }
}

/// The longest delay between tries.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);

/// `initial` doubled `retry - 1` times, at most [`MAX_DELAY`].
pub(crate) fn backoff(initial: Duration, retry: u32) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_a_cap_and_end() {
        let p = ProjectionFailurePolicy::retry_then_skip(3, Duration::from_millis(100));
        assert_eq!(p.delay(1), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(2), Some(Duration::from_millis(200)));
        assert_eq!(p.delay(3), Some(Duration::from_millis(400)));
        assert_eq!(p.delay(4), None);
        assert_eq!(ProjectionFailurePolicy::STOP.delay(1), None);
        assert_eq!(backoff(Duration::from_secs(1), 40), MAX_DELAY);
        assert_eq!(backoff(Duration::MAX, 2), MAX_DELAY);
    }
}
