//! Failure policies and automatic snapshot and save configuration.

use std::time::Duration;

/// The longest wait between two retries of any policy.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How many tries in all a `Retry` policy makes when `max_attempts` is `None`.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;

/// What to do when recovering an actor's state fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RecoveryFailurePolicy {
    /// Give up: recovery returns the error and the actor does not start (default).
    #[default]
    Stop,
    /// Try recovery again after a delay that starts at `initial_delay` and
    /// doubles after each failure, capped at [`MAX_RETRY_DELAY`].
    Retry {
        /// Tries in all, the first included; `None` means
        /// [`DEFAULT_RETRY_ATTEMPTS`].
        max_attempts: Option<u32>,
        /// Wait before the second try.
        initial_delay: Duration,
    },
    /// Start with the actor's initial state. An event-sourced actor writes
    /// its new events after the highest stored sequence, so nothing stored is
    /// overwritten. A durable-state actor whose stored state cannot be read
    /// first sets that state aside, unchanged, under
    /// [`set_aside_id`](crate::set_aside_id), and does not start when it
    /// cannot: its next save would otherwise replace the user's data (see
    /// [`recover_durable_state`](crate::recover_durable_state)).
    SkipAndStart,
}

/// What to do when persisting an event fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PersistFailurePolicy {
    /// Stop the actor after the failed write (default).
    #[default]
    Stop,
    /// Hand the error to the caller (the message handler) and carry on.
    ReturnError,
    /// Retry the same write after a delay that starts at `initial_delay` and
    /// doubles, capped at [`MAX_RETRY_DELAY`]; stop when the tries run out.
    Retry {
        /// Tries in all, the first included; `None` means
        /// [`DEFAULT_RETRY_ATTEMPTS`].
        max_attempts: Option<u32>,
        /// Wait before the second try.
        initial_delay: Duration,
    },
}

/// When an event-sourced actor snapshots its state automatically.
///
/// The default turns everything off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// Snapshot after every N persisted events (None: never by count).
    pub every_n_events: Option<u64>,
    /// Snapshot at this interval when events were persisted since the last one.
    pub interval: Option<Duration>,
    /// Keep at most this many snapshots, deleting older ones after a save.
    pub retention_count: Option<u32>,
    /// Delete the journal's events up to a snapshot once it is saved.
    pub delete_events_on_snapshot: bool,
}

/// When a durable-state actor saves its state automatically.
///
/// The default turns everything off (the state is still saved on graceful stop).
///
/// # When a save happens, relative to the reply
///
/// Under the runtime, a durable-state actor's state is saved:
/// - when its handler calls [`Context::save`](crate::runtime::Context::save):
///   before the handler returns, so before its reply goes out. A handler
///   whose answer must reflect a durable state saves before answering.
/// - after the message that makes [`every_n_messages`](SaveConfig::every_n_messages)
///   messages since the last save: the save runs once the handler returns,
///   and **the reply to that message waits for it** (a failed save answers
///   the `ask` with its error). Replies to the messages before it go out
///   at once and reflect a state not yet stored: a crash loses up to
///   `every_n_messages - 1` answered messages, which is what the setting
///   trades for fewer writes.
/// - at every [`interval`](SaveConfig::interval) tick after a change,
///   between messages (no reply waits for it);
/// - on a graceful stop, after the messages already queued.
///
/// A save whose encoded state is the one last saved (or recovered) writes
/// nothing: read-only messages count toward `every_n_messages` but cost no
/// commit. On the SQLite and PostgreSQL stores, saves of many actors made
/// at the same time share one commit (a lone save runs at once), so a reply
/// that waits for its save costs about one commit, however many wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveConfig {
    /// Save after every N handled messages (None: never by count).
    pub every_n_messages: Option<u64>,
    /// Save at this interval when the state may have changed since the last save.
    pub interval: Option<Duration>,
}

/// The retry schedule shared by [`RecoveryFailurePolicy::Retry`] and
/// [`PersistFailurePolicy::Retry`]: a number of tries in all and a delay that
/// doubles after each failure, capped at [`MAX_RETRY_DELAY`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dactor_persist::Backoff;
///
/// let mut b = Backoff::new(Some(4), Duration::from_secs(10));
/// assert_eq!(b.next_delay(), Some(Duration::from_secs(10)));
/// assert_eq!(b.next_delay(), Some(Duration::from_secs(20)));
/// assert_eq!(b.next_delay(), Some(Duration::from_secs(30)));
/// assert_eq!(b.next_delay(), None); // four tries made
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    tries_left: u32,
    delay: Duration,
}

impl Backoff {
    /// A schedule of `max_attempts` tries in all (at least one; `None` means
    /// [`DEFAULT_RETRY_ATTEMPTS`]), the first wait being `initial_delay`.
    pub fn new(max_attempts: Option<u32>, initial_delay: Duration) -> Self {
        let tries = max_attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS).max(1);
        Self {
            tries_left: tries - 1,
            delay: initial_delay.min(MAX_RETRY_DELAY),
        }
    }

    /// Called after a failed try: the wait before the next one, or `None` when
    /// no tries are left.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.tries_left == 0 {
            return None;
        }
        self.tries_left -= 1;
        let delay = self.delay;
        self.delay = delay.saturating_mul(2).min(MAX_RETRY_DELAY);
        Some(delay)
    }
}
