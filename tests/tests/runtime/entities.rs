//! Issue 13 points 1 and 2: entities by id, spawned once, passivated when
//! idle or least recently used, brought back by their next message with
//! nothing lost or reordered.

use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, EntityConfig, Handler, Message, Runtime};

/// Remembers every number it was told, in order.
#[derive(Default, Debug, DurableState)]
#[persist(entity = "Log")]
struct Log {
    #[persist(id)]
    id: String,
    seen: Vec<u32>,
}

struct Note(u32);
impl Message for Note {
    type Reply = ();
}
#[async_trait]
impl Handler<Note> for Log {
    async fn handle(&mut self, Note(n): Note, _: &mut Context<Self>) {
        self.seen.push(n);
    }
}

struct Seen;
impl Message for Seen {
    type Reply = Vec<u32>;
}
#[async_trait]
impl Handler<Seen> for Log {
    async fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> Vec<u32> {
        self.seen.clone()
    }
}

fn log(id: &str) -> Log {
    Log {
        id: id.to_owned(),
        ..Default::default()
    }
}

fn runtime() -> Runtime {
    Runtime::builder()
        .storage(InMemoryStorageProvider::new())
        .build()
}

// Several worker threads, so that the first uses really race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_live_actor_answers_for_an_id_and_concurrent_first_uses_spawn_once() {
    let rt = runtime();
    let logs = rt.durable_state_entities(EntityConfig::new(log));
    let gets: Vec<_> = (0..50)
        .map(|_| {
            let logs = logs.clone();
            tokio::spawn(async move { logs.get("a").await.unwrap() })
        })
        .collect();
    let mut refs = Vec::new();
    for g in gets {
        refs.push(g.await.unwrap());
    }
    assert_eq!(logs.stats().spawned, 1);
    assert_eq!(rt.actor_count(), 1);
    logs.tell("a", Note(1)).await.unwrap();
    // Every handle reaches the one actor.
    assert_eq!(refs[17].ask(Seen).await.unwrap(), [1]);
    // Spawning by hand keeps working, and is not confused with entities.
    let other = rt.spawn_durable_state(log("by-hand")).await.unwrap();
    other.tell(Note(9)).await.unwrap();
    assert!(matches!(
        logs.get("by-hand").await,
        Err(PersistError::AlreadyRunning(_))
    ));
}

#[tokio::test]
async fn the_least_recently_used_is_passivated_and_comes_back_with_its_state() {
    let rt = runtime();
    let logs = rt.durable_state_entities(EntityConfig::new(log).max_live(2));
    logs.tell("a", Note(1)).await.unwrap();
    logs.tell("b", Note(2)).await.unwrap();
    logs.tell("a", Note(3)).await.unwrap(); // "b" is now the least recent
    logs.tell("c", Note(4)).await.unwrap();
    let stats = logs.stats();
    assert_eq!((stats.live, stats.passivated), (2, 1));
    // "b" comes back, recovered from its saved state.
    assert_eq!(logs.ask("b", Seen).await.unwrap(), [2]);
    assert_eq!(logs.ask("a", Seen).await.unwrap(), [1, 3]);
    assert!(logs.live() <= 2);
}

#[tokio::test(start_paused = true)]
async fn an_idle_entity_is_passivated_and_its_next_message_brings_it_back() {
    let rt = runtime();
    let logs =
        rt.durable_state_entities(EntityConfig::new(log).idle_timeout(Duration::from_secs(60)));
    logs.tell("a", Note(1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    logs.tell("b", Note(2)).await.unwrap();
    assert_eq!(logs.live(), 2);
    tokio::time::sleep(Duration::from_secs(45)).await;
    // "a" idled 75 s, "b" 45 s.
    assert_eq!(logs.live(), 1);
    assert_eq!(logs.stats().passivated, 1);
    assert_eq!(logs.ask("a", Seen).await.unwrap(), [1]);
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(logs.live(), 0);
    assert_eq!(rt.actor_count(), 0, "passivated actors left memory");
}

#[tokio::test]
async fn no_message_is_lost_or_reordered_while_entities_stop_and_restart() {
    let rt = runtime();
    // One live entity at a time: every message to the other id passivates.
    let logs = rt.durable_state_entities(EntityConfig::new(log).max_live(1));
    // Alternating: each message passivates the other entity, whose next
    // message then waits for it to stop and goes to its next incarnation.
    for n in 0..300 {
        logs.tell("x", Note(n)).await.unwrap();
        logs.tell("y", Note(n)).await.unwrap();
    }
    let expected: Vec<u32> = (0..300).collect();
    assert_eq!(logs.ask("x", Seen).await.unwrap(), expected);
    assert_eq!(logs.ask("y", Seen).await.unwrap(), expected);
    let stats = logs.stats();
    assert!(
        stats.passivated >= 500,
        "the entities did stop and restart: {stats:?}"
    );
}

/// The same with senders on several threads, so that passivation races
/// with sends: a message that finds the mailbox closing waits for the stop
/// and goes to the next incarnation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_lose_nothing_while_their_entities_churn() {
    let rt = runtime();
    let logs = rt.durable_state_entities(EntityConfig::new(log).max_live(1));
    let senders: Vec<_> = ["p", "q", "r"]
        .into_iter()
        .map(|id| {
            let logs = logs.clone();
            tokio::spawn(async move {
                for n in 0..200 {
                    logs.tell(id, Note(n)).await.unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let expected: Vec<u32> = (0..200).collect();
    for id in ["p", "q", "r"] {
        assert_eq!(logs.ask(id, Seen).await.unwrap(), expected, "{id}");
    }
}

/// Passivation asked from outside tokio (a plain thread) does not panic,
/// and the entity comes back on its next message.
#[test]
fn passivating_from_outside_tokio_is_safe() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = tokio.block_on(async { runtime() });
    let logs = rt.durable_state_entities(EntityConfig::new(log));
    tokio.block_on(logs.tell("a", Note(1))).unwrap();
    logs.passivate("a");
    assert_eq!(logs.live(), 0);
    assert_eq!(tokio.block_on(logs.ask("a", Seen)).unwrap(), [1]);
}

/// An event-sourced entity: each `Add` persists one event; snapshots every
/// 5 events.
#[derive(Debug, Clone, PartialEq, PersistentEvent)]
enum TallyEvent {
    Added(u32),
}

#[derive(Default, Debug, EventSourced)]
#[persist(entity = "Tally", event = TallyEvent, snapshot_every = 5)]
struct Tally {
    #[persist(id)]
    id: String,
    added: Vec<u32>,
    #[persist(sequence)]
    seq: SequenceId,
}

impl ApplyEvent<TallyEvent> for Tally {
    fn apply_event(&mut self, TallyEvent::Added(n): &TallyEvent) {
        self.added.push(*n);
    }
}

struct Add(u32);
impl Message for Add {
    type Reply = Result<SequenceId, PersistError>;
}
#[async_trait]
impl Handler<Add> for Tally {
    async fn handle(
        &mut self,
        Add(n): Add,
        ctx: &mut Context<Self>,
    ) -> Result<SequenceId, PersistError> {
        ctx.persist(self, TallyEvent::Added(n)).await?;
        Ok(self.seq)
    }
}

struct Added;
impl Message for Added {
    type Reply = (Vec<u32>, SequenceId);
}
#[async_trait]
impl Handler<Added> for Tally {
    async fn handle(&mut self, _: Added, _: &mut Context<Self>) -> (Vec<u32>, SequenceId) {
        (self.added.clone(), self.seq)
    }
}

fn tally(id: &str) -> Tally {
    Tally {
        id: id.to_owned(),
        ..Default::default()
    }
}

/// Event-sourced entities churn through a cap of one: every incarnation
/// recovers from the journal and its snapshots, continues at the next
/// sequence, and nothing is lost, reordered or written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_sourced_entities_recover_from_journal_and_snapshots_on_every_return() {
    let storage = InMemoryStorageProvider::new();
    let rt = Runtime::builder().storage(storage.clone()).build();
    let tallies = rt.event_sourced_entities(EntityConfig::new(tally).max_live(1));
    for n in 0..40 {
        for id in ["x", "y"] {
            let seq = tallies.ask(id, Add(n)).await.unwrap().unwrap();
            assert_eq!(seq, SequenceId(i64::from(n) + 1), "{id} after {n}");
        }
    }
    let stats = tallies.stats();
    assert!(stats.passivated >= 70, "the entities did churn: {stats:?}");
    let expected: Vec<u32> = (0..40).collect();
    for id in ["x", "y"] {
        let (added, seq) = tallies.ask(id, Added).await.unwrap();
        assert_eq!((added, seq), (expected.clone(), SequenceId(40)), "{id}");
        let pid = tally(id).persistence_id();
        let journal = storage.journal(&pid).unwrap();
        let stored: Vec<i64> = journal
            .read_events(&pid, SequenceId(1))
            .await
            .unwrap()
            .iter()
            .map(|e| e.sequence_id.0)
            .collect();
        assert_eq!(stored, (1..=40).collect::<Vec<_>>(), "{id}'s journal");
        let snapshot = storage
            .snapshots(&pid)
            .unwrap()
            .load_latest_snapshot(&pid)
            .await
            .unwrap()
            .expect("snapshots every 5 events");
        assert_eq!(
            snapshot.sequence_id,
            SequenceId(40),
            "{id}'s latest snapshot"
        );
    }
    rt.shutdown().await;
}

/// An idle event-sourced entity is passivated and comes back with its
/// state on its next message.
#[tokio::test(start_paused = true)]
async fn an_idle_event_sourced_entity_comes_back_with_its_state() {
    let rt = runtime();
    let tallies =
        rt.event_sourced_entities(EntityConfig::new(tally).idle_timeout(Duration::from_secs(10)));
    tallies.ask("t", Add(7)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!((tallies.live(), tallies.stats().passivated), (0, 1));
    assert_eq!(
        tallies.ask("t", Add(8)).await.unwrap().unwrap(),
        SequenceId(2)
    );
    assert_eq!(
        tallies.ask("t", Added).await.unwrap(),
        (vec![7, 8], SequenceId(2))
    );
}
