//! Recovery trusts nothing it reads: damaged pages, holes, sequence
//! extremes, strict decoding. Backend-specific damage (SQLite files, rows
//! removed behind the store's back) is in `sqlite_integrity.rs`,
//! `sqlite_corruption.rs` and the PostgreSQL tests.

mod bounds;
mod damaged_pages;
mod decoding;
