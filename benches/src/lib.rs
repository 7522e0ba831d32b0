//! What the benchmark binaries share: the event-sourced counter they persist
//! and recover.

pub mod stats;

/// The counter's event `Added(n)`, encoded as the store keeps it.
pub fn counter_payload(n: u64) -> Vec<u8> {
    postcard::to_allocvec(&CounterEvent::Added(n)).unwrap_or_default()
}

/// Writes `n` events of counters `Counter:g0` .. `Counter:g{ids-1}`,
/// interleaved: a batch of up to 100 per id and round.
///
/// # Errors
///
/// The store's.
pub async fn fill(
    store: &dyn dactor_persist::JournalStorage,
    n: usize,
    ids: usize,
) -> Result<(), PersistError> {
    let per_id = n / ids.max(1);
    let chunk = 100.min(per_id).max(1);
    let mut done = 0;
    while done < per_id {
        let take = chunk.min(per_id - done);
        for id in 0..ids {
            let pid = PersistenceId::new("Counter", &format!("g{id}"));
            let payloads: Vec<Vec<u8>> = (0..take)
                .map(|k| counter_payload((done + k) as u64))
                .collect();
            let batch: Vec<(SequenceId, &str, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(k, p)| (SequenceId((done + k + 1) as i64), "Added", p.as_slice()))
                .collect();
            store.write_event_batch(&pid, &batch).await?;
        }
        done += take;
    }
    Ok(())
}

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

/// The options every harness without extra arguments takes: `--runs N` and
/// `--quick` (every scenario small, one run). Returns the runs and the
/// sizes to use.
///
/// # Errors
///
/// An unknown argument, or `--runs` without a number.
pub fn runs_and_sizes<S>(
    full: S,
    quick: S,
    default_runs: usize,
) -> Result<(usize, S), Box<dyn std::error::Error>> {
    let mut runs = default_runs;
    let mut sizes = full;
    let mut quick = Some(quick);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--quick" => {
                if let Some(q) = quick.take() {
                    sizes = q;
                }
                runs = 1;
                println!("--quick: every scenario ran, small; the figures mean nothing.\n");
            }
            other => {
                return Err(
                    format!("unknown argument `{other}`; expected --runs N or --quick").into(),
                );
            }
        }
    }
    Ok((runs.max(1), sizes))
}
