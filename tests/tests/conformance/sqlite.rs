//! The SQLite store passes every check, each on a fresh file in its own
//! temporary directory.

use std::sync::Arc;

use dactor_persist::SqliteStorage;
use tempfile::TempDir;

/// A fresh store, and the directory that holds its file (removed after the
/// check, once the store is closed).
async fn fresh() -> (Arc<SqliteStorage>, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStorage::open(dir.path().join("conformance.db"))
        .await
        .expect("open the SQLite store");
    (Arc::new(store), dir)
}

dactor_persist::storage_conformance_tests!(fresh);
dactor_persist::query_conformance_tests!(fresh);
dactor_persist::projection_conformance_tests!(fresh);
