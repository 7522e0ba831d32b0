//! Behaviour tests of dactor-persist live in `tests/`. This library holds what
//! the tests share with the helper binaries in `src/bin/`.

pub mod crash;
pub mod journaled;
pub mod ledger;
pub mod projection;
pub mod rng;
