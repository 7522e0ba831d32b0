//! Metadata stored beside an event: correlation and causation ids, and
//! headers of the application's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::PersistError;

/// What an event carries beside its payload, set per persist through the
/// runtime's `Context::set_metadata` (or given to
/// [`JournalStorage::write_events`](crate::JournalStorage::write_events)) and
/// read back in every [`EventEnvelope`](crate::query::EventEnvelope).
///
/// # Examples
///
/// ```
/// use dactor_persist::Metadata;
///
/// let meta = Metadata::new()
///     .with_correlation_id("order-7")
///     .with_causation_id("cmd-42")
///     .with_header("tenant", "acme");
/// assert_eq!(meta.correlation_id.as_deref(), Some("order-7"));
/// assert!(!meta.is_empty());
/// assert_eq!(Metadata::decode(&meta.encode()).unwrap(), meta);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The id shared by everything one request or workflow caused.
    pub correlation_id: Option<String>,
    /// The id of the message or event that caused this one.
    pub causation_id: Option<String>,
    /// Anything else, by name.
    pub headers: BTreeMap<String, String>,
}

/// The first byte of stored metadata: its layout version.
const LAYOUT: u8 = 1;

impl Metadata {
    /// No metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// With this causation id.
    #[must_use]
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// With this header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none() && self.causation_id.is_none() && self.headers.is_empty()
    }

    /// The stored form: a layout byte, then the fields (postcard).
    pub fn encode(&self) -> Vec<u8> {
        // Strings and maps of strings into a growable Vec cannot fail to
        // encode; the fallback is never taken.
        postcard::to_extend(self, vec![LAYOUT]).unwrap_or_else(|_| vec![LAYOUT])
    }

    /// Reads the stored form back.
    ///
    /// # Errors
    ///
    /// [`PersistError::SerializationFailed`] for bytes that are not stored
    /// metadata (another layout, damage, bytes left over).
    pub fn decode(bytes: &[u8]) -> Result<Self, PersistError> {
        let damaged =
            |why: String| PersistError::SerializationFailed(format!("stored event metadata {why}"));
        match bytes.split_first() {
            Some((&LAYOUT, rest)) => {
                let (meta, left) = postcard::take_from_bytes::<Metadata>(rest)
                    .map_err(|e| damaged(format!("does not decode: {e}")))?;
                if !left.is_empty() {
                    return Err(damaged(format!(
                        "has {} bytes after its fields",
                        left.len()
                    )));
                }
                Ok(meta)
            }
            Some((layout, _)) => Err(damaged(format!(
                "has layout {layout}, which this version does not know"
            ))),
            None => Err(damaged("is empty".into())),
        }
    }
}
