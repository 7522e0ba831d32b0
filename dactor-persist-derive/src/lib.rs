//! Derive macros for `dactor-persist`. Use them through `dactor_persist`
//! (feature `derive`), not from this crate directly.
