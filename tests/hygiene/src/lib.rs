//! A crate whose only dependencies are `dactor-persist` and `serde`, using
//! every derive: generated code must not need `async-trait`, `postcard` or
//! `tokio` in the user's `Cargo.toml`.

use dactor_persist::prelude::*;
use serde::{Deserialize, Serialize};

/// A user-defined type stored inside events and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// Whole cents.
    pub cents: i64,
}

/// The events of a wallet.
#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum WalletEvent {
    /// Money came in.
    Credited(Money),
    /// Money went out.
    Debited {
        /// How much.
        amount: Money,
    },
}

/// An event-sourced wallet.
#[derive(Debug, Default, EventSourced)]
#[persist(entity = "Wallet", event = WalletEvent, snapshot_every = 10)]
pub struct Wallet {
    /// The wallet's id.
    #[persist(id)]
    pub id: u32,
    /// The balance in cents.
    pub balance: i64,
    /// The last applied event.
    #[persist(sequence)]
    pub seq: SequenceId,
}

impl ApplyEvent<WalletEvent> for Wallet {
    fn apply_event(&mut self, event: &WalletEvent) {
        match event {
            WalletEvent::Credited(m) => self.balance += m.cents,
            WalletEvent::Debited { amount } => self.balance -= amount.cents,
        }
    }
}

/// A durable-state preference record.
#[derive(Debug, Default, DurableState)]
#[persist(entity = "Prefs", save_every = 5)]
pub struct Prefs {
    /// The user.
    #[persist(id)]
    pub user: String,
    /// The chosen theme.
    pub theme: String,
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Runs a future that never waits (the in-memory store answers at once),
    /// without an async runtime dependency.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }

    #[test]
    fn derived_actors_work_with_only_dactor_persist_and_serde() {
        let store = InMemoryStorage::new();
        let mut w = Wallet {
            id: 1,
            ..Default::default()
        };
        block_on(w.persist(WalletEvent::Credited(Money { cents: 500 }), &store)).unwrap();
        block_on(w.persist(
            WalletEvent::Debited {
                amount: Money { cents: 120 },
            },
            &store,
        ))
        .unwrap();
        block_on(w.snapshot(&store)).unwrap();
        let mut again = Wallet {
            id: 1,
            ..Default::default()
        };
        block_on(recover_event_sourced(&mut again, &store, &store)).unwrap();
        assert_eq!((again.balance, again.seq), (380, SequenceId(2)));

        let p = Prefs {
            user: "ada".into(),
            theme: "dark".into(),
        };
        block_on(DurableState::save_state(&p, &store)).unwrap();
        let mut q = Prefs {
            user: "ada".into(),
            ..Default::default()
        };
        block_on(recover_durable_state(&mut q, &store)).unwrap();
        assert_eq!(q.theme, "dark");
    }
}
