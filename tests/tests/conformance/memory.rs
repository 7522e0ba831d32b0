//! The in-memory store is the reference: it must pass every check.

use std::sync::Arc;

use dactor_persist::InMemoryStorage;

dactor_persist::storage_conformance_tests!(|| async { Arc::new(InMemoryStorage::new()) });
dactor_persist::query_conformance_tests!(|| async { Arc::new(InMemoryStorage::new()) });
dactor_persist::projection_conformance_tests!(|| async { Arc::new(InMemoryStorage::new()) });

/// The one-call form runs the same suite; this keeps it working.
#[test]
fn run_all_passes_on_one_shared_store() {
    let shared = Arc::new(InMemoryStorage::new());
    dactor_persist::testkit::block_on(dactor_persist::testkit::run_all(|| {
        let shared = shared.clone();
        async move { shared }
    }));
}
