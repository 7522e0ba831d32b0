//! The actors the runtime tests host.

use std::sync::Arc;
use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message, Runtime};
use dactor_persist::testkit::FailingStorage;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Added(i64),
}

/// An event-sourced counter, written by hand so that its policies and
/// snapshot config can differ per test.
pub struct Counter {
    pub id: String,
    pub total: i64,
    pub seq: SequenceId,
    pub policy: PersistFailurePolicy,
    pub recovery: RecoveryFailurePolicy,
    pub snapshots: Option<SnapshotConfig>,
    /// When set, `Add` waits for a permit before persisting.
    pub gate: Option<Arc<Semaphore>>,
}

impl Actor for Counter {
    type Args = String;
    type Deps = ();
    fn create(id: String, _: ()) -> Self {
        Counter {
            id,
            total: 0,
            seq: SequenceId(0),
            policy: PersistFailurePolicy::Stop,
            recovery: RecoveryFailurePolicy::Stop,
            snapshots: None,
            gate: None,
        }
    }
}

impl Counter {
    pub fn new(id: &str) -> Self {
        Counter::create(id.to_owned(), ())
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Counter", &self.id)
    }
    fn persist_failure_policy(&self) -> PersistFailurePolicy {
        self.policy.clone()
    }
    fn recovery_failure_policy(&self) -> RecoveryFailurePolicy {
        self.recovery.clone()
    }
}

fn decode_i64(p: &[u8]) -> Result<i64, PersistError> {
    let bytes: [u8; 8] = p
        .try_into()
        .map_err(|_| PersistError::SerializationFailed(format!("{} bytes, expected 8", p.len())))?;
    Ok(i64::from_le_bytes(bytes))
}

impl EventSourced for Counter {
    type Event = Event;
    fn apply(&mut self, Event::Added(n): &Event) {
        self.total += n;
    }
    fn deserialize_event(&self, payload: &[u8]) -> Result<Event, PersistError> {
        decode_i64(payload).map(Event::Added)
    }
    fn serialize_event(&self, Event::Added(n): &Event) -> Result<Vec<u8>, PersistError> {
        Ok(n.to_le_bytes().to_vec())
    }
    fn event_type(&self, _: &Event) -> &'static str {
        "Added"
    }
    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.total = decode_i64(&payload)?;
        Ok(())
    }
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        Ok(self.total.to_le_bytes().to_vec())
    }
    fn snapshot_config(&self) -> Option<SnapshotConfig> {
        self.snapshots.clone()
    }
    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }
    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}

/// Adds to the counter: `ask` answers the new total or the persist error.
pub struct Add(pub i64);
impl Message for Add {
    type Reply = Result<i64, PersistError>;
}

#[async_trait]
impl Handler<Add> for Counter {
    async fn handle(&mut self, Add(n): Add, ctx: &mut Context<Self>) -> Result<i64, PersistError> {
        if let Some(gate) = &self.gate
            && let Ok(permit) = gate.acquire().await
        {
            permit.forget();
        }
        ctx.persist(self, Event::Added(n)).await?;
        Ok(self.total)
    }
}

/// Adds several in one atomic batch.
pub struct AddAll(pub Vec<i64>);
impl Message for AddAll {
    type Reply = Result<SequenceId, PersistError>;
}

#[async_trait]
impl Handler<AddAll> for Counter {
    async fn handle(
        &mut self,
        AddAll(ns): AddAll,
        ctx: &mut Context<Self>,
    ) -> Result<SequenceId, PersistError> {
        ctx.persist_all(self, ns.into_iter().map(Event::Added).collect())
            .await
    }
}

/// Reads the state without persisting.
pub struct Get;
impl Message for Get {
    type Reply = (i64, SequenceId);
}

#[async_trait]
impl Handler<Get> for Counter {
    async fn handle(&mut self, _: Get, _ctx: &mut Context<Self>) -> (i64, SequenceId) {
        (self.total, self.seq)
    }
}

/// Panics in the handler.
pub struct Boom;
impl Message for Boom {
    type Reply = ();
}

#[async_trait]
impl Handler<Boom> for Counter {
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("boom");
    }
}

/// Asks the actor to stop itself.
pub struct StopYourself;
impl Message for StopYourself {
    type Reply = ();
}

#[async_trait]
impl Handler<StopYourself> for Counter {
    async fn handle(&mut self, _: StopYourself, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A durable-state actor, written by hand so that its save config and
/// policy can differ per test.
pub struct Settings {
    pub id: String,
    pub entries: Vec<(String, String)>,
    pub save: Option<SaveConfig>,
    pub policy: PersistFailurePolicy,
}

impl Actor for Settings {
    type Args = String;
    type Deps = ();
    fn create(id: String, _: ()) -> Self {
        Settings {
            id,
            entries: Vec::new(),
            save: None,
            policy: PersistFailurePolicy::Stop,
        }
    }
}

impl PersistentActor for Settings {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Settings", &self.id)
    }
    fn persist_failure_policy(&self) -> PersistFailurePolicy {
        self.policy.clone()
    }
}

impl DurableState for Settings {
    fn serialize_state(&self) -> Result<Vec<u8>, PersistError> {
        postcard::to_allocvec(&self.entries)
            .map_err(|e| PersistError::SerializationFailed(e.to_string()))
    }
    fn restore_state(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.entries = postcard::from_bytes(&payload)
            .map_err(|e| PersistError::SerializationFailed(e.to_string()))?;
        Ok(())
    }
    fn save_config(&self) -> Option<SaveConfig> {
        self.save.clone()
    }
}

/// Sets one entry.
pub struct Set(pub &'static str, pub &'static str);
impl Message for Set {
    type Reply = usize;
}

#[async_trait]
impl Handler<Set> for Settings {
    async fn handle(&mut self, Set(k, v): Set, _ctx: &mut Context<Self>) -> usize {
        self.entries.push((k.to_owned(), v.to_owned()));
        self.entries.len()
    }
}

/// Saves now, on demand.
pub struct SaveNow;
impl Message for SaveNow {
    type Reply = Result<(), PersistError>;
}

#[async_trait]
impl Handler<SaveNow> for Settings {
    async fn handle(&mut self, _: SaveNow, ctx: &mut Context<Self>) -> Result<(), PersistError> {
        ctx.save(self).await
    }
}

/// Reads the entries.
pub struct Entries;
impl Message for Entries {
    type Reply = Vec<(String, String)>;
}

#[async_trait]
impl Handler<Entries> for Settings {
    async fn handle(&mut self, _: Entries, _ctx: &mut Context<Self>) -> Vec<(String, String)> {
        self.entries.clone()
    }
}

/// A store that fails on demand, and a runtime over it.
pub fn failing_runtime() -> (Arc<FailingStorage<InMemoryStorage>>, Runtime) {
    let store = Arc::new(FailingStorage::new(InMemoryStorage::new()));
    let runtime = Runtime::builder().storage(store.provider()).build();
    (store, runtime)
}

pub fn pid(id: &str) -> PersistenceId {
    PersistenceId::new("Counter", id)
}

pub const SECOND: Duration = Duration::from_secs(1);

#[async_trait]
impl Handler<Boom> for Settings {
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("settings boom");
    }
}
