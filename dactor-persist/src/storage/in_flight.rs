//! Counting operations under way, so that one can tell it runs alone.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One operation counted in a counter of those under way, for as long as it
/// lives (a cancelled caller is counted out too): the SQLite store's lone
/// writes and the PostgreSQL store's lone state saves skip a hop to their
/// writer.
pub(crate) struct InFlight<'a> {
    count: &'a AtomicUsize,
    /// No other operation was under way when this one began.
    pub(crate) alone: bool,
}

impl<'a> InFlight<'a> {
    pub(crate) fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::AcqRel);
        InFlight {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}
