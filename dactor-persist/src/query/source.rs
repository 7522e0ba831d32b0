//! [`EventQueries`]: what a store implements so that the read side can
//! query it. Applications use [`ReadJournal`](super::ReadJournal) instead.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{EventEnvelope, Offset, StateChange};
use crate::{JournalStorage, PersistError, PersistenceId, SequenceId};

/// Which events an all-events query yields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventFilter {
    /// Every event.
    All,
    /// The events of persistence ids of one entity type (see
    /// [`PersistenceId::entity_type`]).
    EntityType(String),
    /// The events carrying one tag.
    Tag(String),
}

impl std::fmt::Display for EventFilter {
    /// `all`, `entity-type:<type>` or `tag:<tag>`: the form
    /// [`FromStr`](std::str::FromStr) reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventFilter::All => f.write_str("all"),
            EventFilter::EntityType(t) => write!(f, "entity-type:{t}"),
            EventFilter::Tag(t) => write!(f, "tag:{t}"),
        }
    }
}

impl std::str::FromStr for EventFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            Ok(EventFilter::All)
        } else if let Some(t) = s.strip_prefix("entity-type:") {
            Ok(EventFilter::EntityType(t.to_owned()))
        } else if let Some(t) = s.strip_prefix("tag:") {
            Ok(EventFilter::Tag(t.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not an event filter (expected `all`, `entity-type:<type>` or `tag:<tag>`)"
            ))
        }
    }
}

impl EventFilter {
    /// True when `envelope` passes the filter.
    pub fn matches(&self, envelope: &EventEnvelope) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::EntityType(t) => envelope.entity_type() == t,
            EventFilter::Tag(tag) => envelope.tags.iter().any(|t| t == tag),
        }
    }
}

/// One page of an all-events query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventPage {
    /// The events, in offset order, all after the offset asked from.
    pub events: Vec<EventEnvelope>,
    /// How far the page reaches: every matching event with an offset up to
    /// here is in this page or an earlier one, and no event will ever be
    /// added at or below it. For a full page, the last event's offset.
    pub horizon: Offset,
    /// Events are committed above the horizon but not final yet (an older
    /// transaction still runs): a live query reads again soon rather than
    /// waiting for a hint, since the end of that transaction sends none.
    pub held_back: bool,
}

/// One page of a state-changes query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatePage {
    /// The changes, in offset order.
    pub changes: Vec<StateChange>,
    /// As [`EventPage::horizon`].
    pub horizon: Offset,
}

impl EventPage {
    /// A page.
    pub fn new(events: Vec<EventEnvelope>, horizon: Offset) -> Self {
        Self {
            events,
            horizon,
            held_back: false,
        }
    }

    /// The page, marked as held back (see [`EventPage::held_back`]).
    #[must_use]
    pub fn held_back(mut self, held_back: bool) -> Self {
        self.held_back = held_back;
        self
    }
}

impl StatePage {
    /// A page.
    pub fn new(changes: Vec<StateChange>, horizon: Offset) -> Self {
        Self { changes, horizon }
    }
}

/// The queries a store answers, a page at a time; the streams of
/// [`ReadJournal`](super::ReadJournal) are built on them. Every built-in
/// store implements it, the in-memory store being the reference, and the
/// conformance suite checks it (`testkit::conformance`, the `query_*`
/// checks).
///
/// The one promise every implementation keeps: **no event is ever added at
/// or below a horizon it reported.** A reader that resumes after the last
/// offset it saw therefore never misses an event, even one whose
/// transaction committed late.
#[async_trait]
pub trait EventQueries: JournalStorage {
    /// Up to `max` events matching `filter` with an offset after `after`, in
    /// offset order, and how far the page reaches (see [`EventPage`]).
    ///
    /// # Errors
    ///
    /// As the store's reads.
    async fn read_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError>;

    /// How many events passing `filter` are stored after `after`, counting
    /// no further than `limit` (for lag reports). The default reads pages.
    ///
    /// # Errors
    ///
    /// As the store's reads.
    async fn count_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        limit: u64,
    ) -> Result<u64, PersistError> {
        let mut counted = 0u64;
        let mut from = after;
        while counted < limit {
            let page = self.read_events_after(filter, from, 1024).await?;
            let Some(last) = page.events.last() else {
                break;
            };
            if last.offset <= from {
                break;
            }
            from = last.offset;
            counted = counted.saturating_add(page.events.len() as u64);
        }
        Ok(counted.min(limit))
    }

    /// The offset of the newest event committed now ([`Offset::START`]
    /// when there is none): where a current query ends.
    ///
    /// # Errors
    ///
    /// As the store's reads.
    async fn event_head(&self) -> Result<Offset, PersistError>;

    /// Up to `max` events of `persistence_id` with sequence `>= from`,
    /// ascending, as envelopes: [`read_events_page`](JournalStorage::read_events_page)
    /// with offsets, write times, tags and metadata.
    ///
    /// # Errors
    ///
    /// As [`read_events_page`](JournalStorage::read_events_page).
    async fn read_envelopes(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError>;

    /// Up to `max` persistence ids that have a journal, after `after` in
    /// byte order of the id, optionally only those of one entity type.
    ///
    /// # Errors
    ///
    /// As the store's reads.
    async fn read_persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError>;

    /// Up to `max` durable states saved after `after`, optionally only
    /// those of one entity type, in offset order (see [`StateChange`]).
    ///
    /// # Errors
    ///
    /// As the store's reads.
    async fn read_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError>;

    /// The offset of the newest state change committed now.
    ///
    /// # Errors
    ///
    /// As the store's reads.
    async fn state_head(&self) -> Result<Offset, PersistError>;

    /// A receiver whose value changes when events or states may have been
    /// committed: live queries wait on it, and poll as well (a hint may be
    /// missed, or come from another process too late).
    fn watch_commits(&self) -> watch::Receiver<u64>;

    /// How often a live query that is caught up reads again without a
    /// hint (a tenth of it, at most 100 ms, while its pages are
    /// [held back](EventPage::held_back)). Default: 1 s.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}
