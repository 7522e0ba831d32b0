//! Test support for storage backends and actors (feature `testkit`).
//!
//! - [`behaviour`]: given/when/then tests of one actor
//!   ([`EventSourcedTestKit`], [`DurableStateTestKit`]) on a real runtime,
//!   with every event and state round-tripped through its encoding.
//! - [`conformance`]: the storage conformance suite every backend runs. Its
//!   checks and macros are re-exported here.
//! - [`queries`]: the query part of the suite, for stores with a read side.
//! - [`projections`]: the projection part, for stores that keep projections.
//! - [`FailingStorage`]: wraps any store to fail, lose answers or slow down
//!   on demand.
//! - [`DamagedJournal`]: wraps a journal to answer damaged pages (holes,
//!   repeats, disorder, events beyond the highest, pages that never advance),
//!   for proving that a reader refuses them.

pub mod behaviour;
pub mod conformance;
mod damaged;
mod failing;
pub mod projections;
pub mod queries;

pub use behaviour::{
    DurableStateOutcome, DurableStateTestKit, EventSourcedOutcome, EventSourcedTestKit, TestStorage,
};
pub use conformance::*;
pub use damaged::{Damage, DamagedJournal};
pub use failing::{FailingStorage, FailingStorageProvider, Op};
pub use queries::run_queries;
