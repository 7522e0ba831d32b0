//! The same bank account with the derives.
// BEGIN ACTOR
use dactor_persist::prelude::*;

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum AccountEvent {
    Opened {
        owner: String,
    },
    Deposited {
        amount: u64,
    },
    #[persist(alias = "Withdrew")]
    Withdrawn {
        amount: u64,
    },
}

#[derive(Default, EventSourced)]
#[persist(entity = "Account", event = AccountEvent, apply = Self::on_event,
          snapshot_every = 500, keep_snapshots = 2, persist_failure = "return_error",
          recovery_failure = retry(max_attempts = 2, initial_delay = "10ms"))]
pub struct Account {
    #[persist(id)]
    pub id: String,
    pub owner: String,
    pub balance: u64,
    #[persist(sequence)]
    pub seq: SequenceId,
    #[persist(skip)]
    pub audit_cache: Vec<String>,
}

impl Account {
    fn on_event(&mut self, e: &AccountEvent) {
        match e {
            AccountEvent::Opened { owner } => self.owner = owner.clone(),
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
        self.audit_cache.push(format!("{e:?}"));
    }
}
// END ACTOR
