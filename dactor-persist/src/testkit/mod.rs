//! Test support for storage backends and actors (feature `testkit`).
//!
//! - [`conformance`]: the storage conformance suite every backend runs. Its
//!   checks and macros are re-exported here.
//! - [`FailingStorage`]: wraps any store to fail, lose answers or slow down
//!   on demand.

pub mod conformance;
mod failing;

pub use conformance::*;
pub use failing::{FailingStorage, FailingStorageProvider, Op};
