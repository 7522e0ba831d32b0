//! Test support for storage backends and actors (feature `testkit`).
//!
//! - [`conformance`]: the storage conformance suite every backend runs. Its
//!   checks and macros are re-exported here.

pub mod conformance;

pub use conformance::*;
