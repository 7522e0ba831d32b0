//! The streams of [`ReadJournal`]: current ones end at what was committed
//! when they started, live ones go on as new events commit. Each reads one
//! page at a time and only when asked for the next item; a stream of the
//! global order reads one page ahead while its consumer works through a
//! full one, so a slow consumer holds at most two pages in memory.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;

use super::{EventEnvelope, EventFilter, EventQueries, Offset, StateChange, TypedEnvelope};
use crate::storage::complete::{Contiguity, Refused};
use crate::{PersistError, PersistenceId, PersistentEvent, SequenceId};

/// How many items a query reads at a time, unless told otherwise.
pub const DEFAULT_PAGE: usize = 512;

/// The read side of a store: event queries by persistence id, by tag, by
/// entity type and across all ids, persistence ids, and durable-state
/// changes, each as a *current* stream (it ends at what was committed when
/// it started) or a *live* one (it goes on as new events commit).
///
/// Cheap to clone. Make one from any store that implements
/// [`EventQueries`]: every built-in store does.
///
/// # Ordering
///
/// Events of one persistence id come in sequence order. Across ids they
/// come in the store's global order, by [`Offset`]: a reader that stores the
/// offset of the last event it handled and resumes after it gets every
/// later event exactly once, including events whose transactions committed
/// late (see each store's docs for how it keeps that promise).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use dactor_persist::*;
/// use dactor_persist::query::{Offset, ReadJournal};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Arc::new(InMemoryStorage::new());
/// let cart = PersistenceId::new("Cart", "c-1");
/// let tags = ["checkout".to_owned()];
/// store.write_events(&cart, &[NewEvent::new(SequenceId(1), "CheckedOut", b"").tags(&tags)]).await?;
///
/// let journal = ReadJournal::new(store.clone());
/// let mut checkouts = journal.current_events_by_tag("checkout", Offset::START);
/// let first = checkouts.next().await.unwrap()?;
/// assert_eq!((first.persistence_id, first.event_type.as_str()), (cart, "CheckedOut"));
/// assert!(checkouts.next().await.is_none(), "a current stream ends");
///
/// // Resume later from the offset stored: nothing is delivered twice.
/// let mut again = journal.current_events_by_tag("checkout", first.offset);
/// assert!(again.next().await.is_none());
/// # Ok::<(), PersistError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct ReadJournal {
    source: Arc<dyn EventQueries>,
    page: usize,
}

impl std::fmt::Debug for ReadJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadJournal")
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

impl ReadJournal {
    /// The read side of `store`.
    pub fn new<S: EventQueries>(store: Arc<S>) -> Self {
        Self::from_dyn(store)
    }

    /// The read side of a store shared as a trait object.
    pub fn from_dyn(store: Arc<dyn EventQueries>) -> Self {
        Self {
            source: store,
            page: DEFAULT_PAGE,
        }
    }

    /// Reads `n` items at a time (at least 1). Default: [`DEFAULT_PAGE`].
    #[must_use]
    pub fn page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }

    /// The events of `persistence_id` from sequence `from` to `to` (both
    /// included; `SequenceId::LAST` for no end), going on as new ones are
    /// persisted until `to`.
    pub fn events_by_persistence_id(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        to: SequenceId,
    ) -> IdEventStream {
        IdEventStream::new(self, persistence_id, from, to, true)
    }

    /// The events of `persistence_id` from `from` to `to` that were
    /// persisted when the stream started; then it ends.
    pub fn current_events_by_persistence_id(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        to: SequenceId,
    ) -> IdEventStream {
        IdEventStream::new(self, persistence_id, from, to, false)
    }

    /// The events tagged `tag` after `after`, going on as new ones commit.
    pub fn events_by_tag(&self, tag: &str, after: Offset) -> EventStream {
        self.events(EventFilter::Tag(tag.to_owned()), after, true)
    }

    /// The events tagged `tag` after `after` committed when the stream
    /// started; then it ends.
    pub fn current_events_by_tag(&self, tag: &str, after: Offset) -> EventStream {
        self.events(EventFilter::Tag(tag.to_owned()), after, false)
    }

    /// Every event after `after`, going on as new ones commit.
    pub fn all_events(&self, after: Offset) -> EventStream {
        self.events(EventFilter::All, after, true)
    }

    /// Every event after `after` committed when the stream started.
    pub fn current_all_events(&self, after: Offset) -> EventStream {
        self.events(EventFilter::All, after, false)
    }

    /// The events of every persistence id of `entity_type` after `after`,
    /// going on as new ones commit.
    pub fn events_by_entity_type(&self, entity_type: &str, after: Offset) -> EventStream {
        self.events(EventFilter::EntityType(entity_type.to_owned()), after, true)
    }

    /// The events of every persistence id of `entity_type` after `after`
    /// committed when the stream started.
    pub fn current_events_by_entity_type(&self, entity_type: &str, after: Offset) -> EventStream {
        self.events(
            EventFilter::EntityType(entity_type.to_owned()),
            after,
            false,
        )
    }

    /// The events passing `filter` after `after`; live or current.
    pub fn events(&self, filter: EventFilter, after: Offset, live: bool) -> EventStream {
        EventStream {
            source: self.source.clone(),
            commits: self.source.watch_commits(),
            filter,
            after,
            page: self.page,
            head: if live { Head::Live } else { Head::NotRead },
            buffer: VecDeque::new(),
            ahead: None,
            done: false,
        }
    }

    /// Every persistence id with a journal (optionally of one entity type),
    /// in byte order of the id, as they are now.
    pub fn current_persistence_ids(&self, entity_type: Option<&str>) -> PersistenceIdStream {
        PersistenceIdStream {
            source: self.source.clone(),
            entity_type: entity_type.map(str::to_owned),
            after: None,
            page: self.page,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The durable states (optionally of one entity type) saved after
    /// `after`, going on as new saves commit (see [`StateChange`]).
    pub fn state_changes(&self, entity_type: Option<&str>, after: Offset) -> StateChangeStream {
        StateChangeStream::new(self, entity_type, after, true)
    }

    /// The durable states saved after `after`, as they were when the stream
    /// started.
    pub fn current_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
    ) -> StateChangeStream {
        StateChangeStream::new(self, entity_type, after, false)
    }
}

/// Where a current stream ends.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// A live stream: it does not end.
    Live,
    /// Not read yet: read when the stream first reads.
    NotRead,
    /// The head read when the stream started.
    At(Offset),
}

/// How often a live query reads while its pages are held back.
fn held_back_poll(poll: Duration) -> Duration {
    (poll / 10).min(Duration::from_millis(100))
}

/// Waits until the store reports a commit, or for the poll interval.
async fn wait_for_commits(commits: &mut watch::Receiver<u64>, poll: Duration) {
    tokio::select! {
        changed = commits.changed() => {
            if changed.is_err() {
                // The store is gone: no hints any more, only polling.
                tokio::time::sleep(poll).await;
            }
        }
        () = tokio::time::sleep(poll) => {}
    }
}

/// The error for a page that breaks the order a store promised.
fn disorder(what: &str, detail: String) -> PersistError {
    PersistError::CorruptEntry {
        sequence_id: SequenceId::ZERO,
        detail: format!("a page of the {what} query is not as promised: {detail}"),
    }
}

/// Events in the store's global order: by tag, by entity type or all; see
/// [`ReadJournal`].
pub struct EventStream {
    source: Arc<dyn EventQueries>,
    commits: watch::Receiver<u64>,
    filter: EventFilter,
    after: Offset,
    page: usize,
    head: Head,
    buffer: VecDeque<EventEnvelope>,
    /// The next page, being read while the consumer works through the
    /// buffer: the offset it reads after, and the read.
    ahead: Option<(Offset, ReadAhead)>,
    done: bool,
}

/// A page read in a task of its own.
type ReadAhead = tokio::task::JoinHandle<Result<super::EventPage, PersistError>>;

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some((_, read)) = self.ahead.take() {
            read.abort();
        }
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("filter", &self.filter)
            .field("after", &self.after)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The next event, `None` when a current stream has ended (a live one
    /// never ends). After an error the stream can be asked again: it reads
    /// again from the last event it delivered.
    pub async fn next(&mut self) -> Option<Result<EventEnvelope, PersistError>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.after = event.offset;
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill().await {
                return Some(Err(e));
            }
        }
    }

    /// The offset of the last event delivered (or the one the stream
    /// started after): where to resume.
    pub fn offset(&self) -> Offset {
        self.after
    }

    /// Decodes every event through `E`.
    pub fn typed<E: PersistentEvent>(self) -> TypedEventStream<E> {
        TypedEventStream {
            inner: self,
            _event: PhantomData,
        }
    }

    /// As a [`futures_util::Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<EventEnvelope, PersistError>> + Send {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|i| (i, s)) })
    }

    async fn fill(&mut self) -> Result<(), PersistError> {
        // Seen before reading: a commit after the read wakes the wait below.
        self.commits.borrow_and_update();
        let head = match self.head {
            Head::Live => None,
            Head::At(head) => Some(head),
            Head::NotRead => {
                let head = self.source.event_head().await?;
                self.head = Head::At(head);
                Some(head)
            }
        };
        if head.is_some_and(|head| self.after >= head) {
            self.done = true;
            return Ok(());
        }
        let mut page = self.read_page().await?;
        let full = page.events.len() >= self.page;
        let mut last = self.after;
        for event in std::mem::take(&mut page.events) {
            if event.offset <= last {
                return Err(disorder(
                    "event",
                    format!("offset {} came after {last}", event.offset),
                ));
            }
            if !self.filter.matches(&event) {
                return Err(disorder(
                    "event",
                    format!(
                        "event {} of `{}` does not pass the filter {:?}",
                        event.sequence_id.0, event.persistence_id, self.filter
                    ),
                ));
            }
            last = event.offset;
            if head.is_some_and(|head| event.offset > head) {
                self.done = true;
                break;
            }
            self.buffer.push_back(event);
        }
        if let Some(head) = head
            && !full
            && page.horizon >= head
        {
            self.done = true;
        }
        if full && !self.done && head.is_none_or(|head| last < head) {
            self.read_ahead(last);
        }
        if self.buffer.is_empty() && !self.done {
            // Caught up (live), or the head is not final yet (current).
            let poll = self.source.poll_interval();
            let poll = if page.held_back {
                held_back_poll(poll)
            } else {
                poll
            };
            wait_for_commits(&mut self.commits, poll).await;
        }
        Ok(())
    }
}

impl EventStream {
    /// The page after the last event delivered: the one read ahead if it
    /// starts there, else read now.
    async fn read_page(&mut self) -> Result<super::EventPage, PersistError> {
        if let Some((after, read)) = self.ahead.take() {
            if after == self.after {
                // A read that panicked or was cancelled is read again here.
                if let Ok(page) = read.await {
                    return page;
                }
            } else {
                read.abort();
            }
        }
        self.source
            .read_events_after(&self.filter, self.after, self.page)
            .await
    }

    /// Starts reading the page after `after` while the consumer works
    /// through the one buffered; nothing when no tokio runtime runs here.
    fn read_ahead(&mut self, after: Offset) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (source, filter, page) = (self.source.clone(), self.filter.clone(), self.page);
        let read =
            runtime.spawn(async move { source.read_events_after(&filter, after, page).await });
        self.ahead = Some((after, read));
    }
}

/// An [`EventStream`] decoding every event through `E`.
pub struct TypedEventStream<E> {
    inner: EventStream,
    _event: PhantomData<fn() -> E>,
}

impl<E: PersistentEvent> TypedEventStream<E> {
    /// The next event, decoded; see [`EventStream::next`].
    pub async fn next(&mut self) -> Option<Result<TypedEnvelope<E>, PersistError>> {
        Some(self.inner.next().await?.and_then(EventEnvelope::decode))
    }

    /// The offset of the last event delivered.
    pub fn offset(&self) -> Offset {
        self.inner.offset()
    }
}

/// The events of one persistence id in sequence order, proved complete (no
/// hole, repeat or reordering goes unnoticed); see [`ReadJournal`].
pub struct IdEventStream {
    source: Arc<dyn EventQueries>,
    commits: watch::Receiver<u64>,
    pid: PersistenceId,
    next: SequenceId,
    to: SequenceId,
    live: bool,
    page: usize,
    segment: Option<Contiguity>,
    buffer: VecDeque<EventEnvelope>,
    done: bool,
}

impl std::fmt::Debug for IdEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdEventStream")
            .field("persistence_id", &self.pid)
            .field("next", &self.next)
            .field("to", &self.to)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl IdEventStream {
    fn new(
        journal: &ReadJournal,
        pid: &PersistenceId,
        from: SequenceId,
        to: SequenceId,
        live: bool,
    ) -> Self {
        Self {
            source: journal.source.clone(),
            commits: journal.source.watch_commits(),
            pid: pid.clone(),
            next: from.max(SequenceId(1)),
            to,
            live,
            page: journal.page,
            segment: None,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The next event; `None` once past `to`, or, for a current stream, past
    /// what was persisted when it started.
    pub async fn next(&mut self) -> Option<Result<EventEnvelope, PersistError>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill().await {
                return Some(Err(e));
            }
        }
    }

    /// Decodes every event through `E`.
    pub fn typed<E: PersistentEvent>(self) -> TypedIdEventStream<E> {
        TypedIdEventStream {
            inner: self,
            _event: PhantomData,
        }
    }

    /// As a [`futures_util::Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<EventEnvelope, PersistError>> + Send {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|i| (i, s)) })
    }

    async fn fill(&mut self) -> Result<(), PersistError> {
        if self.next > self.to {
            self.done = true;
            return Ok(());
        }
        if self.segment.is_none() {
            self.commits.borrow_and_update();
            let bounds = self.source.read_bounds(&self.pid).await?;
            // Deleted events are gone: the stream starts after them.
            self.next = self.next.max(bounds.first_retained());
            let end = bounds.highest.min(self.to);
            if self.next > end {
                if self.live {
                    wait_for_commits(&mut self.commits, self.source.poll_interval()).await;
                } else {
                    self.done = true;
                }
                return Ok(());
            }
            self.segment = Some(Contiguity::new(&self.pid, self.next, end));
        }
        let Some(segment) = self.segment.as_mut() else {
            return Ok(());
        };
        if segment.is_done() {
            self.segment = None;
            // A current stream ends at the highest read when it started.
            self.done = !self.live;
            return Ok(());
        }
        let mut page = self
            .source
            .read_envelopes(&self.pid, segment.next(), segment.page_len(self.page))
            .await?;
        // A current stream leaves out what was written after it started; a
        // live one, what lies past `to`.
        let limit = if self.live { self.to } else { segment.end() };
        page.retain(|e| e.sequence_id <= limit);
        match segment.accept(&page) {
            Ok(()) => {
                self.next = segment.next();
                self.buffer.extend(page);
                Ok(())
            }
            Err(Refused::Corrupt(err)) => Err(err),
            Err(Refused::Beyond(seq)) => {
                let highest = self.source.read_bounds(&self.pid).await?.highest;
                if highest < seq {
                    return Err(segment.beyond_error(seq));
                }
                segment.extend_to(highest.min(self.to));
                Ok(())
            }
        }
    }
}

/// An [`IdEventStream`] decoding every event through `E`.
pub struct TypedIdEventStream<E> {
    inner: IdEventStream,
    _event: PhantomData<fn() -> E>,
}

impl<E: PersistentEvent> TypedIdEventStream<E> {
    /// The next event, decoded; see [`IdEventStream::next`].
    pub async fn next(&mut self) -> Option<Result<TypedEnvelope<E>, PersistError>> {
        Some(self.inner.next().await?.and_then(EventEnvelope::decode))
    }
}

/// Persistence ids, in byte order; see [`ReadJournal::current_persistence_ids`].
pub struct PersistenceIdStream {
    source: Arc<dyn EventQueries>,
    entity_type: Option<String>,
    after: Option<PersistenceId>,
    page: usize,
    buffer: VecDeque<PersistenceId>,
    done: bool,
}

impl std::fmt::Debug for PersistenceIdStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistenceIdStream")
            .field("entity_type", &self.entity_type)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl PersistenceIdStream {
    /// The next persistence id; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<PersistenceId, PersistError>> {
        loop {
            if let Some(id) = self.buffer.pop_front() {
                self.after = Some(id.clone());
                return Some(Ok(id));
            }
            if self.done {
                return None;
            }
            let page = match self
                .source
                .read_persistence_ids(self.entity_type.as_deref(), self.after.as_ref(), self.page)
                .await
            {
                Ok(page) => page,
                Err(e) => return Some(Err(e)),
            };
            let mut last = self.after.clone();
            for id in &page {
                let ordered = last
                    .as_ref()
                    .is_none_or(|l| l.0.as_bytes() < id.0.as_bytes());
                let typed = self
                    .entity_type
                    .as_deref()
                    .is_none_or(|t| id.entity_type() == t);
                if !ordered || !typed {
                    return Some(Err(disorder(
                        "persistence id",
                        format!(
                            "`{id}` came after {last:?} for entity type {:?}",
                            self.entity_type
                        ),
                    )));
                }
                last = Some(id.clone());
            }
            self.done = page.is_empty();
            self.buffer.extend(page);
        }
    }

    /// Reads every id into a `Vec`.
    ///
    /// # Errors
    ///
    /// The first error of the reads.
    pub async fn collect(mut self) -> Result<Vec<PersistenceId>, PersistError> {
        let mut ids = Vec::new();
        while let Some(id) = self.next().await {
            ids.push(id?);
        }
        Ok(ids)
    }
}

/// Durable-state changes in the store's order; see [`StateChange`].
pub struct StateChangeStream {
    source: Arc<dyn EventQueries>,
    commits: watch::Receiver<u64>,
    entity_type: Option<String>,
    after: Offset,
    page: usize,
    head: Head,
    buffer: VecDeque<StateChange>,
    done: bool,
}

impl std::fmt::Debug for StateChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateChangeStream")
            .field("entity_type", &self.entity_type)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl StateChangeStream {
    fn new(journal: &ReadJournal, entity_type: Option<&str>, after: Offset, live: bool) -> Self {
        Self {
            source: journal.source.clone(),
            commits: journal.source.watch_commits(),
            entity_type: entity_type.map(str::to_owned),
            after,
            page: journal.page,
            head: if live { Head::Live } else { Head::NotRead },
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The next change; `None` when a current stream has ended.
    pub async fn next(&mut self) -> Option<Result<StateChange, PersistError>> {
        loop {
            if let Some(change) = self.buffer.pop_front() {
                self.after = change.offset;
                return Some(Ok(change));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill().await {
                return Some(Err(e));
            }
        }
    }

    /// The offset of the last change delivered.
    pub fn offset(&self) -> Offset {
        self.after
    }

    async fn fill(&mut self) -> Result<(), PersistError> {
        self.commits.borrow_and_update();
        let head = match self.head {
            Head::Live => None,
            Head::At(head) => Some(head),
            Head::NotRead => {
                let head = self.source.state_head().await?;
                self.head = Head::At(head);
                Some(head)
            }
        };
        if head.is_some_and(|head| self.after >= head) {
            self.done = true;
            return Ok(());
        }
        let page = self
            .source
            .read_state_changes(self.entity_type.as_deref(), self.after, self.page)
            .await?;
        let full = page.changes.len() >= self.page;
        let mut last = self.after;
        for change in page.changes {
            let typed = self
                .entity_type
                .as_deref()
                .is_none_or(|t| change.persistence_id.entity_type() == t);
            if change.offset <= last || !typed {
                return Err(disorder(
                    "state change",
                    format!(
                        "`{}` at {} after {last}",
                        change.persistence_id, change.offset
                    ),
                ));
            }
            last = change.offset;
            if head.is_some_and(|head| change.offset > head) {
                self.done = true;
                break;
            }
            self.buffer.push_back(change);
        }
        if let Some(head) = head
            && !full
            && page.horizon >= head
        {
            self.done = true;
        }
        if self.buffer.is_empty() && !self.done {
            wait_for_commits(&mut self.commits, self.source.poll_interval()).await;
        }
        Ok(())
    }
}
