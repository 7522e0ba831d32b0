//! Counting operations under way, so that one can tell it runs alone.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One operation counted in a counter of those under way, for as long as it
/// lives (a cancelled caller is counted out too): the SQLite store's lone
/// writes and the PostgreSQL store's lone state saves skip a hop to their
/// writer. The counter is borrowed (`&AtomicUsize`), or shared (`Arc`) when
/// the count must follow the operation to another task.
pub(crate) struct InFlight<C: Deref<Target = AtomicUsize>> {
    count: C,
    /// No other operation was under way when this one began.
    pub(crate) alone: bool,
}

impl<C: Deref<Target = AtomicUsize>> InFlight<C> {
    pub(crate) fn enter(count: C) -> Self {
        let before = count.fetch_add(1, Ordering::AcqRel);
        InFlight {
            count,
            alone: before == 0,
        }
    }
}

impl<C: Deref<Target = AtomicUsize>> Drop for InFlight<C> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}
