//! A small event-sourced actor for the PostgreSQL tests and their child
//! process (`src/bin/pg_node.rs`): it records which node wrote each of its
//! events, so that a test can tell whose write landed at each sequence.

use std::time::Duration;

use dactor_persist::runtime::{Context, Handler, Message};
use dactor_persist::{
    Actor, EventSourced, PersistError, PersistFailurePolicy, PersistenceId, PersistentActor,
    SequenceId, async_trait,
};

/// The payload of event `seq` written by `node`.
pub fn payload(node: &str, seq: i64) -> Vec<u8> {
    format!("{node}:{seq}").into_bytes()
}

/// Appends events written by one node, as the `Append` message asks.
pub struct Journaled {
    /// Its persistence id.
    pub id: PersistenceId,
    /// The node that hosts it, written into every event.
    pub node: String,
    /// Its sequence.
    pub seq: SequenceId,
    /// How many events it has applied (replayed or persisted).
    pub applied: u64,
    /// What to do when a write fails.
    pub policy: PersistFailurePolicy,
}

impl Journaled {
    /// A fresh actor for `id`, hosted on `node`.
    pub fn new(id: PersistenceId, node: &str, policy: PersistFailurePolicy) -> Self {
        Self {
            id,
            node: node.to_owned(),
            seq: SequenceId(0),
            applied: 0,
            policy,
        }
    }

    /// Retries every failed write every 20 ms, 1,000 times at most.
    pub fn retrying() -> PersistFailurePolicy {
        PersistFailurePolicy::Retry {
            max_attempts: Some(1_000),
            initial_delay: Duration::from_millis(20),
        }
    }
}

impl Actor for Journaled {
    type Args = (PersistenceId, String);
    type Deps = ();

    fn create((id, node): (PersistenceId, String), _: ()) -> Self {
        Self::new(id, &node, PersistFailurePolicy::Stop)
    }
}

impl PersistentActor for Journaled {
    fn persistence_id(&self) -> PersistenceId {
        self.id.clone()
    }

    fn persist_failure_policy(&self) -> PersistFailurePolicy {
        self.policy.clone()
    }
}

impl EventSourced for Journaled {
    type Event = Vec<u8>;

    fn apply(&mut self, _event: &Vec<u8>) {
        self.applied += 1;
    }

    fn deserialize_event(&self, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
        Ok(payload.to_vec())
    }

    fn serialize_event(&self, event: &Vec<u8>) -> Result<Vec<u8>, PersistError> {
        Ok(event.clone())
    }

    fn event_type(&self, _event: &Vec<u8>) -> &'static str {
        "Appended"
    }

    fn restore_snapshot(&mut self, _payload: Vec<u8>) -> Result<(), PersistError> {
        Err(PersistError::SnapshotIncompatible(
            "Journaled takes no snapshots".into(),
        ))
    }

    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        Ok(Vec::new())
    }

    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }

    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}

/// Persists the next event; answers its sequence.
pub struct Append;

impl Message for Append {
    type Reply = Result<SequenceId, PersistError>;
}

#[async_trait]
impl Handler<Append> for Journaled {
    async fn handle(
        &mut self,
        _: Append,
        ctx: &mut Context<Self>,
    ) -> Result<SequenceId, PersistError> {
        let event = payload(&self.node, self.seq.0 + 1);
        ctx.persist(self, event).await
    }
}
