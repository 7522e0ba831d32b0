//! Everything an actor author needs: `use dactor_persist::prelude::*;`.

pub use crate::{
    Actor, ApplyEvent, DurableState, EventSourced, InMemoryStorage, InMemoryStorageProvider,
    JournalStorage, PersistError, PersistFailurePolicy, PersistenceId, PersistentActor,
    PersistentEvent, RecoveryFailurePolicy, SaveConfig, SequenceId, SnapshotConfig,
    SnapshotStorage, StateStorage, StorageProvider, StoredState, async_trait,
    recover_durable_state, recover_event_sourced,
};
