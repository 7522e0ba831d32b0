//! The `bank` example's settings, tested on the behaviour test kit: every
//! run's answer is saved before it goes out, and the accounts never shrink.

use dactor_persist::testkit::DurableStateTestKit;
use dactor_persist_examples::bank_settings::{BankSettings, Run, StartRun};

fn kit() -> DurableStateTestKit<BankSettings> {
    DurableStateTestKit::new(BankSettings::main)
}

#[tokio::test]
async fn the_first_run_is_saved_before_it_is_answered() {
    let mut kit = kit();
    let out = kit.run(StartRun(100)).await.unwrap();
    let run = out.reply.unwrap();
    assert_eq!(
        run,
        Run {
            number: 1,
            transfer_limit: 100,
            accounts: 100
        }
    );
    let saved = out.saved.expect("saved before the answer");
    assert_eq!((saved.runs, saved.accounts), (1, 100));
}

#[tokio::test]
async fn a_restart_continues_the_count_and_never_drops_accounts() {
    let mut kit = kit();
    kit.run(StartRun(100)).await.unwrap().reply.unwrap();
    kit.restart().await.unwrap();
    // Fewer accounts asked for: the bank keeps all it opened.
    let run = kit.run(StartRun(10)).await.unwrap().reply.unwrap();
    assert_eq!((run.number, run.accounts), (2, 100));
    // More: the bank grows.
    let run = kit.run(StartRun(150)).await.unwrap().reply.unwrap();
    assert_eq!((run.number, run.accounts), (3, 150));
}

#[tokio::test]
async fn settings_that_record_no_accounts_take_the_runs() {
    let mut kit = kit();
    // What a state saved before the field existed reads as (its default);
    // `tests/tests/evolution/states.rs` proves such old states read.
    kit.given_state(BankSettings {
        runs: 4,
        transfer_limit: 50,
        ..BankSettings::main()
    })
    .await
    .unwrap();
    let run = kit.run(StartRun(30)).await.unwrap().reply.unwrap();
    assert_eq!(
        run,
        Run {
            number: 5,
            transfer_limit: 50,
            accounts: 30
        }
    );
}
