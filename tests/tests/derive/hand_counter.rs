//! A counter written by hand against the bare traits.
// BEGIN ACTOR
use dactor_persist::*;

#[derive(Debug, Clone, PartialEq)]
pub enum CounterEvent {
    Incremented(i64),
}

#[derive(Default)]
pub struct Counter {
    pub id: u64,
    pub value: i64,
    pub seq: SequenceId,
}

fn ser_err(e: postcard::Error) -> PersistError {
    PersistError::SerializationFailed(e.to_string())
}

impl Actor for Counter {
    type Args = Self;
    type Deps = ();
    fn create(args: Self, _deps: ()) -> Self {
        args
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Counter", &self.id.to_string())
    }
}

impl EventSourced for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, CounterEvent::Incremented(by): &CounterEvent) {
        self.value += by;
    }

    fn event_type(&self, _event: &CounterEvent) -> &'static str {
        "Incremented"
    }

    fn serialize_event(
        &self,
        CounterEvent::Incremented(by): &CounterEvent,
    ) -> Result<Vec<u8>, PersistError> {
        let out = postcard::to_allocvec("Incremented").map_err(ser_err)?;
        postcard::to_extend(&(by,), out).map_err(ser_err)
    }

    fn deserialize_event(&self, payload: &[u8]) -> Result<CounterEvent, PersistError> {
        let (name, rest) = postcard::take_from_bytes::<&str>(payload).map_err(ser_err)?;
        if name != "Incremented" {
            return Err(PersistError::SerializationFailed(format!(
                "unknown event type `{name}`"
            )));
        }
        let (by,): (i64,) = postcard::from_bytes(rest).map_err(ser_err)?;
        Ok(CounterEvent::Incremented(by))
    }

    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        let Some((layout, rest)) = payload.split_first_chunk::<8>() else {
            return Err(PersistError::SnapshotIncompatible("too short".into()));
        };
        if u64::from_le_bytes(*layout) != 1 {
            return Err(PersistError::SnapshotIncompatible("other layout".into()));
        }
        let (value,): (i64,) = postcard::from_bytes(rest)
            .map_err(|e| PersistError::SnapshotIncompatible(e.to_string()))?;
        self.value = value;
        Ok(())
    }

    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        postcard::to_extend(&(self.value,), 1u64.to_le_bytes().to_vec()).map_err(ser_err)
    }

    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }

    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}
// END ACTOR
