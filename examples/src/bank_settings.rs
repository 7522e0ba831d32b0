//! The bank's settings: a durable-state actor saved whole, before it
//! answers (the run counter must survive a crash right after the answer).

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message};

/// How many times the bank ran, its transfer limit and how many accounts it
/// has.
#[derive(Debug, Default, DurableState)]
#[persist(entity = "BankSettings")]
pub struct BankSettings {
    /// Always `main`.
    #[persist(id)]
    pub id: String,
    /// Runs started.
    pub runs: u32,
    /// The largest amount one transfer moves (0: not set yet).
    pub transfer_limit: u64,
    /// How many accounts the bank has opened. A field added after the
    /// first release: states saved before it read as 0 (not known).
    #[persist(default)]
    pub accounts: u64,
}

impl BankSettings {
    /// The settings' handle before recovery.
    pub fn main() -> Self {
        BankSettings {
            id: "main".into(),
            ..Default::default()
        }
    }
}

/// Starts a run that wants this many accounts: answers the run's number,
/// the transfer limit and the accounts to use (never fewer than the bank
/// has opened: their money stays in the total), once saved.
pub struct StartRun(pub u64);

/// What [`StartRun`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The run's number, from 1.
    pub number: u32,
    /// The largest amount one transfer moves.
    pub transfer_limit: u64,
    /// The accounts this run uses.
    pub accounts: u64,
}

impl Message for StartRun {
    type Reply = Result<Run, PersistError>;
}

#[async_trait]
impl Handler<StartRun> for BankSettings {
    async fn handle(
        &mut self,
        StartRun(wanted): StartRun,
        ctx: &mut Context<Self>,
    ) -> Result<Run, PersistError> {
        self.runs += 1;
        if self.transfer_limit == 0 {
            self.transfer_limit = 100;
        }
        self.accounts = self.accounts.max(wanted);
        // Saved before answering: the answer never reflects a lost state.
        ctx.save(self).await?;
        Ok(Run {
            number: self.runs,
            transfer_limit: self.transfer_limit,
            accounts: self.accounts,
        })
    }
}
