//! The bank's settings: a durable-state actor saved whole, before it
//! answers (the run counter must survive a crash right after the answer).

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message};

/// How many times the bank ran, and its transfer limit.
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

/// Starts a run: answers its number and the transfer limit, once saved.
pub struct StartRun;
impl Message for StartRun {
    type Reply = Result<(u32, u64), PersistError>;
}

#[async_trait]
impl Handler<StartRun> for BankSettings {
    async fn handle(
        &mut self,
        _: StartRun,
        ctx: &mut Context<Self>,
    ) -> Result<(u32, u64), PersistError> {
        self.runs += 1;
        if self.transfer_limit == 0 {
            self.transfer_limit = 100;
        }
        // Saved before answering: the answer never reflects a lost state.
        ctx.save(self).await?;
        Ok((self.runs, self.transfer_limit))
    }
}
