//! The `bank` example's account, tested on the behaviour test kit: given
//! events, when a command, then the reply, the events and the state.

use dactor_persist::prelude::*;
use dactor_persist::testkit::{EventSourcedTestKit, Op};
use dactor_persist_examples::account::{
    Account, AccountEvent, Balance, Deposit, Open, Withdraw, account,
};

fn kit() -> EventSourcedTestKit<Account> {
    EventSourcedTestKit::new(|| account("a-1"))
}

#[tokio::test]
async fn opening_records_the_owner_once() {
    let mut kit = kit();
    let out = kit.run(Open("Ada".into())).await.unwrap();
    assert_eq!(out.reply, Ok(0));
    assert_eq!(
        out.events,
        [AccountEvent::Opened {
            owner: "Ada".into()
        }]
    );
    // Opening again records nothing.
    let again = kit.run(Open("Bob".into())).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(kit.state(|a| a.owner.clone()).await.unwrap(), "Ada");
}

#[tokio::test]
async fn a_deposit_after_history_adds_to_the_balance() {
    let mut kit = kit();
    kit.given([
        AccountEvent::Opened {
            owner: "Ada".into(),
        },
        AccountEvent::Deposited { amount: 100 },
    ])
    .await
    .unwrap();
    let out = kit.run(Deposit(50)).await.unwrap();
    assert_eq!(out.reply, Ok(150));
    assert_eq!(out.events, [AccountEvent::Deposited { amount: 50 }]);
    assert_eq!(
        kit.state(|a| (a.balance, a.seq)).await.unwrap(),
        (150, SequenceId(3))
    );
}

#[tokio::test]
async fn a_withdrawal_beyond_the_balance_is_refused_and_records_nothing() {
    let mut kit = kit();
    kit.given([AccountEvent::Deposited { amount: 10 }])
        .await
        .unwrap();
    let out = kit.run(Withdraw(11)).await.unwrap();
    assert!(out.reply.unwrap_err().contains("insufficient funds"));
    assert!(out.events.is_empty());
    assert_eq!(kit.events().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_balance_survives_a_restart() {
    let mut kit = kit();
    kit.run(Open("Ada".into())).await.unwrap();
    kit.run(Deposit(70)).await.unwrap();
    kit.restart().await.unwrap();
    let out = kit.run(Balance).await.unwrap();
    assert_eq!(out.reply, ("Ada".to_owned(), 70, SequenceId(2)));
    assert!(out.events.is_empty());
}

#[tokio::test]
async fn recovery_starts_from_a_snapshot_when_there_is_one() {
    let mut kit = kit();
    kit.given((0..150).map(|_| AccountEvent::Deposited { amount: 1 }))
        .await
        .unwrap()
        .given_snapshot()
        .await
        .unwrap()
        .given([AccountEvent::Deposited { amount: 5 }])
        .await
        .unwrap();
    // Only the event after the snapshot was replayed.
    assert_eq!(
        kit.state(|a| (a.balance, a.seq, a.applied)).await.unwrap(),
        (155, SequenceId(151), 1)
    );
}

#[tokio::test]
async fn a_failed_write_stops_the_account_without_changing_it() {
    let mut kit = kit();
    kit.run(Deposit(5)).await.unwrap();
    kit.storage().only(Op::WRITES).fail_next(1);
    // The account's policy is the default, Stop: the ask gets the error.
    let err = kit.run(Deposit(7)).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    // What was stored is what was acknowledged.
    kit.restart().await.unwrap();
    assert_eq!(kit.state(|a| a.balance).await.unwrap(), 5);
}
