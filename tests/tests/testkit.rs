//! The behaviour test kit itself: it catches types that do not survive
//! their encoding, injects persist failures, restarts from storage.

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message};
use dactor_persist::testkit::{DurableStateTestKit, EventSourcedTestKit, Op};
use serde::{Deserialize, Serialize};

/// A classic serde mistake with a non-self-describing format: a field left
/// out when empty cannot be read back, since nothing says it is missing.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Memo {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    pages: u32,
}

#[derive(Debug, PartialEq, PersistentEvent)]
enum Event {
    Noted(u32),
}

#[derive(Default, EventSourced)]
#[persist(entity = "Notes", event = Event, apply = Self::on,
          persist_failure = "return_error")]
struct Notes {
    #[persist(id)]
    id: u8,
    total: u32,
    /// Stored in snapshots: breaks them while `text` is `None`.
    memo: Memo,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Notes {
    fn on(&mut self, Event::Noted(n): &Event) {
        self.total += n;
        self.memo.pages += 1;
    }
}

struct Note(u32);
impl Message for Note {
    type Reply = Result<u32, String>;
}

#[async_trait]
impl Handler<Note> for Notes {
    async fn handle(&mut self, Note(n): Note, ctx: &mut Context<Self>) -> Result<u32, String> {
        ctx.persist(self, Event::Noted(n))
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.total)
    }
}

fn notes() -> Notes {
    Notes {
        id: 1,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_state_that_does_not_survive_its_encoding_fails_the_message_that_made_it() {
    let mut kit = EventSourcedTestKit::new(notes);
    let err = kit.run(Note(2)).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("does not survive its encoding"), "{text}");
    assert!(text.contains("Notes:1"), "{text}");

    // The same actor passes with the check off: the bug would ship.
    let mut unchecked = EventSourcedTestKit::new(notes).check_encoding(false);
    assert_eq!(unchecked.run(Note(2)).await.unwrap().reply, Ok(2));
}

#[tokio::test]
async fn an_injected_persist_failure_reaches_the_handler_and_persists_nothing() {
    let mut kit = EventSourcedTestKit::new(notes).check_encoding(false);
    kit.run(Note(1)).await.unwrap();
    kit.storage().only(Op::WRITES).fail_next(1);
    let out = kit.run(Note(5)).await.unwrap();
    assert!(out.reply.unwrap_err().contains("injected"));
    assert!(out.events.is_empty());
    // `return_error`: the actor carries on, unchanged.
    let out = kit.run(Note(3)).await.unwrap();
    assert_eq!(out.reply, Ok(4));
    assert_eq!(out.events, [Event::Noted(3)]);
    assert_eq!(kit.storage().calls(Op::WriteEvent), 3);
}

#[tokio::test]
async fn restart_recovers_what_was_persisted_and_continues() {
    let mut kit = EventSourcedTestKit::new(notes).check_encoding(false);
    kit.given([Event::Noted(10), Event::Noted(20)])
        .await
        .unwrap();
    kit.run(Note(1)).await.unwrap();
    kit.restart().await.unwrap();
    assert_eq!(
        kit.state(|n| (n.total, n.seq)).await.unwrap(),
        (31, SequenceId(3))
    );
    assert_eq!(
        kit.events().await.unwrap(),
        [Event::Noted(10), Event::Noted(20), Event::Noted(1)]
    );
}

#[tokio::test]
async fn a_panicking_look_is_an_error_and_the_actor_carries_on() {
    let mut kit = EventSourcedTestKit::new(notes).check_encoding(false);
    let err = kit
        .state(|_: &Notes| -> u32 { panic!("looking went wrong") })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(kit.run(Note(1)).await.unwrap().reply, Ok(1));
}

#[derive(Debug, Default, DurableState)]
#[persist(entity = "Doc", save_every = 1)]
struct Doc {
    #[persist(id)]
    id: u8,
    memo: Memo,
}

struct Title(Option<&'static str>);
impl Message for Title {
    type Reply = ();
}

#[async_trait]
impl Handler<Title> for Doc {
    async fn handle(&mut self, Title(t): Title, _: &mut Context<Self>) {
        self.memo.text = t.map(str::to_owned);
        self.memo.pages += 1;
    }
}

#[tokio::test]
async fn a_durable_state_that_does_not_survive_its_encoding_is_caught() {
    let mut kit = DurableStateTestKit::new(|| Doc {
        id: 1,
        ..Default::default()
    });
    // With a title the memo round-trips; without one it does not.
    let out = kit.run(Title(Some("a"))).await.unwrap();
    assert_eq!(out.saved.unwrap().memo.text.as_deref(), Some("a"));
    let err = kit.run(Title(None)).await.unwrap_err();
    assert!(
        err.to_string().contains("does not survive its encoding"),
        "{err}"
    );
}

#[tokio::test]
async fn given_state_must_be_the_kits_actor() {
    let mut kit = DurableStateTestKit::new(|| Doc {
        id: 1,
        ..Default::default()
    });
    let err = kit
        .given_state(Doc {
            id: 2,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Doc:1"), "{err}");
}

/// A field whose encoding keeps nothing: every value writes as 0 and reads
/// back as 0, so an event's bytes round-trip while its meaning is lost.
#[derive(Debug, Clone, PartialEq)]
struct Forgetful(u32);

impl Serialize for Forgetful {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(0)
    }
}

impl<'de> Deserialize<'de> for Forgetful {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Forgetful)
    }
}

#[derive(Debug, PartialEq, PersistentEvent)]
enum TallyEvent {
    Counted(Forgetful),
}

#[derive(Default, EventSourced)]
#[persist(entity = "Tally", event = TallyEvent, apply = Self::on)]
struct Tally {
    #[persist(id)]
    id: u8,
    total: u32,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Tally {
    fn on(&mut self, TallyEvent::Counted(n): &TallyEvent) {
        self.total += n.0;
    }
}

struct Count(u32);
impl Message for Count {
    type Reply = Result<u32, PersistError>;
}

#[async_trait]
impl Handler<Count> for Tally {
    async fn handle(
        &mut self,
        Count(n): Count,
        ctx: &mut Context<Self>,
    ) -> Result<u32, PersistError> {
        ctx.persist(self, TallyEvent::Counted(Forgetful(n))).await?;
        Ok(self.total)
    }
}

#[tokio::test]
async fn an_event_that_loses_its_meaning_in_the_journal_is_caught() {
    let tally = || Tally {
        id: 1,
        ..Default::default()
    };
    // Its bytes round-trip (0 in, 0 out), but the state recovered from the
    // journal is not the live one.
    let mut kit = EventSourcedTestKit::new(tally);
    let text = kit.run(Count(5)).await.unwrap_err().to_string();
    assert!(
        text.contains("recovered from the persisted events"),
        "{text}"
    );
    assert!(text.contains("Tally:1"), "{text}");

    let mut unchecked = EventSourcedTestKit::new(tally).check_encoding(false);
    assert_eq!(unchecked.run(Count(5)).await.unwrap().reply, Ok(5));
    // Unchecked, the bug shows only after a restart.
    unchecked.restart().await.unwrap();
    assert_eq!(unchecked.state(|t| t.total).await.unwrap(), 0);
}
