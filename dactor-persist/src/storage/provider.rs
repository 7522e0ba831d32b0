//! The provider every built-in store uses: one store, shared, for every id.

use std::sync::Arc;

use super::{JournalStorage, SnapshotStorage, StateStorage, StorageProvider};
use crate::PersistenceId;

/// A [`StorageProvider`] that hands out one shared store for every persistence
/// id: its journals, snapshots and states all live in that store.
///
/// Each built-in store names its own: [`InMemoryStorageProvider`](crate::InMemoryStorageProvider),
/// `SqliteStorageProvider`, `PostgresStorageProvider`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use dactor_persist::*;
/// use dactor_persist::storage::SharedStoreProvider;
///
/// let store = Arc::new(InMemoryStorage::new());
/// let provider = SharedStoreProvider::from_storage(store.clone());
/// let id = PersistenceId::new("Account", "a-1");
/// assert!(provider.journal(&id).is_some());
/// assert!(provider.snapshots(&id).is_some());
/// assert!(provider.state(&id).is_some());
/// assert!(Arc::ptr_eq(provider.storage(), &store));
/// ```
#[derive(Debug)]
pub struct SharedStoreProvider<S> {
    storage: Arc<S>,
}

impl<S> SharedStoreProvider<S> {
    /// A provider over `storage`, shared with whoever else holds it.
    pub fn from_storage(storage: Arc<S>) -> Self {
        Self { storage }
    }

    /// The store this provider hands out.
    pub fn storage(&self) -> &Arc<S> {
        &self.storage
    }
}

impl<S> Clone for SharedStoreProvider<S> {
    fn clone(&self) -> Self {
        Self::from_storage(self.storage.clone())
    }
}

impl<S: Default> Default for SharedStoreProvider<S> {
    fn default() -> Self {
        Self::from_storage(Arc::new(S::default()))
    }
}

impl<S> From<S> for SharedStoreProvider<S> {
    fn from(storage: S) -> Self {
        Self::from_storage(Arc::new(storage))
    }
}

impl<S> StorageProvider for SharedStoreProvider<S>
where
    S: JournalStorage + SnapshotStorage + StateStorage,
{
    fn journal(&self, _id: &PersistenceId) -> Option<Arc<dyn JournalStorage>> {
        Some(self.storage.clone())
    }

    fn snapshots(&self, _id: &PersistenceId) -> Option<Arc<dyn SnapshotStorage>> {
        Some(self.storage.clone())
    }

    fn state(&self, _id: &PersistenceId) -> Option<Arc<dyn StateStorage>> {
        Some(self.storage.clone())
    }
}
