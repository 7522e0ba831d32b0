//! The dactor 0.2.0 persistence contract and this project's corrections to it,
//! one focused test per behaviour, against the in-memory reference store.

mod common;
mod identity;
mod memory_store;
mod persist;
mod recovery;
