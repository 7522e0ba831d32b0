//! The main example: an event-sourced bank account, derived, hosted by the
//! runtime, persisted in a SQLite file. Run it twice: the second run recovers
//! what the first one wrote.
//!
//! ```sh
//! cargo run -p dactor-persist-examples --bin bank            # ./bank.db
//! cargo run -p dactor-persist-examples --bin bank -- /tmp/x.db
//! ```

use dactor_persist::SqliteStorageProvider;
use dactor_persist::runtime::Runtime;
use dactor_persist_examples::account::{Balance, Deposit, Open, Withdraw, account};

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
