//! Event-sourced actors: state rebuilt by replaying a journal of events.

use async_trait::async_trait;

use crate::{
    JournalEntry, JournalStorage, NewEvent, PersistError, PersistentActor, SequenceId,
    SnapshotConfig, SnapshotStorage,
};

/// An actor whose state is the result of applying its persisted events in order.
///
/// Implement it by hand, or derive it with `#[derive(EventSourced)]` (feature
/// `derive`), which writes everything but [`apply`](EventSourced::apply).
///
/// # Examples
///
/// ```
/// use dactor_persist::*;
///
/// struct Counter { value: i64, seq: SequenceId }
///
/// impl Actor for Counter {
///     type Args = ();
///     type Deps = ();
///     fn create(_: (), _: ()) -> Self { Counter { value: 0, seq: SequenceId(0) } }
/// }
/// impl PersistentActor for Counter {
///     fn persistence_id(&self) -> PersistenceId { PersistenceId::new("Counter", "c1") }
/// }
/// impl EventSourced for Counter {
///     type Event = i64;
///     fn apply(&mut self, delta: &i64) { self.value += delta; }
///     fn deserialize_event(&self, p: &[u8]) -> Result<i64, PersistError> {
///         let bytes: [u8; 8] = p.try_into()
///             .map_err(|_| PersistError::SerializationFailed("expected 8 bytes".into()))?;
///         Ok(i64::from_le_bytes(bytes))
///     }
///     fn serialize_event(&self, e: &i64) -> Result<Vec<u8>, PersistError> {
///         Ok(e.to_le_bytes().to_vec())
///     }
///     fn restore_snapshot(&mut self, p: Vec<u8>) -> Result<(), PersistError> {
///         self.value = self.deserialize_event(&p)?;
///         Ok(())
///     }
///     fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
///         self.serialize_event(&self.value)
///     }
///     fn last_sequence_id(&self) -> SequenceId { self.seq }
///     fn set_last_sequence_id(&mut self, seq: SequenceId) { self.seq = seq; }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryStorage::new();
/// let mut counter = Counter::create((), ());
/// assert_eq!(counter.persist(5, &store).await?, SequenceId(1));
/// assert_eq!(counter.persist_batch(vec![1, 2], &store).await?, SequenceId(3));
/// counter.snapshot(&store).await?;
///
/// let mut again = Counter::create((), ());
/// recover_event_sourced(&mut again, &store, &store).await?;
/// assert_eq!((again.value, again.seq), (8, SequenceId(3)));
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
#[async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event-sourced actor",
    note = "add `#[derive(EventSourced)]` with `#[persist(entity = \"...\", event = YourEvent)]`, or implement `EventSourced` by hand"
)]
pub trait EventSourced: PersistentActor {
    /// The events this actor persists.
    type Event: Send + Sync + 'static;

    /// Applies one event to the state. Must be deterministic and must not fail:
    /// replaying the same events always yields the same state.
    fn apply(&mut self, event: &Self::Event);

    /// Decodes an event read from the journal.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`] when the payload does not decode;
    /// recovery reports it as [`PersistError::CorruptEntry`] with the sequence.
    fn deserialize_event(&self, payload: &[u8]) -> Result<Self::Event, PersistError>;

    /// Decodes an event read back from the journal, with what the journal
    /// stored beside it. Recovery calls this one.
    ///
    /// The default is [`deserialize_event`](EventSourced::deserialize_event)
    /// of the payload. The derive overrides it to check that the payload's
    /// own event name agrees with the entry's `event_type` (a row typed
    /// `Reset` whose payload says `Added` is damage, not an `Added`).
    ///
    /// # Errors
    ///
    /// As [`deserialize_event`](EventSourced::deserialize_event).
    fn deserialize_entry(&self, entry: &JournalEntry) -> Result<Self::Event, PersistError> {
        self.deserialize_event(&entry.payload)
    }

    /// Decodes a journal entry into the events it stands for, pushed onto
    /// `out`: one, or, for an old event an upcaster turns into several or
    /// none, those (see [`PersistentEvent::decode_entry_into`](crate::PersistentEvent::decode_entry_into)).
    /// Recovery calls this one; each event is applied with the entry's
    /// sequence.
    ///
    /// The default pushes [`deserialize_entry`](EventSourced::deserialize_entry)'s
    /// event.
    ///
    /// # Errors
    ///
    /// As [`deserialize_entry`](EventSourced::deserialize_entry).
    fn deserialize_entry_into(
        &self,
        entry: &JournalEntry,
        out: &mut Vec<Self::Event>,
    ) -> Result<(), PersistError> {
        out.push(self.deserialize_entry(entry)?);
        Ok(())
    }

    /// Encodes an event for the journal.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`].
    fn serialize_event(&self, event: &Self::Event) -> Result<Vec<u8>, PersistError>;

    /// The name stored as the journal entry's `event_type`.
    ///
    /// The default is `std::any::type_name` of the event type, as in dactor
    /// 0.2.0, which the compiler does not promise to keep stable; the derive
    /// overrides it with the variant's stable name.
    fn event_type(&self, event: &Self::Event) -> &'static str {
        let _ = event;
        std::any::type_name::<Self::Event>()
    }

    /// The tags `event` is stored with, for queries by tag
    /// ([`ReadJournal::events_by_tag`](crate::query::ReadJournal::events_by_tag)).
    /// Default: none. The derive answers the event's
    /// [`PersistentEvent::tags`](crate::PersistentEvent::tags). The runtime
    /// stores them; the dactor 0.2.0 methods [`persist`](EventSourced::persist)
    /// and [`persist_batch`](EventSourced::persist_batch) do too.
    fn event_tags(&self, event: &Self::Event) -> Vec<String> {
        let _ = event;
        Vec::new()
    }

    /// Replaces the state with a snapshot's. Should change nothing when it fails.
    ///
    /// # Errors
    ///
    /// [`PersistError::SnapshotIncompatible`] when the snapshot was written by
    /// an incompatible version of the state (recovery then replays the journal
    /// from its start); any other error fails recovery.
    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError>;

    /// Encodes the state for a snapshot.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`].
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError>;

    /// When the runtime snapshots automatically; `None` (the default) never.
    fn snapshot_config(&self) -> Option<SnapshotConfig> {
        None
    }

    /// The sequence of the last event applied (0 when none).
    fn last_sequence_id(&self) -> SequenceId;

    /// Sets the sequence of the last event applied (used by persist and recovery).
    fn set_last_sequence_id(&mut self, seq: SequenceId);

    /// Writes `event` at the next sequence and, only once the write succeeded,
    /// applies it and advances the sequence. Returns the new sequence.
    ///
    /// # Errors
    ///
    /// Any error of encoding or of the journal, and
    /// [`PersistError::InvalidInput`] ("sequence space exhausted") after
    /// [`SequenceId::LAST`]; state and sequence are then unchanged.
    async fn persist(
        &mut self,
        event: Self::Event,
        journal: &dyn JournalStorage,
    ) -> Result<SequenceId, PersistError> {
        let seq = self.last_sequence_id().next_for(&self.persistence_id())?;
        let payload = self.serialize_event(&event)?;
        let event_type = self.event_type(&event);
        let tags = self.event_tags(&event);
        let pid = self.persistence_id();
        if tags.is_empty() {
            journal.write_event(&pid, seq, event_type, &payload).await?;
        } else {
            let new = NewEvent::new(seq, event_type, &payload).tags(&tags);
            journal.write_events(&pid, &[new]).await?;
        }
        self.apply(&event);
        self.set_last_sequence_id(seq);
        Ok(seq)
    }

    /// Writes `events` in one atomic batch at the next sequences, then applies
    /// them in order. An empty batch writes nothing and returns the current
    /// sequence.
    ///
    /// # Errors
    ///
    /// Any error of encoding or of the journal; nothing is applied then.
    async fn persist_batch(
        &mut self,
        events: Vec<Self::Event>,
        journal: &dyn JournalStorage,
    ) -> Result<SequenceId, PersistError> {
        let mut seq = self.last_sequence_id();
        if events.is_empty() {
            return Ok(seq);
        }
        let mut encoded = Vec::with_capacity(events.len());
        for event in &events {
            seq = seq.next_for(&self.persistence_id())?;
            encoded.push((
                seq,
                self.event_type(event),
                self.serialize_event(event)?,
                self.event_tags(event),
            ));
        }
        let entries: Vec<NewEvent<'_>> = encoded
            .iter()
            .map(|(seq, event_type, payload, tags)| {
                NewEvent::new(*seq, event_type, payload).tags(tags)
            })
            .collect();
        journal
            .write_events(&self.persistence_id(), &entries)
            .await?;
        for event in &events {
            self.apply(event);
        }
        self.set_last_sequence_id(seq);
        Ok(seq)
    }

    /// Saves [`snapshot_payload`](EventSourced::snapshot_payload) at the current
    /// sequence.
    ///
    /// # Errors
    ///
    /// Any error of encoding or of the snapshot store.
    async fn snapshot(&self, snapshots: &dyn SnapshotStorage) -> Result<(), PersistError> {
        let payload = self.snapshot_payload()?;
        snapshots
            .save_snapshot(&self.persistence_id(), self.last_sequence_id(), &payload)
            .await
    }
}
