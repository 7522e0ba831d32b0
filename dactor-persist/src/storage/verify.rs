//! Checking a whole store: what `verify()` of the durable stores reports.
//!
//! A verification reads every row and repairs nothing. It runs the database
//! engine's own integrity check where there is one, verifies every checksum,
//! and checks every journal against its bookkeeping: the events
//! `deleted_to + 1 ..= highest` must all be there, and none outside.

use std::fmt;

use crate::{PersistenceId, SequenceId};

/// What a store's `verify()` found. Repairs nothing.
///
/// [`is_intact`](VerifyReport::is_intact) sums it up; its `Display` is a
/// report for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The store checked: the SQLite file, or the PostgreSQL database and schema.
    pub store: String,
    /// The database engine's own check of its files and indexes.
    pub engine_check: EngineCheck,
    /// How many persistence ids have a journal (events or bookkeeping).
    pub journals_checked: u64,
    /// How many events were read.
    pub events_checked: u64,
    /// Every journal with a problem, and what it is, in byte order of the
    /// persistence id; journals without problems are only counted.
    pub damaged_journals: Vec<JournalReport>,
    /// How many snapshots were read.
    pub snapshots_checked: u64,
    /// Every snapshot that is damaged.
    pub damaged_snapshots: Vec<DamagedRow>,
    /// How many durable states were read.
    pub states_checked: u64,
    /// Every durable state that is damaged.
    pub damaged_states: Vec<DamagedRow>,
    /// Set when the walk could not finish (the engine refused to read on):
    /// what was found up to there is reported, and this says why it stopped.
    pub stopped: Option<String>,
}

/// The result of the database engine's own integrity check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineCheck {
    /// The engine found nothing wrong.
    Passed,
    /// The engine's findings, as it wrote them (at most 100).
    Failed(Vec<String>),
    /// The engine has no such check, or it could not be run: why.
    NotRun(String),
}

/// One journal's problems.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalReport {
    /// The persistence id, as stored (a damaged id shows as it reads).
    pub persistence_id: PersistenceId,
    /// Events stored for it.
    pub events: u64,
    /// Its bookkeeping: (deleted_to, highest), when readable.
    pub bounds: Option<(SequenceId, SequenceId)>,
    /// What is wrong, in sequence order.
    pub problems: Vec<Problem>,
}

/// Something wrong with one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Events that should be there and are not (both ends included).
    Missing {
        /// The first missing sequence.
        from: SequenceId,
        /// The last missing sequence.
        to: SequenceId,
    },
    /// An event that is stored but damaged (its checksum or types).
    Damaged {
        /// Its sequence.
        sequence_id: SequenceId,
        /// What is wrong with it.
        detail: String,
    },
    /// An event stored where none should be: at a deleted sequence, above
    /// the highest, or out of order.
    Unexpected {
        /// Its sequence.
        sequence_id: SequenceId,
        /// Why it should not be there.
        detail: String,
    },
    /// The journal's bookkeeping row is missing or damaged: the bounds of the
    /// journal cannot be checked, so no events are reported missing.
    Bookkeeping(String),
}

/// A damaged snapshot or state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DamagedRow {
    /// The persistence id, as stored.
    pub persistence_id: PersistenceId,
    /// The snapshot's sequence (0 for a state).
    pub sequence_id: SequenceId,
    /// What is wrong with it.
    pub detail: String,
}

impl VerifyReport {
    pub(crate) fn new(store: String) -> Self {
        Self {
            store,
            engine_check: EngineCheck::NotRun("not run".into()),
            journals_checked: 0,
            events_checked: 0,
            damaged_journals: Vec::new(),
            snapshots_checked: 0,
            damaged_snapshots: Vec::new(),
            states_checked: 0,
            damaged_states: Vec::new(),
            stopped: None,
        }
    }

    /// True when nothing is wrong: the engine's check passed or has none,
    /// every row is intact, every journal complete, and the walk finished.
    pub fn is_intact(&self) -> bool {
        !matches!(self.engine_check, EngineCheck::Failed(_))
            && self.damaged_journals.is_empty()
            && self.damaged_snapshots.is_empty()
            && self.damaged_states.is_empty()
            && self.stopped.is_none()
    }

    /// Records a damaged snapshot or state.
    pub(crate) fn damaged(&mut self, state: bool, pid: &str, seq: i64, detail: String) {
        let row = DamagedRow {
            persistence_id: PersistenceId(pid.to_owned()),
            sequence_id: SequenceId(seq),
            detail,
        };
        if state {
            self.damaged_states.push(row);
        } else {
            self.damaged_snapshots.push(row);
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_intact() {
            "intact"
        } else {
            "DAMAGED"
        };
        writeln!(f, "{}: {verdict}", self.store)?;
        match &self.engine_check {
            EngineCheck::Passed => writeln!(f, "  engine check: passed")?,
            EngineCheck::NotRun(why) => writeln!(f, "  engine check: not run ({why})")?,
            EngineCheck::Failed(found) => {
                writeln!(f, "  engine check: FAILED")?;
                for line in found {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        writeln!(
            f,
            "  journals: {} ({} events), {} damaged",
            self.journals_checked,
            self.events_checked,
            self.damaged_journals.len()
        )?;
        for journal in &self.damaged_journals {
            let bounds = match journal.bounds {
                Some((deleted_to, highest)) => {
                    format!("deleted to {}, highest {}", deleted_to.0, highest.0)
                }
                None => "bounds unknown".into(),
            };
            writeln!(
                f,
                "    `{}`: {} events, {bounds}",
                journal.persistence_id, journal.events
            )?;
            for problem in &journal.problems {
                match problem {
                    Problem::Missing { from, to } if from == to => {
                        writeln!(f, "      missing event {}", from.0)?
                    }
                    Problem::Missing { from, to } => {
                        writeln!(f, "      missing events {} to {}", from.0, to.0)?
                    }
                    Problem::Damaged {
                        sequence_id,
                        detail,
                    } => writeln!(f, "      event {} damaged: {detail}", sequence_id.0)?,
                    Problem::Unexpected {
                        sequence_id,
                        detail,
                    } => writeln!(f, "      event {} unexpected: {detail}", sequence_id.0)?,
                    Problem::Bookkeeping(detail) => writeln!(f, "      bookkeeping: {detail}")?,
                }
            }
        }
        for (what, checked, damaged) in [
            ("snapshots", self.snapshots_checked, &self.damaged_snapshots),
            ("states", self.states_checked, &self.damaged_states),
        ] {
            writeln!(f, "  {what}: {checked}, {} damaged", damaged.len())?;
            for row in damaged {
                writeln!(
                    f,
                    "    `{}` at {}: {}",
                    row.persistence_id, row.sequence_id.0, row.detail
                )?;
            }
        }
        if let Some(why) = &self.stopped {
            writeln!(f, "  the walk STOPPED before the end: {why}")?;
        }
        Ok(())
    }
}

/// One id's bookkeeping as read: `Ok((highest, deleted_to))`, or what is
/// wrong with it.
pub(crate) type MetaRead = Result<(i64, i64), String>;

/// What a store's bookkeeping rows promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bookkeeping {
    /// Every id with events has one, and its highest is exact (SQLite).
    Exact,
    /// Only ids whose events were removed have one, and its highest is a
    /// floor: events above it are normal (PostgreSQL).
    RemovalsOnly,
}

/// Checks journals from one walk over rows sorted by (persistence id,
/// sequence), each row carrying its id's bookkeeping (absent when it has
/// none) and one event (absent for an id with bookkeeping and no events).
pub(crate) struct JournalWalk {
    kind: Bookkeeping,
    current: Option<Current>,
    journals: u64,
    events: u64,
    damaged: Vec<JournalReport>,
}

struct Current {
    kind: Bookkeeping,
    report: JournalReport,
    /// (highest, deleted_to), when the bookkeeping is readable.
    meta: Option<(i64, i64)>,
    /// The next sequence expected.
    next: i64,
}

impl JournalWalk {
    pub(crate) fn new(kind: Bookkeeping) -> Self {
        Self {
            kind,
            current: None,
            journals: 0,
            events: 0,
            damaged: Vec::new(),
        }
    }

    /// One row: `meta` is the id's bookkeeping (`None` when it has none),
    /// `event` the sequence and state of one event (`Err` when damaged).
    pub(crate) fn row(
        &mut self,
        pid: &str,
        meta: Option<MetaRead>,
        event: Option<(i64, Result<(), String>)>,
    ) {
        if self
            .current
            .as_ref()
            .is_none_or(|c| c.report.persistence_id.0 != pid)
        {
            self.finish_id();
            self.current = Some(Current::start(self.kind, pid, meta));
            self.journals += 1;
        }
        if let (Some(current), Some((seq, intact))) = (self.current.as_mut(), event) {
            self.events += 1;
            current.event(seq, intact);
        }
    }

    fn finish_id(&mut self) {
        if let Some(current) = self.current.take()
            && let Some(report) = current.finish()
        {
            self.damaged.push(report);
        }
    }

    /// Writes the totals and the damaged journals into `report`.
    pub(crate) fn finish(mut self, report: &mut VerifyReport) {
        self.finish_id();
        // The walk's order is the store's; the report's is the ids'.
        self.damaged.sort_by(|a, b| {
            a.persistence_id
                .0
                .as_bytes()
                .cmp(b.persistence_id.0.as_bytes())
        });
        report.journals_checked = self.journals;
        report.events_checked = self.events;
        report.damaged_journals = self.damaged;
    }
}

impl Current {
    fn start(kind: Bookkeeping, pid: &str, meta: Option<MetaRead>) -> Self {
        let mut problems = Vec::new();
        let meta = match meta {
            None if kind == Bookkeeping::RemovalsOnly => Some((0, 0)),
            None => None,
            Some(Ok((highest, deleted_to))) if 0 <= deleted_to && deleted_to <= highest => {
                Some((highest, deleted_to))
            }
            Some(Ok((highest, deleted_to))) => {
                problems.push(Problem::Bookkeeping(format!(
                    "it says events up to {deleted_to} were deleted and the highest is {highest}"
                )));
                None
            }
            Some(Err(detail)) => {
                problems.push(Problem::Bookkeeping(detail));
                None
            }
        };
        let next = meta.map_or(1, |(_, deleted_to)| deleted_to.saturating_add(1));
        Self {
            kind,
            report: JournalReport {
                persistence_id: PersistenceId(pid.to_owned()),
                events: 0,
                bounds: meta.map(|(h, d)| (SequenceId(d), SequenceId(h))),
                problems,
            },
            meta,
            next,
        }
    }

    fn event(&mut self, seq: i64, intact: Result<(), String>) {
        self.report.events += 1;
        let unexpected = |detail: String| Problem::Unexpected {
            sequence_id: SequenceId(seq),
            detail,
        };
        let known = self.meta.is_some();
        let misplaced = match self.meta {
            Some((_, deleted_to)) if seq <= deleted_to => Some(unexpected(format!(
                "events up to {deleted_to} were deleted"
            ))),
            _ if seq < self.next => Some(unexpected(format!(
                "it comes after event {} (repeated or out of order)",
                self.next.saturating_sub(1)
            ))),
            Some((highest, _)) if seq > highest && self.kind == Bookkeeping::Exact => {
                Some(unexpected(format!("the highest sequence is {highest}")))
            }
            _ => None,
        };
        let problems = &mut self.report.problems;
        if seq > self.next && (known || self.report.events > 1) {
            problems.push(Problem::Missing {
                from: SequenceId(self.next),
                to: SequenceId(seq - 1),
            });
        }
        problems.extend(misplaced);
        if let Err(detail) = intact {
            problems.push(Problem::Damaged {
                sequence_id: SequenceId(seq),
                detail,
            });
        }
        if seq >= self.next {
            self.next = seq.saturating_add(1);
        }
    }

    fn finish(mut self) -> Option<JournalReport> {
        match self.meta {
            Some((highest, _)) if self.next <= highest => {
                self.report.problems.push(Problem::Missing {
                    from: SequenceId(self.next),
                    to: SequenceId(highest),
                });
            }
            None if self.report.events > 0 && self.report.problems.is_empty() => {
                self.report.problems.push(Problem::Bookkeeping(format!(
                    "missing, although events up to {} are stored",
                    self.next.saturating_sub(1)
                )));
            }
            _ => {}
        }
        (!self.report.problems.is_empty()).then_some(self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row<'a> = (&'a str, Option<MetaRead>, Option<(i64, Result<(), String>)>);

    fn walk(rows: &[Row<'_>]) -> VerifyReport {
        let mut walk = JournalWalk::new(Bookkeeping::Exact);
        for (pid, meta, event) in rows.iter().cloned() {
            walk.row(pid, meta, event);
        }
        let mut report = VerifyReport::new("test".into());
        report.engine_check = EngineCheck::Passed;
        walk.finish(&mut report);
        report
    }

    #[test]
    fn complete_journals_are_intact() {
        let report = walk(&[
            ("a", Some(Ok((2, 0))), Some((1, Ok(())))),
            ("a", Some(Ok((2, 0))), Some((2, Ok(())))),
            ("b", Some(Ok((5, 3))), Some((4, Ok(())))),
            ("b", Some(Ok((5, 3))), Some((5, Ok(())))),
            ("c", Some(Ok((3, 3))), None),
        ]);
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.journals_checked, report.events_checked), (3, 4));
    }

    #[test]
    fn holes_damage_and_strays_are_reported_per_id() {
        let report = walk(&[
            ("a", Some(Ok((5, 0))), Some((1, Ok(())))),
            ("a", Some(Ok((5, 0))), Some((3, Err("checksum".into())))),
            ("b", None, Some((1, Ok(())))),
            ("c", Some(Ok((2, 1))), Some((1, Ok(())))),
            ("c", Some(Ok((2, 1))), Some((2, Ok(())))),
            ("c", Some(Ok((2, 1))), Some((3, Ok(())))),
            (
                "d",
                Some(Err("fails its checksum".into())),
                Some((1, Ok(()))),
            ),
        ]);
        assert!(!report.is_intact());
        let problems: Vec<(&str, &Vec<Problem>)> = report
            .damaged_journals
            .iter()
            .map(|j| (j.persistence_id.0.as_str(), &j.problems))
            .collect();
        assert_eq!(problems.len(), 4, "{report}");
        assert_eq!(
            problems[0].1,
            &vec![
                Problem::Missing {
                    from: SequenceId(2),
                    to: SequenceId(2)
                },
                Problem::Damaged {
                    sequence_id: SequenceId(3),
                    detail: "checksum".into()
                },
                Problem::Missing {
                    from: SequenceId(4),
                    to: SequenceId(5)
                },
            ]
        );
        assert!(matches!(problems[1].1[0], Problem::Bookkeeping(_)));
        assert!(matches!(
            problems[2].1[..],
            [
                Problem::Unexpected {
                    sequence_id: SequenceId(1),
                    ..
                },
                Problem::Unexpected {
                    sequence_id: SequenceId(3),
                    ..
                }
            ]
        ));
        assert!(matches!(problems[3].1[0], Problem::Bookkeeping(_)));
        let text = report.to_string();
        assert!(
            text.contains("DAMAGED") && text.contains("missing events 4 to 5"),
            "{text}"
        );
    }

    #[test]
    fn bookkeeping_that_records_only_removals_is_a_floor() {
        let mut walk = JournalWalk::new(Bookkeeping::RemovalsOnly);
        for (pid, meta, seq) in [
            ("a", None, 1),
            ("a", None, 2),
            ("b", Some(Ok((3, 1))), 2),
            ("b", Some(Ok((3, 1))), 3),
            ("b", Some(Ok((3, 1))), 4),
            ("c", Some(Ok((5, 0))), 1),
        ] {
            walk.row(pid, meta, Some((seq, Ok(()))));
        }
        let mut report = VerifyReport::new("test".into());
        walk.finish(&mut report);
        assert_eq!(report.damaged_journals.len(), 1, "{report}");
        assert_eq!(
            report.damaged_journals[0].problems,
            vec![Problem::Missing {
                from: SequenceId(2),
                to: SequenceId(5)
            }]
        );
    }
}
