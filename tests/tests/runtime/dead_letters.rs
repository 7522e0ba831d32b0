//! Issue 13 point 4: a told message whose handler answers a failure, and a
//! told message a stopped actor never handles, are logged with the
//! persistence id and the message type, and reach the runtime's hook.

use std::sync::{Arc, Mutex};

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, DeadLetter, DeadLetterReason, Handler, Message, Runtime};

use super::observability::{Recorder, find};

/// A recorder installed as the process's global subscriber, once: the
/// dead letter's log line is written on the actor's task, and a thread-local
/// subscriber races with the other tests' threads over tracing's callsite
/// cache (a flake seen in CI). Lines are told apart by persistence id.
fn global_recorder() -> &'static Recorder {
    static RECORDER: std::sync::OnceLock<Recorder> = std::sync::OnceLock::new();
    RECORDER.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let recorder = Recorder::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(recorder.clone()),
        )
        .expect("no other test sets the global subscriber");
        recorder
    })
}

#[derive(Default, DurableState)]
#[persist(entity = "Cart")]
struct Cart {
    #[persist(id)]
    id: String,
    items: u32,
    checked_out: bool,
}

struct AddItem;
impl Message for AddItem {
    type Reply = Result<u32, String>;
}
#[async_trait]
impl Handler<AddItem> for Cart {
    async fn handle(&mut self, _: AddItem, _: &mut Context<Self>) -> Result<u32, String> {
        if self.checked_out {
            return Err("the cart is checked out".into());
        }
        self.items += 1;
        Ok(self.items)
    }
}

struct CheckOut;
impl Message for CheckOut {
    type Reply = ();
}
#[async_trait]
impl Handler<CheckOut> for Cart {
    async fn handle(&mut self, _: CheckOut, ctx: &mut Context<Self>) {
        self.checked_out = true;
        ctx.stop();
    }
}

fn runtime_with_hook() -> (Runtime, Arc<Mutex<Vec<DeadLetter>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::new())
        .dead_letters(move |letter| sink.lock().unwrap().push(letter))
        .build();
    (runtime, seen)
}

fn cart(id: &str) -> Cart {
    Cart {
        id: id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_told_message_whose_handler_fails_is_a_logged_dead_letter() {
    let recorder = global_recorder();
    let (runtime, seen) = runtime_with_hook();
    let c = runtime.spawn_durable_state(cart("c1")).await.unwrap();
    c.tell(AddItem).await.unwrap();
    // Checked out without stopping: a second actor type would be noise.
    c.ask(AddItem).await.unwrap().unwrap();
    {
        let letters = seen.lock().unwrap();
        assert!(
            letters.is_empty(),
            "successes are not dead letters: {letters:?}"
        );
    }
    c.tell(CheckOut).await.unwrap();
    c.stopped().await;

    let c = runtime.spawn_durable_state(cart("c1")).await.unwrap();
    for _ in 0..3 {
        c.tell(AddItem).await.unwrap();
    }
    // An ask's failure goes to its caller, not to the dead letters.
    assert!(c.ask(AddItem).await.unwrap().is_err());
    let letters = seen.lock().unwrap().clone();
    assert_eq!(letters.len(), 3, "{letters:?}");
    for letter in &letters {
        assert_eq!(letter.persistence_id, PersistenceId::new("Cart", "c1"));
        assert!(
            letter.message_type.ends_with("AddItem"),
            "{}",
            letter.message_type
        );
        assert_eq!(
            letter.reason,
            DeadLetterReason::Failed("the cart is checked out".into())
        );
    }
    let logged = recorder.0.lock().unwrap().clone();
    let line = find(&logged, "dead letter", "Cart:c1").expect("a log line");
    assert!(line.field("message_type").unwrap().ends_with("AddItem"));
    assert!(line.message.contains("checked out"), "{}", line.message);
}

#[tokio::test]
async fn a_message_told_to_a_stopped_actor_is_a_dead_letter() {
    let (runtime, seen) = runtime_with_hook();
    let c = runtime.spawn_durable_state(cart("c2")).await.unwrap();
    c.stop().await;
    assert!(c.tell(AddItem).await.is_err());
    assert!(c.try_tell(AddItem).is_err());
    let letters = seen.lock().unwrap().clone();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(
        |l| matches!(&l.reason, DeadLetterReason::NotDelivered(why) if why.contains("stopped"))
    ));
}

#[tokio::test]
async fn told_messages_queued_behind_a_graceful_stop_are_handled_and_their_failures_reported() {
    let (runtime, seen) = runtime_with_hook();
    let c = runtime.spawn_durable_state(cart("c3")).await.unwrap();
    c.ready().await.unwrap();
    // Queued behind the checkout that stops the actor: never handled.
    c.tell(CheckOut).await.unwrap();
    c.tell(AddItem).await.unwrap();
    c.tell(AddItem).await.unwrap();
    c.stopped().await;
    let letters = seen.lock().unwrap().clone();
    // A graceful stop handles what was queued: they fail as checked out.
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters
            .iter()
            .all(|l| matches!(l.reason, DeadLetterReason::Failed(_)))
    );
}

struct Explode;
impl Message for Explode {
    type Reply = ();
}
#[async_trait]
impl Handler<Explode> for Cart {
    async fn handle(&mut self, _: Explode, _: &mut Context<Self>) {
        panic!("boom in the handler");
    }
}

#[tokio::test]
async fn a_told_message_whose_handler_panics_is_a_dead_letter() {
    let (runtime, seen) = runtime_with_hook();
    let c = runtime.spawn_durable_state(cart("c5")).await.unwrap();
    c.tell(Explode).await.unwrap();
    c.stopped().await;
    let letters = seen.lock().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].message_type.ends_with("Explode"));
    assert!(
        matches!(&letters[0].reason, DeadLetterReason::Failed(why) if why.contains("boom in the handler")),
        "{letters:?}"
    );
}

#[tokio::test]
async fn a_panicking_hook_does_not_take_the_actor_down() {
    let runtime = Runtime::builder()
        .storage(InMemoryStorageProvider::new())
        .dead_letters(|_| panic!("the hook fails"))
        .build();
    let c = runtime.spawn_durable_state(cart("c4")).await.unwrap();
    c.ask(AddItem).await.unwrap().unwrap();
    c.tell(CheckOut).await.unwrap();
    c.stopped().await;
    let c = runtime.spawn_durable_state(cart("c4")).await.unwrap();
    c.tell(AddItem).await.unwrap();
    assert!(c.ask(AddItem).await.unwrap().is_err(), "still answering");
}

#[derive(Default, DurableState)]
#[persist(entity = "Strict", save_every = 1)]
struct Strict {
    #[persist(id)]
    id: String,
    items: u32,
}

#[async_trait]
impl Handler<AddItem> for Strict {
    async fn handle(&mut self, _: AddItem, _: &mut Context<Self>) -> Result<u32, String> {
        self.items += 1;
        Ok(self.items)
    }
}

#[tokio::test]
async fn told_messages_left_in_the_mailbox_of_an_actor_that_fails_are_dead_letters() {
    use dactor_persist::testkit::{FailingStorage, Op};
    let store = Arc::new(FailingStorage::new(InMemoryStorage::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let runtime = Runtime::builder()
        .storage(store.provider())
        .dead_letters(move |letter| sink.lock().unwrap().push(letter))
        .build();
    let s = runtime
        .spawn_durable_state(Strict {
            id: "s".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    s.ready().await.unwrap();
    // The first save fails under Stop: the actor stops with two letters
    // still queued behind the one being handled.
    store
        .only(&[Op::SaveState])
        .delay(Some(std::time::Duration::from_millis(50)))
        .fail_always();
    for _ in 0..3 {
        s.tell(AddItem).await.unwrap();
    }
    let reason = s.stopped().await;
    assert!(reason.contains("a save failed"), "{reason}");
    let letters = seen.lock().unwrap().clone();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|l| matches!(&l.reason,
        DeadLetterReason::NotDelivered(why) if why.contains("a save failed"))));
}
