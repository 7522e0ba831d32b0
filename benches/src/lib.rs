//! What the benchmark binaries share: the event-sourced counter they persist
//! and recover.

pub mod stats;

use dactor_persist::{
    Actor, EventSourced, PersistError, PersistenceId, PersistentActor, SequenceId,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
/// The counter's one event.
pub enum CounterEvent {
    /// Adds to the counter.
    Added(u64),
}

/// A hand-written event-sourced counter with postcard events.
pub struct Counter {
    id: String,
    /// The sum of the events applied.
    pub value: u64,
    /// The last applied sequence.
    pub seq: SequenceId,
}

impl Counter {
    /// A counter with nothing applied yet.
    pub fn new(id: &str) -> Self {
        Counter {
            id: id.to_owned(),
            value: 0,
            seq: SequenceId(0),
        }
    }
}

impl Actor for Counter {
    type Args = ();
    type Deps = ();
    fn create(_: (), _: ()) -> Self {
        Counter::new("default")
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Counter", &self.id)
    }
}

impl EventSourced for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added(n) => self.value = self.value.wrapping_add(*n),
        }
    }
    fn deserialize_event(&self, payload: &[u8]) -> Result<CounterEvent, PersistError> {
        postcard::from_bytes(payload).map_err(|e| PersistError::SerializationFailed(e.to_string()))
    }
    fn serialize_event(&self, event: &CounterEvent) -> Result<Vec<u8>, PersistError> {
        postcard::to_allocvec(event).map_err(|e| PersistError::SerializationFailed(e.to_string()))
    }
    fn event_type(&self, _: &CounterEvent) -> &'static str {
        "Added"
    }
    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.value = postcard::from_bytes(&payload)
            .map_err(|e| PersistError::SerializationFailed(e.to_string()))?;
        Ok(())
    }
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        postcard::to_allocvec(&self.value)
            .map_err(|e| PersistError::SerializationFailed(e.to_string()))
    }
    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }
    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}
