//! The storage conformance suite (`dactor_persist::testkit`), one test per
//! check, run against every backend of this crate.

mod memory;
mod sqlite;
