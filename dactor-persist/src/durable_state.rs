//! Durable-state actors: the whole state stored and replaced on each save.

use async_trait::async_trait;

use crate::{PersistError, PersistentActor, SaveConfig, StateStorage};

/// An actor that stores its whole state, replacing the previous one each time.
///
/// Implement it by hand, or derive it with `#[derive(DurableState)]` (feature
/// `derive`).
#[async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a durable-state actor",
    note = "add `#[derive(DurableState)]` with `#[persist(entity = \"...\")]`, or implement `DurableState` by hand"
)]
pub trait DurableState: PersistentActor {
    /// Encodes the state.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`].
    fn serialize_state(&self) -> Result<Vec<u8>, PersistError>;

    /// Replaces the state with a stored one. Should change nothing when it fails.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`] or
    /// [`PersistError::SnapshotIncompatible`] when the payload does not decode.
    fn restore_state(&mut self, payload: Vec<u8>) -> Result<(), PersistError>;

    /// Saves the current state, replacing the stored one.
    ///
    /// # Errors
    ///
    /// Any error of encoding or of the store.
    async fn save_state(&self, storage: &dyn StateStorage) -> Result<(), PersistError> {
        let payload = self.serialize_state()?;
        storage.save_state(&self.persistence_id(), &payload).await
    }

    /// When the runtime saves automatically; `None` (the default) only on
    /// graceful stop and on demand.
    fn save_config(&self) -> Option<SaveConfig> {
        None
    }
}
