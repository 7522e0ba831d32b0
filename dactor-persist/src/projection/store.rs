//! What a store keeps for its projections: each one's offset and whether it
//! is paused, guarded updates, and the lease that lets one instance run.

use async_trait::async_trait;

use crate::PersistError;
use crate::query::{EventFilter, Offset};

/// The longest projection name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// What a store holds for one projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectionRecord {
    /// The offset of the last event the projection handled: it resumes
    /// after it. `None`: from the start.
    pub offset: Option<Offset>,
    /// Whether it is paused: a paused projection handles nothing until
    /// resumed, across restarts.
    pub paused: bool,
    /// The events it reads, as its last start registered them (`None`
    /// before it first ran).
    pub source: Option<EventFilter>,
}

/// The right to run one projection, held until dropped. One instance of a
/// projection holds it at a time, across every process sharing the store.
pub struct ProjectionLease {
    guard: Box<dyn LeaseGuard>,
}

impl ProjectionLease {
    /// A lease kept by `guard` (released when it is dropped).
    pub fn new(guard: impl LeaseGuard + 'static) -> Self {
        ProjectionLease {
            guard: Box::new(guard),
        }
    }

    /// False once the lease may have been lost (its connection broke): the
    /// holder must stop and take it again.
    pub fn is_held(&self) -> bool {
        self.guard.is_held()
    }
}

impl std::fmt::Debug for ProjectionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionLease")
            .field("held", &self.is_held())
            .finish()
    }
}

/// What keeps a [`ProjectionLease`]: dropping it releases the lease.
pub trait LeaseGuard: Send + Sync {
    /// False once the lease may have been lost.
    fn is_held(&self) -> bool {
        true
    }
}

/// Offsets, pauses and leases of projections, kept by a store: every
/// built-in store implements it (the in-memory one in memory).
///
/// Offsets only move through [`advance_projection`](Self::advance_projection),
/// which is guarded by the offset the caller last saw, so two instances that
/// both believe they run cannot both advance one; operators set them with
/// [`set_projection_offset`](Self::set_projection_offset).
#[async_trait]
pub trait ProjectionStore: Send + Sync {
    /// The record of projection `name` (the default record when none is
    /// stored).
    ///
    /// # Errors
    ///
    /// [`PersistError::ProjectionFailed`] for a bad name; a damaged record
    /// is [`PersistError::CorruptEntry`]; the store's errors.
    async fn load_projection(&self, name: &str) -> Result<ProjectionRecord, PersistError>;

    /// Moves the offset of `name` from `expected` to `to`.
    ///
    /// # Errors
    ///
    /// [`PersistError::OffsetConflict`] when the stored offset is not
    /// `expected` (nothing is saved); the store's errors.
    async fn advance_projection(
        &self,
        name: &str,
        expected: Option<Offset>,
        to: Offset,
    ) -> Result<(), PersistError>;

    /// Sets the offset of `name`, whatever it is: `None` starts it over (a
    /// rebuild). For operators; a running instance stops at its next save
    /// with [`PersistError::OffsetConflict`] and starts again from here.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn set_projection_offset(
        &self,
        name: &str,
        offset: Option<Offset>,
    ) -> Result<(), PersistError>;

    /// Pauses or resumes `name`; stored, so a pause outlives a restart.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn set_projection_paused(&self, name: &str, paused: bool) -> Result<(), PersistError>;

    /// Records that projection `name` reads `source` (creating its record,
    /// from the start, when it has none); the rest of the record stays.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn register_projection(
        &self,
        name: &str,
        source: &EventFilter,
    ) -> Result<(), PersistError>;

    /// The names of every projection with a record, in byte order.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn projection_names(&self) -> Result<Vec<String>, PersistError>;

    /// Takes the right to run `name`; `None` when another instance holds it.
    ///
    /// # Errors
    ///
    /// The store's errors.
    async fn try_lease(&self, name: &str) -> Result<Option<ProjectionLease>, PersistError>;
}

/// Refuses a projection name that is empty, longer than [`MAX_NAME_LEN`]
/// bytes, or holds a control character.
pub(crate) fn check_name(name: &str) -> Result<(), PersistError> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "it is {} bytes long, more than {MAX_NAME_LEN}",
            name.len()
        ))
    } else if name.chars().any(char::is_control) {
        Some("it holds a control character".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(PersistError::ProjectionFailed {
            projection: name.escape_debug().to_string(),
            detail: format!("not a valid projection name: {problem}"),
        }),
        None => Ok(()),
    }
}

/// The error for a guarded save that found another offset.
pub(crate) fn conflict(
    name: &str,
    expected: Option<Offset>,
    found: Option<Offset>,
) -> PersistError {
    let show = |o: Option<Offset>| o.map_or_else(|| "none".to_owned(), |o| o.to_string());
    PersistError::OffsetConflict {
        projection: name.to_owned(),
        expected: show(expected),
        found: show(found),
    }
}

/// A stored offset read back as text, checked.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn parse_offset(name: &str, text: Option<&str>) -> Result<Option<Offset>, PersistError> {
    text.map(|t| {
        t.parse().map_err(|e| PersistError::CorruptEntry {
            sequence_id: crate::SequenceId::ZERO,
            detail: format!("the stored offset of projection `{name}` is not an offset: {e}"),
        })
    })
    .transpose()
}

/// A stored source read back as text, checked.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn parse_source(
    name: &str,
    text: Option<&str>,
) -> Result<Option<EventFilter>, PersistError> {
    text.map(|t| {
        t.parse().map_err(|e| PersistError::CorruptEntry {
            sequence_id: crate::SequenceId::ZERO,
            detail: format!("the stored source of projection `{name}` is not a source: {e}"),
        })
    })
    .transpose()
}

/// The checksum of a stored projection record (its offset and source in
/// their text forms).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn record_checksum(
    name: &str,
    offset: Option<&str>,
    paused: bool,
    source: Option<&str>,
) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(b"P1");
    for text in [Some(name), offset, source] {
        match text {
            Some(t) => {
                hasher.update(&[1]);
                hasher.update(&(t.len() as u64).to_le_bytes());
                hasher.update(t.as_bytes());
            }
            None => hasher.update(&[0]),
        }
    }
    hasher.update(&[u8::from(paused)]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("carts-by-status").is_ok());
        assert!(check_name("ünïcode names / with spaces").is_ok());
        for bad in ["", "a\nb", "nul\0", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(
                matches!(check_name(bad), Err(PersistError::ProjectionFailed { .. })),
                "{bad:?} was accepted"
            );
        }
    }
}
