//! The derives: hand-written and derived actors pass the same tests; events
//! survive enum evolution; snapshots are a cache; generics; round trips.

mod derived_account;
mod derived_counter;
mod hand_account;
mod hand_counter;

mod conciseness;
mod evolution;
mod generics;
mod roundtrip;
mod same_behaviour;
mod snapshot_fallback;
