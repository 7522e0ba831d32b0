//! Hand-written actors over the bare traits, and a store that fails on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use dactor_persist::*;

/// A counter written by hand against the bare traits, as in dactor 0.2.0.
#[derive(Debug)]
pub struct Counter {
    pub id: String,
    pub value: i64,
    pub seq: SequenceId,
    pub pre_recoveries: u32,
    pub post_recoveries: u32,
    pub recovery_policy: RecoveryFailurePolicy,
    /// Instants (tokio's clock) at which recovery tries started.
    pub tries_at: Vec<tokio::time::Instant>,
}

impl Counter {
    pub fn new(id: &str) -> Self {
        Counter {
            id: id.to_owned(),
            value: 0,
            seq: SequenceId(0),
            pre_recoveries: 0,
            post_recoveries: 0,
            recovery_policy: RecoveryFailurePolicy::Stop,
            tries_at: Vec::new(),
        }
    }

    pub fn with_policy(id: &str, policy: RecoveryFailurePolicy) -> Self {
        Counter {
            recovery_policy: policy,
            ..Counter::new(id)
        }
    }
}

impl Actor for Counter {
    type Args = ();
    type Deps = ();
    fn create(_args: (), _deps: ()) -> Self {
        Counter::new("default")
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Counter", &self.id)
    }
    fn pre_recovery(&mut self) {
        self.pre_recoveries += 1;
        self.tries_at.push(tokio::time::Instant::now());
    }
    fn post_recovery(&mut self) {
        self.post_recoveries += 1;
    }
    fn recovery_failure_policy(&self) -> RecoveryFailurePolicy {
        self.recovery_policy.clone()
    }
}

/// Encodes a delta as 8 little-endian bytes; anything else does not decode.
pub fn enc(delta: i64) -> Vec<u8> {
    delta.to_le_bytes().to_vec()
}

fn dec(payload: &[u8]) -> Result<i64, PersistError> {
    let bytes: [u8; 8] = payload.try_into().map_err(|_| {
        PersistError::SerializationFailed(format!("{} bytes, expected 8", payload.len()))
    })?;
    Ok(i64::from_le_bytes(bytes))
}

impl EventSourced for Counter {
    type Event = i64;

    fn apply(&mut self, delta: &i64) {
        self.value += delta;
    }
    fn deserialize_event(&self, payload: &[u8]) -> Result<i64, PersistError> {
        dec(payload)
    }
    fn serialize_event(&self, delta: &i64) -> Result<Vec<u8>, PersistError> {
        Ok(enc(*delta))
    }
    fn event_type(&self, _event: &i64) -> &'static str {
        "Delta"
    }
    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        if payload == b"incompatible" {
            return Err(PersistError::SnapshotIncompatible("old layout".into()));
        }
        self.value = dec(&payload)?;
        Ok(())
    }
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        Ok(enc(self.value))
    }
    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }
    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}

/// A durable-state actor written by hand.
#[derive(Debug)]
pub struct Settings {
    pub id: String,
    pub data: String,
    pub post_recoveries: u32,
    pub recovery_policy: RecoveryFailurePolicy,
    pub tries: u32,
}

impl Settings {
    pub fn new(id: &str) -> Self {
        Settings {
            id: id.to_owned(),
            data: String::new(),
            post_recoveries: 0,
            recovery_policy: RecoveryFailurePolicy::Stop,
            tries: 0,
        }
    }
}

impl Actor for Settings {
    type Args = ();
    type Deps = ();
    fn create(_args: (), _deps: ()) -> Self {
        Settings::new("default")
    }
}

impl PersistentActor for Settings {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Settings", &self.id)
    }
    fn pre_recovery(&mut self) {
        self.tries += 1;
    }
    fn post_recovery(&mut self) {
        self.post_recoveries += 1;
    }
    fn recovery_failure_policy(&self) -> RecoveryFailurePolicy {
        self.recovery_policy.clone()
    }
}

impl DurableState for Settings {
    fn serialize_state(&self) -> Result<Vec<u8>, PersistError> {
        Ok(self.data.as_bytes().to_vec())
    }
    fn restore_state(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.data = String::from_utf8(payload)
            .map_err(|e| PersistError::SerializationFailed(e.to_string()))?;
        Ok(())
    }
}

/// Wraps the in-memory store; every operation fails while `failures_left > 0`
/// (counting down), and `calls` counts every operation.
#[derive(Default)]
pub struct Flaky {
    pub inner: InMemoryStorage,
    pub failures_left: AtomicU32,
    pub calls: AtomicU32,
}

impl Flaky {
    pub fn failing(n: u32) -> Arc<Self> {
        let f = Flaky::default();
        f.failures_left.store(n, Ordering::SeqCst);
        Arc::new(f)
    }

    fn check(&self) -> Result<(), PersistError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let left = self.failures_left.load(Ordering::SeqCst);
        if left > 0 {
            self.failures_left.store(left - 1, Ordering::SeqCst);
            return Err(PersistError::StorageUnavailable("injected failure".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl JournalStorage for Flaky {
    async fn write_event(
        &self,
        id: &PersistenceId,
        seq: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.check()?;
        self.inner.write_event(id, seq, event_type, payload).await
    }
    async fn write_event_batch(
        &self,
        id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        self.check()?;
        self.inner.write_event_batch(id, entries).await
    }
    async fn read_events(
        &self,
        id: &PersistenceId,
        from: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        self.check()?;
        self.inner.read_events(id, from).await
    }
    async fn read_highest_sequence(
        &self,
        id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError> {
        self.check()?;
        self.inner.read_highest_sequence(id).await
    }
    async fn delete_events_to(
        &self,
        id: &PersistenceId,
        to: SequenceId,
    ) -> Result<(), PersistError> {
        self.check()?;
        self.inner.delete_events_to(id, to).await
    }
}

#[async_trait]
impl SnapshotStorage for Flaky {
    async fn save_snapshot(
        &self,
        id: &PersistenceId,
        seq: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.check()?;
        self.inner.save_snapshot(id, seq, payload).await
    }
    async fn load_latest_snapshot(
        &self,
        id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        self.check()?;
        self.inner.load_latest_snapshot(id).await
    }
    async fn delete_snapshots_before(
        &self,
        id: &PersistenceId,
        seq: SequenceId,
    ) -> Result<(), PersistError> {
        self.check()?;
        self.inner.delete_snapshots_before(id, seq).await
    }
}

#[async_trait]
impl StateStorage for Flaky {
    async fn save_state(&self, id: &PersistenceId, payload: &[u8]) -> Result<(), PersistError> {
        self.check()?;
        self.inner.save_state(id, payload).await
    }
    async fn load_state(&self, id: &PersistenceId) -> Result<Option<Vec<u8>>, PersistError> {
        self.check()?;
        self.inner.load_state(id).await
    }
    async fn delete_state(&self, id: &PersistenceId) -> Result<(), PersistError> {
        self.check()?;
        self.inner.delete_state(id).await
    }
}

pub fn pid(id: &str) -> PersistenceId {
    PersistenceId::new("Counter", id)
}

/// Writes deltas at sequences 1..=n.
pub async fn seed(store: &dyn JournalStorage, id: &str, deltas: &[i64]) {
    for (i, d) in deltas.iter().enumerate() {
        store
            .write_event(&pid(id), SequenceId(i as i64 + 1), "Delta", &enc(*d))
            .await
            .expect("seed write");
    }
}
