//! Without the `json` feature: the names generated JSON code uses, so that
//! the one error a build reports is `require`'s, which names the feature.
//! Nothing here can run: a type that uses the JSON format does not compile.

use std::collections::BTreeMap;

use crate::{PersistError, PersistenceId, StoredAs};

/// Implemented when the `json` feature is on.
#[diagnostic::on_unimplemented(
    message = "`#[persist(format = \"json\")]` needs the `json` feature of dactor-persist",
    label = "the JSON format is used here",
    note = "enable it: `features = [\"json\"]` on the dactor-persist dependency"
)]
pub trait Enabled {}

/// Fails to compile without the `json` feature.
pub fn require<T: Enabled>() {}

/// Stands for `serde_json::Map`.
pub type Map<K, V> = BTreeMap<K, V>;

/// Stands for `serde_json::Value`.
pub enum Value {
    /// `null`.
    Null,
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map<String, Value>),
}

fn off() -> PersistError {
    PersistError::SerializationFailed("the `json` feature of dactor-persist is off".into())
}

/// See the `json` feature's version.
pub fn field<T: ?Sized>(
    _: &mut Map<String, Value>,
    _: &str,
    _: &T,
    _: &str,
) -> Result<(), PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn item<T: ?Sized>(_: &mut Vec<Value>, _: &T, _: &str) -> Result<(), PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn encode_event(_: &str, _: Value) -> Result<Vec<u8>, PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn encode_state(_: Map<String, Value>, _: &str) -> Result<Vec<u8>, PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn parse_event(_: &[u8]) -> Option<(String, Value)> {
    None
}

/// See the `json` feature's version.
pub fn parse_state(_: &[u8]) -> Option<Map<String, Value>> {
    None
}

/// See the `json` feature's version.
pub fn fields_object(_: Value, _: &str, _: &str) -> Result<Map<String, Value>, PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn fields_array(_: Value, _: &str, _: &str) -> Result<Vec<Value>, PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn take_named<T>(
    _: &mut Map<String, Value>,
    _: &str,
    _: &str,
    _: &str,
) -> Result<Option<T>, PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn take_item<T>(
    _: &mut std::vec::IntoIter<Value>,
    _: usize,
    _: &str,
    _: &str,
) -> Result<Option<T>, PersistError> {
    Err(off())
}

/// See the `json` feature's version.
pub fn missing_field(_: &str, _: &str, _: &str) -> PersistError {
    off()
}

/// See the `json` feature's version.
pub fn take_state<T>(_: &mut Map<String, Value>, _: &str) -> Result<Option<T>, String> {
    Err(String::new())
}

/// See the `json` feature's version.
pub fn state_does_not_fit(_: &str, _: &str, _: StoredAs, _: &PersistenceId) -> PersistError {
    off()
}
