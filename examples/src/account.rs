//! The bank account of the `bank` example: an event-sourced actor, derived.

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message};

/// What happened to an account. Stored by name: variants can be reordered
/// or added later without breaking old journals.
#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum AccountEvent {
    /// The account was opened.
    Opened {
        /// Its owner.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// How much.
        amount: u64,
    },
    /// Money went out.
    Withdrawn {
        /// How much.
        amount: u64,
    },
}

/// The account: the derive writes the serialization, sequence tracking and
/// snapshots (every 100 events, keeping the newest 2).
#[derive(Debug, Default, EventSourced)]
#[persist(entity = "Account", event = AccountEvent, apply = Self::on_event,
          snapshot_every = 100, keep_snapshots = 2)]
pub struct Account {
    /// The account's id.
    #[persist(id)]
    pub id: String,
    /// Its owner, empty until opened.
    pub owner: String,
    /// Its balance.
    pub balance: u64,
    /// The sequence of the last event applied.
    #[persist(sequence)]
    pub seq: SequenceId,
    /// Events applied by this incarnation (recovery's replay included; the
    /// events a snapshot covered are not): not stored.
    #[persist(skip)]
    pub applied: u64,
}

impl Account {
    fn on_event(&mut self, event: &AccountEvent) {
        self.applied += 1;
        match event {
            AccountEvent::Opened { owner } => self.owner = owner.clone(),
            AccountEvent::Deposited { amount } => {
                self.balance = self.balance.saturating_add(*amount)
            }
            AccountEvent::Withdrawn { amount } => {
                self.balance = self.balance.saturating_sub(*amount)
            }
        }
    }
}

/// Commands, each answering the new balance or why it was refused.
/// Opens the account for its owner (once).
pub struct Open(pub String);
/// Deposits an amount.
pub struct Deposit(pub u64);
/// Withdraws an amount, refused beyond the balance.
pub struct Withdraw(pub u64);
/// Answers the owner, the balance and the last event's sequence.
pub struct Balance;
/// Answers how this incarnation recovered: the last sequence, and how many
/// events it has applied (before any command: the events replayed).
pub struct Recovered;

/// The new balance, or why the command was refused.
pub type Reply = Result<u64, String>;
impl Message for Open {
    type Reply = Reply;
}
impl Message for Deposit {
    type Reply = Reply;
}
impl Message for Withdraw {
    type Reply = Reply;
}
impl Message for Balance {
    type Reply = (String, u64, SequenceId);
}
impl Message for Recovered {
    type Reply = (SequenceId, u64);
}

#[async_trait]
impl Handler<Recovered> for Account {
    async fn handle(&mut self, _: Recovered, _ctx: &mut Context<Self>) -> (SequenceId, u64) {
        (self.seq, self.applied)
    }
}

#[async_trait]
impl Handler<Open> for Account {
    async fn handle(&mut self, Open(owner): Open, ctx: &mut Context<Self>) -> Reply {
        if !self.owner.is_empty() {
            return Ok(self.balance); // already open: nothing to record
        }
        ctx.persist(self, AccountEvent::Opened { owner })
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.balance)
    }
}

#[async_trait]
impl Handler<Deposit> for Account {
    async fn handle(&mut self, Deposit(amount): Deposit, ctx: &mut Context<Self>) -> Reply {
        ctx.persist(self, AccountEvent::Deposited { amount })
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.balance)
    }
}

#[async_trait]
impl Handler<Withdraw> for Account {
    async fn handle(&mut self, Withdraw(amount): Withdraw, ctx: &mut Context<Self>) -> Reply {
        if amount > self.balance {
            return Err(format!(
                "insufficient funds: balance {}, asked {amount}",
                self.balance
            ));
        }
        ctx.persist(self, AccountEvent::Withdrawn { amount })
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.balance)
    }
}

#[async_trait]
impl Handler<Balance> for Account {
    async fn handle(&mut self, _: Balance, _ctx: &mut Context<Self>) -> (String, u64, SequenceId) {
        (self.owner.clone(), self.balance, self.seq)
    }
}

/// A new account handle for `id`, before recovery.
pub fn account(id: &str) -> Account {
    Account {
        id: id.to_owned(),
        ..Default::default()
    }
}
