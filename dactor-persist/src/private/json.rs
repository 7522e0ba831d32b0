//! The self-describing JSON layout of `#[persist(format = "json")]`
//! (feature `json`), for generated code only.
//!
//! An event is `{"<stored name>": {"field": value, ..}}` (a tuple variant's
//! fields are an array, a unit variant's `null`); a state or snapshot is an
//! object of its stored fields by their stored names. A payload that does
//! not start with `{` and parse as such an object is not JSON: the decoder
//! then reads it as postcard, so a type that switches to JSON keeps reading
//! its old rows.

use serde::Serialize;
use serde::de::DeserializeOwned;
pub use serde_json::{Map, Value};

use crate::{PersistError, PersistenceId, SequenceId, StoredAs};

/// Implemented when the `json` feature is on.
pub trait Enabled {}
impl Enabled for () {}

/// Compiles only with the `json` feature.
pub fn require<T: Enabled>() {}

fn encode_failed(what: &str, e: serde_json::Error) -> PersistError {
    PersistError::SerializationFailed(format!("{what} does not encode as JSON: {e}"))
}

fn incompatible(detail: String) -> PersistError {
    PersistError::IncompatibleEvent {
        sequence_id: SequenceId::ZERO,
        detail,
    }
}

/// Adds a named field to an event's or a state's object.
pub fn field<T: Serialize + ?Sized>(
    map: &mut Map<String, Value>,
    key: &str,
    value: &T,
    ty: &str,
) -> Result<(), PersistError> {
    let value = serde_json::to_value(value)
        .map_err(|e| encode_failed(&format!("field `{key}` of `{ty}`"), e))?;
    map.insert(key.to_owned(), value);
    Ok(())
}

/// Adds a positional field to a tuple variant's array.
pub fn item<T: Serialize + ?Sized>(
    items: &mut Vec<Value>,
    value: &T,
    ty: &str,
) -> Result<(), PersistError> {
    let index = items.len();
    let value = serde_json::to_value(value)
        .map_err(|e| encode_failed(&format!("field {index} of `{ty}`"), e))?;
    items.push(value);
    Ok(())
}

/// `{"<name>": fields}`.
pub fn encode_event(name: &str, fields: Value) -> Result<Vec<u8>, PersistError> {
    let mut outer = Map::with_capacity(1);
    outer.insert(name.to_owned(), fields);
    serde_json::to_vec(&Value::Object(outer))
        .map_err(|e| encode_failed(&format!("event `{name}`"), e))
}

/// A state's or snapshot's object.
pub fn encode_state(map: Map<String, Value>, ty: &str) -> Result<Vec<u8>, PersistError> {
    serde_json::to_vec(&Value::Object(map))
        .map_err(|e| encode_failed(&format!("the state of `{ty}`"), e))
}

/// The payload as a JSON object, or `None` when it is not one (postcard).
fn object(payload: &[u8]) -> Option<Map<String, Value>> {
    if payload.first() != Some(&b'{') {
        return None;
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A JSON event's name and fields, or `None` when the payload is not a
/// JSON event (it is then read as postcard).
pub fn parse_event(payload: &[u8]) -> Option<(String, Value)> {
    let map = object(payload)?;
    if map.len() != 1 {
        return None;
    }
    map.into_iter().next()
}

/// A named variant's fields: an object.
pub fn fields_object(
    fields: Value,
    name: &str,
    ty: &str,
) -> Result<Map<String, Value>, PersistError> {
    match fields {
        Value::Object(map) => Ok(map),
        other => Err(incompatible(format!(
            "the JSON fields of `{ty}::{name}` are {}, not an object: the variant's shape \
             changed since this event was written; keep the old shape readable under its name \
             and upcast it (see the evolution guide in `dactor_persist::codec`)",
            kind(&other)
        ))),
    }
}

/// A tuple variant's fields: an array.
pub fn fields_array(fields: Value, name: &str, ty: &str) -> Result<Vec<Value>, PersistError> {
    match fields {
        Value::Array(items) => Ok(items),
        other => Err(incompatible(format!(
            "the JSON fields of `{ty}::{name}` are {}, not an array: the variant's shape \
             changed since this event was written; upcast the old shape",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An event's field by name: `None` when the stored event has no such key.
pub fn take_named<T: DeserializeOwned>(
    fields: &mut Map<String, Value>,
    key: &str,
    name: &str,
    ty: &str,
) -> Result<Option<T>, PersistError> {
    let Some(value) = fields.remove(key) else {
        return Ok(None);
    };
    serde_json::from_value(value).map(Some).map_err(|e| {
        incompatible(format!(
            "field `{key}` of `{ty}::{name}` does not decode from JSON ({e}): its type changed \
             since this event was written; keep the old shape readable under its name and \
             upcast it (see the evolution guide in `dactor_persist::codec`)"
        ))
    })
}

/// A tuple variant's next field: `None` when the stored array has ended.
pub fn take_item<T: DeserializeOwned>(
    items: &mut std::vec::IntoIter<Value>,
    index: usize,
    name: &str,
    ty: &str,
) -> Result<Option<T>, PersistError> {
    let Some(value) = items.next() else {
        return Ok(None);
    };
    serde_json::from_value(value).map(Some).map_err(|e| {
        incompatible(format!(
            "field {index} of `{ty}::{name}` does not decode from JSON ({e}): its type \
             changed since this event was written; upcast the old shape"
        ))
    })
}

/// The error for an event field the stored JSON does not have.
pub fn missing_field(key: &str, name: &str, ty: &str) -> PersistError {
    incompatible(format!(
        "the JSON of `{ty}::{name}` has no field `{key}`: the variant gained it since this \
         event was written; mark it `#[persist(default)]` (added fields go last), or upcast \
         the old shape (see the evolution guide in `dactor_persist::codec`)"
    ))
}

/// A JSON state's or snapshot's object, or `None` when the payload is not
/// JSON (it is then read as postcard).
pub fn parse_state(payload: &[u8]) -> Option<Map<String, Value>> {
    object(payload)
}

/// A stored field of a JSON state by its stored name: `Ok(None)` when the
/// state does not have it, `Err` (why it does not fit) when it has another
/// type.
pub fn take_state<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<T>, String> {
    let Some(value) = map.remove(key) else {
        return Ok(None);
    };
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("its field `{key}` does not decode ({e})"))
}

/// The error for a JSON state or snapshot that does not fit the struct and
/// that no declared older layout reads.
pub fn state_does_not_fit(
    why: &str,
    ty: &str,
    kind: StoredAs,
    pid: &PersistenceId,
) -> PersistError {
    let (noun, then) = match kind {
        StoredAs::Snapshot => (
            "snapshot",
            "recovery replays the journal instead; to read such snapshots again, declare the change",
        ),
        StoredAs::State => (
            "state",
            "a durable state has no journal to fall back on, so declare the change",
        ),
    };
    PersistError::SnapshotIncompatible(format!(
        "the stored JSON {noun} of `{pid}` does not fit the fields of `{ty}`: {why}; {then}: \
         mark an added field `#[persist(default)]`, a renamed one `#[persist(name = \
         \"old_name\")]`, and for anything else declare the old fields as a \
         `#[derive(StoredState)]` struct and migrate from it (see the evolution guide in \
         `dactor_persist::codec`)"
    ))
}
