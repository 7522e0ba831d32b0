//! The README's main example: an event-sourced counter persisted, snapshotted
//! and recovered.

use dactor_persist::*;

struct Counter {
    id: String,
    value: i64,
    seq: SequenceId,
}

impl Actor for Counter {
    type Args = String;
    type Deps = ();
    fn create(id: String, _deps: ()) -> Self {
        Counter {
            id,
            value: 0,
            seq: SequenceId(0),
        }
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Counter", &self.id)
    }
}

impl EventSourced for Counter {
    type Event = i64;
    fn apply(&mut self, delta: &i64) {
        self.value += delta;
    }
    fn deserialize_event(&self, payload: &[u8]) -> Result<i64, PersistError> {
        let bytes: [u8; 8] = payload
            .try_into()
            .map_err(|_| PersistError::SerializationFailed("expected 8 bytes".into()))?;
        Ok(i64::from_le_bytes(bytes))
    }
    fn serialize_event(&self, delta: &i64) -> Result<Vec<u8>, PersistError> {
        Ok(delta.to_le_bytes().to_vec())
    }
    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.value = self.deserialize_event(&payload)?;
        Ok(())
    }
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        self.serialize_event(&self.value)
    }
    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }
    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), PersistError> {
    let store = InMemoryStorage::new();

    let mut counter = Counter::create("c-1".into(), ());
    counter.persist(5, &store).await?;
    counter.persist_batch(vec![10, -3], &store).await?;
    counter.snapshot(&store).await?;
    counter.persist(1, &store).await?;
    println!("persisted: value {} at {:?}", counter.value, counter.seq);

    let mut recovered = Counter::create("c-1".into(), ());
    recover_event_sourced(&mut recovered, &store, &store).await?;
    println!(
        "recovered: value {} at {:?}",
        recovered.value, recovered.seq
    );
    assert_eq!((recovered.value, recovered.seq), (13, SequenceId(4)));
    Ok(())
}
