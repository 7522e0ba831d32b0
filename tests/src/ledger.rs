//! An event-sourced test actor whose state depends on every event and on
//! their order, so that a skipped, repeated or reordered event shows.

#![allow(missing_docs)]

use dactor_persist::prelude::*;

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum LedgerEvent {
    Added { amount: u64 },
    Reset,
}

/// The state: how many events, and an order-sensitive digest of them.
#[derive(Debug, Default, Clone, PartialEq, EventSourced)]
#[persist(entity = "Ledger", event = LedgerEvent)]
pub struct Ledger {
    #[persist(id)]
    pub id: String,
    pub count: u64,
    pub digest: u64,
    #[persist(sequence)]
    pub seq: SequenceId,
}

/// The same ledger, snapshotting every 10 events and deleting the events a
/// snapshot covers.
#[derive(Debug, Default, Clone, PartialEq, EventSourced)]
#[persist(
    entity = "Ledger",
    event = LedgerEvent,
    snapshot_every = 10,
    delete_events_on_snapshot = true
)]
pub struct SnapshottingLedger {
    #[persist(id)]
    pub id: String,
    pub count: u64,
    pub digest: u64,
    #[persist(sequence)]
    pub seq: SequenceId,
}

pub fn fold(count: &mut u64, digest: &mut u64, event: &LedgerEvent) {
    *count += 1;
    *digest = match event {
        LedgerEvent::Added { amount } => digest
            .wrapping_mul(1_000_003)
            .wrapping_add(amount.wrapping_add(1)),
        LedgerEvent::Reset => digest.rotate_left(7) ^ 0xdead_beef,
    };
}

impl ApplyEvent<LedgerEvent> for Ledger {
    fn apply_event(&mut self, event: &LedgerEvent) {
        fold(&mut self.count, &mut self.digest, event);
    }
}

impl ApplyEvent<LedgerEvent> for SnapshottingLedger {
    fn apply_event(&mut self, event: &LedgerEvent) {
        fold(&mut self.count, &mut self.digest, event);
    }
}

impl Ledger {
    pub fn new(id: &str) -> Self {
        Ledger {
            id: id.into(),
            ..Default::default()
        }
    }

    /// The state after `events`, applied in order from nothing.
    pub fn after(id: &str, events: &[LedgerEvent]) -> Self {
        let mut ledger = Ledger::new(id);
        for event in events {
            fold(&mut ledger.count, &mut ledger.digest, event);
        }
        ledger.seq = SequenceId(events.len() as i64);
        ledger
    }
}

/// `n` events, mostly different amounts, some resets.
pub fn events(n: usize, seed: u64) -> Vec<LedgerEvent> {
    (0..n as u64)
        .map(|i| {
            let x = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
            if x.is_multiple_of(11) {
                LedgerEvent::Reset
            } else {
                LedgerEvent::Added { amount: x % 1000 }
            }
        })
        .collect()
}

/// Persists `events` for `id` into `journal`, one write each.
pub async fn seed(journal: &dyn JournalStorage, id: &str, events: &[LedgerEvent]) {
    let mut ledger = Ledger::new(id);
    for event in events {
        ledger
            .persist(event.clone(), journal)
            .await
            .expect("seeding the journal");
    }
}
