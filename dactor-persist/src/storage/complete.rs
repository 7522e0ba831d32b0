//! Reading a journal with proof that nothing is missing.
//!
//! A store answers pages of events; it does not prove them. [`Contiguity`]
//! checks each page against what the store's [`JournalBounds`] promise: the
//! events `from ..= end`, every one of them, strictly ascending. A page that
//! skips a sequence, repeats one, goes backwards, starts below what was asked
//! or ends above the highest is refused with [`PersistError::CorruptEntry`]
//! naming the persistence id and the first sequence that is not as it should
//! be. Every page either moves the reader strictly forward or fails, so a
//! loop over pages ends.
//!
//! The read also proves that nothing lies above `end`: it ends only with an
//! empty page asked from above `end` (a store may answer short pages, so a
//! short page proves nothing). That costs one read of one event more than
//! the events themselves.
//!
//! [`JournalBounds`]: super::JournalBounds

use std::ops::ControlFlow;

use crate::query::EventEnvelope;
use crate::{JournalEntry, JournalStorage, PersistError, PersistenceId, SequenceId};

/// Anything read back with a sequence: what [`Contiguity`] checks.
pub(crate) trait Sequenced {
    fn sequence(&self) -> SequenceId;
}

impl Sequenced for JournalEntry {
    fn sequence(&self) -> SequenceId {
        self.sequence_id
    }
}

impl Sequenced for EventEnvelope {
    fn sequence(&self) -> SequenceId {
        self.sequence_id
    }
}

/// The check of one read of `from ..= end`.
#[derive(Debug)]
pub(crate) struct Contiguity {
    pid: PersistenceId,
    from: SequenceId,
    /// The next sequence the reader must get; `None` once past `i64::MAX`.
    next: Option<SequenceId>,
    end: SequenceId,
    /// An empty page answered a read from above `end`: nothing lies there.
    ended: bool,
}

/// Why a page was refused: damage, or events above the end that a
/// concurrent writer may have added since the bounds were read.
#[derive(Debug)]
pub(crate) enum Refused {
    Corrupt(PersistError),
    /// An event above `end`, at this sequence, otherwise in order.
    Beyond(SequenceId),
}

impl Contiguity {
    /// Expects every event `from ..= end` of `pid` (none when `end < from`).
    pub(crate) fn new(pid: &PersistenceId, from: SequenceId, end: SequenceId) -> Self {
        Self {
            pid: pid.clone(),
            from,
            next: Some(from),
            end,
            ended: false,
        }
    }

    /// True once every expected event was read, and nothing above them.
    pub(crate) fn is_done(&self) -> bool {
        self.next.is_none() || (self.ended && self.past_end())
    }

    fn past_end(&self) -> bool {
        self.next.is_none_or(|next| next > self.end)
    }

    /// Where the next page starts.
    pub(crate) fn next(&self) -> SequenceId {
        self.next.unwrap_or(SequenceId(i64::MAX))
    }

    /// The size of the next page: at most `max`, no more than is left, and
    /// one once nothing is (the read that proves nothing lies above the end).
    pub(crate) fn page_len(&self, max: usize) -> usize {
        let left = self
            .end
            .0
            .saturating_sub(self.next().0)
            .saturating_add(1)
            .max(1);
        usize::try_from(left)
            .map_or(max, |left| left.min(max))
            .max(1)
    }

    /// The last sequence this read must reach.
    pub(crate) fn end(&self) -> SequenceId {
        self.end
    }

    /// Moves the end up, when the store's bounds, read again, show that
    /// events were written since.
    pub(crate) fn extend_to(&mut self, end: SequenceId) {
        self.end = self.end.max(end);
    }

    /// Checks one page and moves past it; a refused page moves nothing, so
    /// that it can be read again (after [`extend_to`](Contiguity::extend_to)).
    pub(crate) fn accept<T: Sequenced>(&mut self, page: &[T]) -> Result<(), Refused> {
        if page.is_empty() {
            return self.accept_empty().map_err(Refused::Corrupt);
        }
        let before = self.next;
        for entry in page {
            if let Err(refused) = self.accept_one(entry.sequence()) {
                self.next = before;
                return Err(refused);
            }
        }
        Ok(())
    }

    /// An empty page from [`next`](Contiguity::next) on: the end, when
    /// nothing more is expected; missing events otherwise.
    pub(crate) fn accept_empty(&mut self) -> Result<(), PersistError> {
        if let Some(next) = self.next.filter(|next| *next <= self.end) {
            return Err(PersistError::incomplete_journal(
                &self.pid,
                next,
                format!(
                    "the store reports events up to {} but returned none from {} on",
                    self.end.0, next.0
                ),
            ));
        }
        self.ended = true;
        Ok(())
    }

    /// Checks the next event read, by its sequence, and moves past it; a
    /// refused one moves nothing, so that reading can resume from it.
    pub(crate) fn accept_one(&mut self, seq: SequenceId) -> Result<(), Refused> {
        let Some(expected) = self.next else {
            return Err(self.disorder(seq, "after the last possible sequence".into()));
        };
        if seq < self.from {
            return Err(self.disorder(seq, format!("below the requested start {}", self.from.0)));
        }
        if seq < expected {
            return Err(self.disorder(
                seq,
                format!("after event {} (repeated or out of order)", expected.0 - 1),
            ));
        }
        if seq > expected && expected <= self.end {
            return Err(self.missing(expected, format!("the next event read was {}", seq.0)));
        }
        if seq > self.end {
            return Err(Refused::Beyond(seq));
        }
        self.next = seq.checked_next();
        Ok(())
    }

    fn missing(&self, first_missing: SequenceId, why: String) -> Refused {
        Refused::Corrupt(PersistError::incomplete_journal(
            &self.pid,
            first_missing,
            why,
        ))
    }

    fn disorder(&self, seq: SequenceId, why: String) -> Refused {
        Refused::Corrupt(PersistError::CorruptEntry {
            sequence_id: seq,
            detail: format!(
                "the journal of `{}` returned event {} {why}: its rows are damaged",
                self.pid, seq.0
            ),
        })
    }

    /// The error for events above the end that the store's bounds, read
    /// again, still do not cover.
    pub(crate) fn beyond_error(&self, seq: SequenceId) -> PersistError {
        PersistError::CorruptEntry {
            sequence_id: seq,
            detail: format!(
                "the journal of `{}` returned event {} above its highest sequence {}: its rows \
                 or its bookkeeping are damaged",
                self.pid, seq.0, self.end.0
            ),
        }
    }
}

/// Reads every event of `pid` from `from` up to the journal's highest
/// sequence and proves the result complete: `each` sees exactly
/// `from ..= highest`, in order, or the read fails. Events go to `each` as
/// the store reads them ([`JournalStorage::read_events_each`], at most `page`
/// per read), each checked before it is handed on, so a read that stops at
/// damage has handed `each` only the events before it.
///
/// The bounds are read first; events that a concurrent writer adds above them
/// meanwhile are read too when the bounds, read again, cover them.
///
/// # Errors
///
/// The store's errors; [`PersistError::CorruptEntry`] naming `pid` and the
/// first sequence that is missing or out of place; whatever `each` returns.
pub(crate) async fn read_complete<F>(
    journal: &dyn JournalStorage,
    pid: &PersistenceId,
    from: SequenceId,
    end: SequenceId,
    page: usize,
    mut each: F,
) -> Result<(), PersistError>
where
    F: FnMut(&JournalEntry) -> Result<(), PersistError> + Send,
{
    let mut check = Contiguity::new(pid, from, end);
    while !check.is_done() {
        let mut refused = None;
        let start = check.next();
        let len = check.page_len(page);
        let handed = journal
            .read_events_each(pid, start, len, &mut |entry| match check
                .accept_one(entry.sequence_id)
            {
                Ok(()) => {
                    each(entry)?;
                    Ok(ControlFlow::Continue(()))
                }
                Err(why) => {
                    refused = Some(why);
                    Ok(ControlFlow::Break(()))
                }
            })
            .await?;
        match refused {
            None if handed == 0 => check.accept_empty()?,
            None => {}
            Some(Refused::Corrupt(err)) => return Err(err),
            Some(Refused::Beyond(seq)) => {
                let highest = journal.read_bounds(pid).await?.highest;
                if highest < seq {
                    return Err(check.beyond_error(seq));
                }
                tracing::debug!(persistence_id = %pid, highest = highest.0, "events were written while reading; reading them too");
                check.extend_to(highest);
                // Reading resumes at the refused event.
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seqs: &[i64]) -> Vec<JournalEntry> {
        seqs.iter()
            .map(|s| JournalEntry {
                sequence_id: SequenceId(*s),
                event_type: "E".into(),
                payload: Vec::new(),
            })
            .collect()
    }

    fn corrupt_at(result: Result<(), Refused>) -> i64 {
        match result {
            Err(Refused::Corrupt(PersistError::CorruptEntry { sequence_id, .. })) => sequence_id.0,
            other => panic!("expected a corrupt entry, got {other:?}"),
        }
    }

    #[test]
    fn contiguous_pages_pass_and_end_with_an_empty_page_above_the_end() {
        let pid = PersistenceId::new("A", "1");
        let mut c = Contiguity::new(&pid, SequenceId(3), SequenceId(7));
        assert_eq!(c.page_len(100), 5);
        c.accept(&page(&[3, 4])).unwrap();
        assert_eq!((c.next(), c.page_len(2)), (SequenceId(5), 2));
        c.accept(&page(&[5, 6, 7])).unwrap();
        assert!(!c.is_done(), "a store may hold more than it said");
        assert_eq!((c.next(), c.page_len(100)), (SequenceId(8), 1));
        c.accept(&page(&[])).unwrap();
        assert!(c.is_done());
    }

    #[test]
    fn an_empty_journal_still_asks_whether_anything_is_stored() {
        let pid = PersistenceId::new("A", "1");
        let mut c = Contiguity::new(&pid, SequenceId(1), SequenceId(0));
        assert!(!c.is_done());
        assert_eq!(c.page_len(8192), 1);
        c.accept(&page(&[])).unwrap();
        assert!(c.is_done());
        let mut c = Contiguity::new(&pid, SequenceId(1), SequenceId(0));
        assert!(matches!(
            c.accept(&page(&[1])),
            Err(Refused::Beyond(SequenceId(1)))
        ));
    }

    #[test]
    fn holes_repeats_and_disorder_are_named() {
        let pid = PersistenceId::new("A", "1");
        let fresh = || Contiguity::new(&pid, SequenceId(1), SequenceId(10));
        assert_eq!(corrupt_at(fresh().accept(&page(&[]))), 1);
        assert_eq!(corrupt_at(fresh().accept(&page(&[2]))), 1);
        assert_eq!(corrupt_at(fresh().accept(&page(&[1, 2, 4]))), 3);
        assert_eq!(corrupt_at(fresh().accept(&page(&[1, 2, 2]))), 2);
        assert_eq!(corrupt_at(fresh().accept(&page(&[1, 3, 2]))), 2);
        assert_eq!(corrupt_at(fresh().accept(&page(&[0, 1]))), 0);
        let mut c = fresh();
        c.accept(&page(&[1, 2])).unwrap();
        assert_eq!(corrupt_at(c.accept(&page(&[1]))), 1);
        assert!(matches!(
            fresh().accept(&page(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])),
            Err(Refused::Beyond(SequenceId(11)))
        ));
        // A gap below the end is a hole even when the event after it is beyond.
        assert_eq!(corrupt_at(fresh().accept(&page(&[1, 12]))), 2);
    }

    #[test]
    fn the_largest_sequences_neither_overflow_nor_loop() {
        let pid = PersistenceId::new("A", "1");
        let mut c = Contiguity::new(&pid, SequenceId(i64::MAX - 1), SequenceId(i64::MAX));
        assert_eq!(c.page_len(usize::MAX), 2);
        c.accept(&page(&[i64::MAX - 1, i64::MAX])).unwrap();
        assert!(c.is_done());
        let mut c = Contiguity::new(&pid, SequenceId(i64::MIN), SequenceId(i64::MAX));
        assert_eq!(c.page_len(8192), 8192);
        assert_eq!(corrupt_at(c.accept(&page(&[]))), i64::MIN);
        let c = Contiguity::new(&pid, SequenceId(5), SequenceId(i64::MIN));
        assert_eq!(c.page_len(8192), 1);
    }
}
