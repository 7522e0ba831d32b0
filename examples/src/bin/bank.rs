//! The main example: an event-sourced bank account, derived, hosted by the
//! runtime, persisted in a SQLite file. Run it twice: the second run recovers
//! what the first one wrote.
//!
//! ```sh
//! cargo run -p dactor-persist-examples --bin bank            # ./bank.db
//! cargo run -p dactor-persist-examples --bin bank -- /tmp/x.db
//! ```

use dactor_persist::SqliteStorageProvider;
use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message, Runtime};

/// What happened to an account. Stored by name: variants can be reordered
/// or added later without breaking old journals.
#[derive(Debug, Clone, PartialEq, PersistentEvent)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

/// The account: the derive writes the serialization, sequence tracking and
/// snapshots (every 100 events, keeping the newest 2).
#[derive(Debug, Default, EventSourced)]
#[persist(entity = "Account", event = AccountEvent, apply = Self::on_event,
          snapshot_every = 100, keep_snapshots = 2)]
struct Account {
    #[persist(id)]
    id: String,
    owner: String,
    balance: u64,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Account {
    fn on_event(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => self.owner = owner.clone(),
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

/// Commands, each answering the new balance or why it was refused.
struct Open(String);
struct Deposit(u64);
struct Withdraw(u64);
struct Balance;

type Reply = Result<u64, String>;
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

fn account(id: &str) -> Account {
    Account {
        id: id.to_owned(),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bank.db".to_owned());
    let storage = SqliteStorageProvider::open(&path).await?;
    println!("journal: {path} (durable: every acknowledged event is on disk)");

    let runtime = Runtime::builder().storage(storage.clone()).build();
    let acct = runtime.spawn_event_sourced(account("acct-1")).await?;
    let (_, before, seq) = acct.ask(Balance).await?;
    println!("recovered acct-1: balance {before} after {} events", seq.0);

    acct.ask(Open("Ada".into())).await??;
    for amount in [100, 250, 50] {
        let balance = acct.ask(Deposit(amount)).await??;
        println!("deposited {amount:>4}: balance {balance}");
    }
    let balance = acct.ask(Withdraw(120)).await??;
    println!("withdrew   120: balance {balance}");
    match acct.ask(Withdraw(1_000_000)).await? {
        Ok(_) => unreachable!("more than the balance"),
        Err(refused) => println!("refused: {refused}"),
    }
    runtime.shutdown().await;

    // A "restart": a new runtime over the same file recovers the account.
    let runtime = Runtime::builder().storage(storage.clone()).build();
    let acct = runtime.spawn_event_sourced(account("acct-1")).await?;
    let (owner, after, seq) = acct.ask(Balance).await?;
    println!(
        "after restart: {owner}'s balance {after} at event {}",
        seq.0
    );
    assert_eq!(after, before + 280);
    runtime.shutdown().await;
    storage.storage().close().await;
    Ok(())
}
