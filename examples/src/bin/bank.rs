//! The main example: a small bank. Accounts are event-sourced actors found
//! by id (`Entities`, at most half of them live at once, the rest
//! passivated), money moves between them in concurrent transfers, a
//! durable-state actor keeps the bank's settings, and everything is
//! persisted in one SQLite file. Run it twice: the second run says how it
//! recovered (events replayed, snapshots used, time) and carries on.
//!
//! ```sh
//! cargo run -p dactor-persist-examples --bin bank                 # ./bank.db
//! cargo run -p dactor-persist-examples --bin bank -- /tmp/x.db --accounts 500 --transfers 20000
//! cargo run -p dactor-persist-examples --bin bank -- --help
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use dactor_persist::SqliteStorageProvider;
use dactor_persist::runtime::{Entities, EntityConfig, Runtime};
use dactor_persist_examples::account::{
    Account, Balance, Deposit, Open, Recovered, Withdraw, account,
};
use dactor_persist_examples::bank_settings::{BankSettings, StartRun};

const USAGE: &str = "\
usage: bank [DATABASE] [--accounts N] [--transfers N]

A small bank persisted in a SQLite file (default ./bank.db): N accounts
(default 100) opened with 1,000 each, then transfers (default 5,000, 16 at a
time) between random accounts. Run it again: it recovers every account from
the file and carries on. The total of all balances never changes.";

/// Every account starts with this much.
const OPENING: u64 = 1_000;
/// Transfers in flight at once.
const CONCURRENCY: usize = 16;

struct Options {
    path: String,
    accounts: usize,
    transfers: usize,
}

/// The options, or `Ok(None)` for `--help`.
fn options() -> Result<Option<Options>, String> {
    let mut opts = Options {
        path: "bank.db".into(),
        accounts: 100,
        transfers: 5_000,
    };
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args
                .next()
                .ok_or_else(|| format!("{name} needs a number\n\n{USAGE}"))?;
            value
                .parse()
                .map_err(|_| format!("{name} needs a number, not {value:?}\n\n{USAGE}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--accounts" => opts.accounts = number("--accounts")?.max(2),
            "--transfers" => opts.transfers = number("--transfers")?,
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}\n\n{USAGE}"));
            }
            file if path.is_none() => path = Some(file.to_owned()),
            extra => return Err(format!("one database only, not also {extra:?}\n\n{USAGE}")),
        }
    }
    if let Some(path) = path {
        opts.path = path;
    }
    Ok(Some(opts))
}

fn id(i: usize) -> String {
    format!("acct-{i}")
}

/// A small seeded generator (the transfers of run N are the same each time).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match options() {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(usage) => {
            eprintln!("error: {usage}");
            return ExitCode::from(2);
        }
    };
    match run(&opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: &Options) -> Result<(), Box<dyn Error>> {
    let storage = SqliteStorageProvider::open(&opts.path).await.map_err(|e| {
        format!(
            "cannot open the bank's journal {}: {e} (pass another path as the first argument)",
            opts.path
        )
    })?;
    let runtime = Runtime::builder()
        .storage(storage.clone())
        .dead_letters(|letter| eprintln!("dead letter: {letter}"))
        .build();

    let settings = runtime.spawn_durable_state(BankSettings::main()).await?;
    let run = settings.ask(StartRun(opts.accounts as u64)).await??;
    let (run_no, limit) = (run.number, run.transfer_limit);
    println!("journal: {} (run {run_no})", opts.path);
    let n_accounts = usize::try_from(run.accounts)?;
    if n_accounts > opts.accounts {
        println!(
            "the bank already has {n_accounts} accounts, more than --accounts {} asks for: \
             using all of them, so that their money stays in the total",
            opts.accounts
        );
    }
    let opts = &Options {
        path: opts.path.clone(),
        accounts: n_accounts,
        transfers: opts.transfers,
    };

    let accounts: Entities<Account> =
        runtime.event_sourced_entities(EntityConfig::new(account).max_live(opts.accounts / 2));

    // Recovery: every account, brought back from the file.
    let started = Instant::now();
    let (mut replayed, mut from_snapshots, mut seq_before) = (0, 0, 0);
    let mut fresh = Vec::new();
    for i in 0..opts.accounts {
        let (seq, applied) = accounts.ask(&id(i), Recovered).await?;
        let seq = u64::try_from(seq.0)?;
        replayed += applied;
        from_snapshots += seq - applied.min(seq);
        seq_before += seq;
        if seq == 0 {
            fresh.push(i);
        }
    }
    let existing = opts.accounts - fresh.len();
    if existing > 0 {
        println!(
            "recovered {existing} accounts in {:.0} ms: {replayed} events replayed, {from_snapshots} covered by snapshots",
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    // Opening: the accounts that do not exist yet.
    for &i in &fresh {
        accounts.ask(&id(i), Open(format!("owner {i}"))).await??;
        accounts.ask(&id(i), Deposit(OPENING)).await??;
    }
    if !fresh.is_empty() {
        println!("opened {} accounts with {OPENING} each", fresh.len());
    }

    // Transfers, 16 at a time, with progress.
    let started = Instant::now();
    let per_task = opts.transfers.div_ceil(CONCURRENCY);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let accounts = accounts.clone();
            let done = done.clone();
            let (n, total) = (opts.accounts as u64, opts.transfers);
            let count = per_task.min(total.saturating_sub(t * per_task));
            tokio::spawn(async move {
                let mut rng = Lcg(u64::from(run_no) << 32 | t as u64);
                let mut refused = 0;
                for _ in 0..count {
                    let from = rng.below(n) as usize;
                    let to = (from + 1 + rng.below(n - 1) as usize) % n as usize;
                    let amount = 1 + rng.below(limit);
                    match accounts.ask(&id(from), Withdraw(amount)).await? {
                        Ok(_) => {
                            accounts.ask(&id(to), Deposit(amount)).await?.map_err(|e| {
                                format!("the deposit of {amount} into {} failed: {e}", id(to))
                            })?;
                        }
                        Err(_) => refused += 1,
                    }
                    let now = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if now.is_multiple_of((total / 10).max(1)) {
                        println!("  {:>3}% of the transfers", now * 100 / total.max(1));
                    }
                }
                Ok::<usize, Box<dyn Error + Send + Sync>>(refused)
            })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        refused += task.await?.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    // Summary: balances against the total that never changes.
    let (mut total, mut seq_after) = (0, 0);
    for i in 0..opts.accounts {
        let (_, balance, seq) = accounts.ask(&id(i), Balance).await?;
        total += balance;
        seq_after += u64::try_from(seq.0)?;
    }
    let written = seq_after - seq_before;
    let stats = accounts.stats();
    println!(
        "{} transfers ({refused} refused for want of funds) in {elapsed:.2} s: {written} events written, {:.0} events/s",
        opts.transfers,
        written as f64 / elapsed.max(1e-9)
    );
    println!(
        "{} accounts, at most {} live: {} passivations",
        opts.accounts,
        opts.accounts / 2,
        stats.passivated
    );
    let expected = OPENING * opts.accounts as u64;
    if total != expected {
        return Err(format!(
            "the balances add up to {total}, not {expected} ({} accounts of {OPENING}): money \
             was created or lost; the journal {} may be damaged (`dactor-persist verify {}` \
             checks it)",
            opts.accounts, opts.path, opts.path
        )
        .into());
    }
    println!("balances add up to {total}, as they must");

    runtime.shutdown().await;
    storage.storage().close().await;
    Ok(())
}
