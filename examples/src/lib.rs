//! The domain types of the examples, shared by their binaries (`src/bin/`)
//! and their behaviour tests (`tests/`, on the test kit).

pub mod account;
pub mod bank_settings;
pub mod cli;
pub mod settings;
