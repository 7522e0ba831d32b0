//! A journal that answers damaged pages: for proving that recovery, and any
//! reader of a journal, refuses damage instead of building a wrong state.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::{
    JournalBounds, JournalEntry, JournalStorage, PersistError, PersistenceId, SequenceId,
    SnapshotEntry, SnapshotStorage,
};

/// How a [`DamagedJournal`] damages what it reads back. Writes are never
/// touched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Damage {
    /// Nothing: reads answer what the store holds.
    #[default]
    None,
    /// The event at this sequence is left out of every page (a hole).
    Hole(SequenceId),
    /// The event at this sequence comes back twice.
    Repeat(SequenceId),
    /// The events at this sequence and the next come back in swapped order.
    Swap(SequenceId),
    /// The event at this sequence comes back numbered as the second value
    /// (`i64::MAX`, 1 after 100, ...).
    Renumber(SequenceId, SequenceId),
    /// The last page also holds an event above the highest sequence.
    BeyondHighest,
    /// Every page after the first starts with the event before it was asked
    /// for (below the requested start).
    BelowStart,
    /// Every page is the journal's first page, whatever was asked: a reader
    /// that trusts pages to advance loops forever.
    Stuck,
    /// Pages ignore their bound and hold everything from the start asked for
    /// (not damage: a store may do so, and readers must cope).
    Unbounded,
    /// `read_bounds` and `read_highest_sequence` report this highest
    /// sequence instead of the true one.
    Highest(SequenceId),
}

/// Wraps a journal (and its snapshot store) and damages every read as its
/// [`Damage`] says, the way a damaged file or a buggy backend would; pages
/// can also be made small, so that a reader crosses many of them.
///
/// # Examples
///
/// ```
/// use dactor_persist::*;
/// use dactor_persist::testkit::{Damage, DamagedJournal};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let journal = DamagedJournal::new(InMemoryStorage::new()).page_limit(2);
/// let id = PersistenceId::new("Account", "a-1");
/// for seq in 1..=5 {
///     journal.write_event(&id, SequenceId(seq), "E", b"").await?;
/// }
/// journal.set_damage(Damage::Hole(SequenceId(3)));
/// let page = journal.read_events_page(&id, SequenceId(1), 10).await?;
/// let seqs: Vec<i64> = page.iter().map(|e| e.sequence_id.0).collect();
/// assert_eq!(seqs, [1, 2]);
/// let page = journal.read_events_page(&id, SequenceId(3), 10).await?;
/// assert_eq!(page[0].sequence_id, SequenceId(4)); // 3 is missing
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct DamagedJournal<S> {
    inner: Arc<S>,
    damage: Mutex<Damage>,
    page_limit: usize,
}

impl<S> DamagedJournal<S> {
    /// Wraps `inner`, undamaged until [`set_damage`](DamagedJournal::set_damage).
    pub fn new(inner: S) -> Self {
        Self::wrap(Arc::new(inner))
    }

    /// Wraps a shared store.
    pub fn wrap(inner: Arc<S>) -> Self {
        Self {
            inner,
            damage: Mutex::new(Damage::None),
            page_limit: usize::MAX,
        }
    }

    /// Answers pages of at most `n` events (at least 1), whatever was asked.
    #[must_use]
    pub fn page_limit(mut self, n: usize) -> Self {
        self.page_limit = n.max(1);
        self
    }

    /// The store underneath, for writing behind the damage.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// Damages every read from now on.
    pub fn set_damage(&self, damage: Damage) {
        *self.lock() = damage;
    }

    fn damage(&self) -> Damage {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Damage> {
        self.damage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `entries` as the damage says; `first_page` when the read started at the
/// journal's first event.
fn damaged(mut entries: Vec<JournalEntry>, damage: &Damage, first_page: bool) -> Vec<JournalEntry> {
    let position = |entries: &[JournalEntry], seq: SequenceId| {
        entries.iter().position(|e| e.sequence_id == seq)
    };
    match damage {
        Damage::Hole(seq) => entries.retain(|e| e.sequence_id != *seq),
        Damage::Repeat(seq) => {
            if let Some(i) = position(&entries, *seq) {
                let copy = entries[i].clone();
                entries.insert(i + 1, copy);
            }
        }
        Damage::Swap(seq) => {
            if let Some(i) = position(&entries, *seq)
                && i + 1 < entries.len()
            {
                entries.swap(i, i + 1);
            }
        }
        Damage::Renumber(seq, to) => {
            if let Some(i) = position(&entries, *seq) {
                entries[i].sequence_id = *to;
            }
        }
        Damage::BelowStart if !first_page => {
            if let Some(first) = entries.first().cloned() {
                entries.insert(
                    0,
                    JournalEntry {
                        sequence_id: SequenceId(first.sequence_id.0.saturating_sub(1)),
                        ..first
                    },
                );
            }
        }
        _ => {}
    }
    entries
}

#[async_trait]
impl<S: JournalStorage> JournalStorage for DamagedJournal<S> {
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.inner
            .write_event(persistence_id, sequence_id, event_type, payload)
            .await
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        self.inner.write_event_batch(persistence_id, entries).await
    }

    async fn read_events(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        self.read_events_page(persistence_id, from_sequence, usize::MAX)
            .await
    }

    async fn read_events_page(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        let damage = self.damage();
        let all = self
            .inner
            .read_events(persistence_id, SequenceId(i64::MIN))
            .await?;
        let first_stored = all.first().map(|e| e.sequence_id);
        let from = match damage {
            Damage::Stuck => SequenceId(i64::MIN),
            _ => from_sequence,
        };
        let mut page: Vec<JournalEntry> =
            all.into_iter().filter(|e| e.sequence_id >= from).collect();
        let is_first = page.first().map(|e| e.sequence_id) == first_stored;
        page = damaged(page, &damage, is_first);
        let limit = match damage {
            Damage::Unbounded => usize::MAX,
            _ => max.min(self.page_limit),
        };
        let last_page = page.len() <= limit;
        page.truncate(limit);
        if damage == Damage::BeyondHighest
            && last_page
            && let Some(last) = page.last().cloned()
        {
            page.push(JournalEntry {
                sequence_id: last.sequence_id.next(),
                ..last
            });
        }
        Ok(page)
    }

    async fn read_highest_sequence(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError> {
        let highest = self.read_bounds(persistence_id).await?.highest;
        Ok((highest > SequenceId::ZERO).then_some(highest))
    }

    async fn read_bounds(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<JournalBounds, PersistError> {
        let mut bounds = self.inner.read_bounds(persistence_id).await?;
        if let Damage::Highest(highest) = self.damage() {
            bounds.highest = highest;
        }
        Ok(bounds)
    }

    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError> {
        self.inner
            .delete_events_to(persistence_id, to_sequence)
            .await
    }
}

#[async_trait]
impl<S: SnapshotStorage> SnapshotStorage for DamagedJournal<S> {
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.inner
            .save_snapshot(persistence_id, sequence_id, payload)
            .await
    }

    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        self.inner.load_latest_snapshot(persistence_id).await
    }

    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError> {
        self.inner
            .delete_snapshots_before(persistence_id, sequence_id)
            .await
    }
}
