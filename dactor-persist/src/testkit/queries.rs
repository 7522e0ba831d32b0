//! The query part of the conformance suite: the read side
//! ([`EventQueries`], through [`ReadJournal`]) checked against any store.
//!
//! Run it with [`query_conformance_tests!`](crate::query_conformance_tests)
//! next to [`storage_conformance_tests!`](crate::storage_conformance_tests):
//!
//! ```
//! use std::sync::Arc;
//! use dactor_persist::InMemoryStorage;
//!
//! dactor_persist::query_conformance_tests!(|| async { Arc::new(InMemoryStorage::new()) });
//! # fn main() {}
//! ```

// Test support: a failed expectation must panic, with a message naming the check.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::query::{EventEnvelope, EventQueries, EventStream, Offset, ReadJournal};
use crate::{Metadata, NewEvent, PersistError, PersistenceId, SequenceId, StateStorage};

/// The query checks, listed once.
#[doc(hidden)]
#[macro_export]
macro_rules! __query_checks {
    ([$($then:tt)*] [$($prefix:tt)*]) => {
        $($then)*! {
            $($prefix)*
            query_all_events_in_write_order,
            query_resuming_delivers_each_event_once,
            query_current_streams_end,
            query_live_streams_deliver_new_events,
            query_tags_and_metadata_round_trip,
            query_deleted_events_leave_and_offsets_stay_used,
            query_concurrent_writers_and_a_resuming_reader,
            query_events_of_one_id,
            query_persistence_ids,
            query_state_changes,
        }
    };
}

/// Writes one `#[test]` per query check for the store that `$factory` makes
/// (a store implementing [`EventQueries`] and [`StateStorage`]). See
/// [`storage_conformance_tests!`](crate::storage_conformance_tests).
#[macro_export]
macro_rules! query_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::__query_checks!([$crate::__query_tests] [$factory;]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __query_tests {
    ($factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::testkit::block_on(async {
                    let fixture = ($factory)().await;
                    let store = $crate::testkit::Fixture::under_test(&fixture);
                    $crate::testkit::queries::$check(store).await;
                    drop(fixture);
                });
            }
        )+
    };
}

/// Runs every query check, each on a fresh store from `make`.
///
/// # Panics
///
/// At the first check that fails, naming it.
pub async fn run_queries<F, Fut, X>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = X>,
    X: super::Fixture,
    X::Store: EventQueries + StateStorage + Sized,
{
    macro_rules! each {
        ($($check:ident),+ $(,)?) => {$(
            let fixture = make().await;
            $check(fixture.under_test()).await;
            drop(fixture);
        )+};
    }
    crate::__query_checks!([each] []);
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// How long a live stream may take to deliver an event written meanwhile.
const LIVE: Duration = Duration::from_secs(10);

#[track_caller]
fn ok<T>(check: &str, step: &str, result: Result<T, PersistError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("conformance check `{check}` failed: {step}: unexpected error: {err}"),
    }
}

#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(check: &str, what: &str, actual: T, expected: T) {
    if actual != expected {
        panic!(
            "conformance check `{check}` failed: {what}:\n  expected {expected:?}\n  got      {actual:?}"
        );
    }
}

fn id(check: &str, entity: &str, name: &str) -> PersistenceId {
    PersistenceId::new(&format!("{check}{entity}"), name)
}

/// Drains a current stream.
async fn drain(check: &str, mut stream: EventStream) -> Vec<EventEnvelope> {
    let mut out = Vec::new();
    while let Some(event) = tokio::time::timeout(LIVE, stream.next())
        .await
        .unwrap_or_else(|_| {
            panic!("conformance check `{check}` failed: a current stream did not end")
        })
    {
        out.push(ok(check, "next event", event));
    }
    out
}

/// The (id, sequence) of each event.
fn keys(events: &[EventEnvelope]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| (e.persistence_id.0.clone(), e.sequence_id.0))
        .collect()
}

#[track_caller]
fn ascending(check: &str, events: &[EventEnvelope]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].offset < pair[1].offset,
            "conformance check `{check}` failed: offsets not ascending: {} then {}",
            pair[0].offset,
            pair[1].offset
        );
    }
}

async fn write<S: EventQueries>(store: &S, check: &str, pid: &PersistenceId, seq: i64) {
    let payload = format!("{}#{seq}", pid.0);
    ok(
        check,
        "write",
        store
            .write_event(pid, SequenceId(seq), "E", payload.as_bytes())
            .await,
    );
}

// ---------------------------------------------------------------------------
// Checks.
// ---------------------------------------------------------------------------

/// All events come in write order, with ascending offsets; by entity type
/// only that type's; payloads, types and sequences as written; the write
/// time is the store's.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_all_events_in_write_order<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_all_events_in_write_order";
    let before = SystemTime::now() - Duration::from_secs(1);
    let (a, b, c) = (id(C, "A", "1"), id(C, "A", "2"), id(C, "B", "1"));
    let order = [(&a, 1), (&b, 1), (&a, 2), (&c, 1), (&b, 2), (&a, 3)];
    for (pid, seq) in order {
        write(&*store, C, pid, seq).await;
    }
    let after = SystemTime::now() + Duration::from_secs(1);
    let journal = ReadJournal::from_dyn(store.clone()).page_size(2);
    let all: Vec<EventEnvelope> = drain(C, journal.current_all_events(Offset::START))
        .await
        .into_iter()
        .filter(|e| e.persistence_id.0.starts_with(C))
        .collect();
    same(
        C,
        "all events, in write order",
        keys(&all),
        order.iter().map(|(p, s)| (p.0.clone(), *s)).collect(),
    );
    ascending(C, &all);
    for e in &all {
        same(C, "event type", e.event_type.as_str(), "E");
        same(
            C,
            "payload",
            e.payload.clone(),
            format!("{}#{}", e.persistence_id.0, e.sequence_id.0).into_bytes(),
        );
        assert!(
            e.timestamp >= before && e.timestamp <= after,
            "conformance check `{C}` failed: the write time {:?} is not the time of the write",
            e.timestamp
        );
        same(
            C,
            "tags of an untagged event",
            e.tags.clone(),
            Vec::<String>::new(),
        );
        same(
            C,
            "metadata of an event without",
            e.metadata.clone(),
            Metadata::new(),
        );
    }
    let of_a = drain(
        C,
        journal.current_events_by_entity_type(&format!("{C}A"), Offset::START),
    )
    .await;
    same(
        C,
        "events of entity type A",
        keys(&of_a),
        vec![
            (a.0.clone(), 1),
            (b.0.clone(), 1),
            (a.0.clone(), 2),
            (b.0.clone(), 2),
            (a.0.clone(), 3),
        ],
    );
}

/// Reading part of the events, then resuming after the last offset read,
/// delivers each event exactly once; resuming after the last event
/// delivers nothing.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_resuming_delivers_each_event_once<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_resuming_delivers_each_event_once";
    let pids: Vec<PersistenceId> = (0..4).map(|i| id(C, "", &i.to_string())).collect();
    for seq in 1..=5 {
        for pid in &pids {
            write(&*store, C, pid, seq).await;
        }
    }
    let journal = ReadJournal::from_dyn(store.clone()).page_size(3);
    let entity = C.to_owned();
    let mut seen = Vec::new();
    let mut offset = Offset::START;
    // Seven events at a time, resuming each time from the offset stored.
    loop {
        let mut stream = journal.current_events_by_entity_type(&entity, offset);
        let mut taken = 0;
        while taken < 7 {
            match stream.next().await {
                Some(event) => {
                    let event = ok(C, "next", event);
                    offset = event.offset;
                    seen.push(event);
                    taken += 1;
                }
                None => break,
            }
        }
        if taken == 0 {
            break;
        }
        // The text form resumes as well as the value.
        offset = offset.to_string().parse().unwrap();
    }
    same(C, "events read over resumed streams", seen.len(), 20);
    let unique: BTreeSet<(String, i64)> = keys(&seen).into_iter().collect();
    same(C, "distinct events", unique.len(), 20);
    ascending(C, &seen);
    let rest = drain(C, journal.current_events_by_entity_type(&entity, offset)).await;
    same(C, "events after the last offset", rest.len(), 0);
}

/// A current stream ends at what was committed when it started: events
/// written while it runs are not delivered.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_current_streams_end<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_current_streams_end";
    let pid = id(C, "", "1");
    for seq in 1..=3 {
        write(&*store, C, &pid, seq).await;
    }
    let journal = ReadJournal::from_dyn(store.clone()).page_size(1);
    let mut stream = journal.current_events_by_entity_type(C, Offset::START);
    let first = ok(C, "first", stream.next().await.expect("a first event"));
    same(C, "first event", first.sequence_id, SequenceId(1));
    for seq in 4..=5 {
        write(&*store, C, &pid, seq).await;
    }
    let mut rest = Vec::new();
    while let Some(e) = tokio::time::timeout(LIVE, stream.next())
        .await
        .expect("the stream ends")
    {
        rest.push(ok(C, "next", e).sequence_id.0);
    }
    same(C, "the rest of the current stream", rest, vec![2, 3]);
    let mut by_id = journal.current_events_by_persistence_id(&pid, SequenceId(1), SequenceId::LAST);
    let mut seqs = Vec::new();
    while let Some(e) = by_id.next().await {
        seqs.push(ok(C, "next", e).sequence_id.0);
        if seqs.len() == 1 {
            write(&*store, C, &pid, 6).await;
        }
    }
    same(C, "a current stream by id", seqs, vec![1, 2, 3, 4, 5]);
}

/// A live stream delivers events written after it started (and after it
/// caught up), by tag, by id and across all.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_live_streams_deliver_new_events<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_live_streams_deliver_new_events";
    let pid = id(C, "", "1");
    write(&*store, C, &pid, 1).await;
    let journal = ReadJournal::from_dyn(store.clone());
    let mut all = journal.events_by_entity_type(C, Offset::START);
    let mut by_id = journal.events_by_persistence_id(&pid, SequenceId(1), SequenceId(3));
    let mut by_tag = journal.events_by_tag(&format!("{C}-tag"), Offset::START);
    let e = ok(
        C,
        "first",
        tokio::time::timeout(LIVE, all.next())
            .await
            .unwrap()
            .unwrap(),
    );
    same(C, "first", e.sequence_id, SequenceId(1));
    let e = ok(C, "first by id", by_id.next().await.unwrap());
    same(C, "first by id", e.sequence_id, SequenceId(1));

    let writer = {
        let store = store.clone();
        let pid = pid.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let tags = [format!("{C}-tag")];
            store
                .write_events(&pid, &[NewEvent::new(SequenceId(2), "E", b"2").tags(&tags)])
                .await
        })
    };
    for (what, stream) in [("all", &mut all), ("tag", &mut by_tag)] {
        let e = tokio::time::timeout(LIVE, stream.next())
            .await
            .unwrap_or_else(|_| panic!("conformance check `{C}` failed: the live {what} stream delivered nothing new within {LIVE:?}"));
        same(C, what, ok(C, what, e.unwrap()).sequence_id, SequenceId(2));
    }
    let e = tokio::time::timeout(LIVE, by_id.next())
        .await
        .unwrap_or_else(|_| {
            panic!("conformance check `{C}` failed: the live stream by id delivered nothing new")
        });
    same(
        C,
        "by id",
        ok(C, "by id", e.unwrap()).sequence_id,
        SequenceId(2),
    );
    ok(C, "write 2", writer.await.unwrap());
    write(&*store, C, &pid, 3).await;
    write(&*store, C, &pid, 4).await;
    let e = tokio::time::timeout(LIVE, by_id.next()).await.unwrap();
    same(
        C,
        "by id, up to its end",
        ok(C, "3", e.unwrap()).sequence_id,
        SequenceId(3),
    );
    let end = tokio::time::timeout(LIVE, by_id.next()).await.unwrap();
    assert!(
        end.is_none(),
        "conformance check `{C}` failed: a live stream by id went past its `to`"
    );
}

/// Tags and metadata are stored with their events, in one write, and read
/// back; a query by tag yields only events carrying the tag.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_tags_and_metadata_round_trip<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_tags_and_metadata_round_trip";
    let pid = id(C, "", "1");
    let (red, blue) = (format!("{C}-red"), format!("{C}-blue"));
    let both = [red.clone(), blue.clone()];
    let only_red = [red.clone()];
    let meta = Metadata::new()
        .with_correlation_id("corr-1")
        .with_causation_id("cause-1")
        .with_header("tenant", "acme ü");
    ok(
        C,
        "write a tagged batch",
        store
            .write_events(
                &pid,
                &[
                    NewEvent::new(SequenceId(1), "E", b"1")
                        .tags(&both)
                        .metadata(&meta),
                    NewEvent::new(SequenceId(2), "E", b"2"),
                    NewEvent::new(SequenceId(3), "E", b"3").tags(&only_red),
                ],
            )
            .await,
    );
    let journal = ReadJournal::from_dyn(store.clone());
    let reds = drain(C, journal.current_events_by_tag(&red, Offset::START)).await;
    same(
        C,
        "events tagged red",
        keys(&reds),
        vec![(pid.0.clone(), 1), (pid.0.clone(), 3)],
    );
    let blues = drain(C, journal.current_events_by_tag(&blue, Offset::START)).await;
    same(
        C,
        "events tagged blue",
        keys(&blues),
        vec![(pid.0.clone(), 1)],
    );
    same(C, "tags read back", reds[0].tags.clone(), both.to_vec());
    same(C, "metadata read back", reds[0].metadata.clone(), meta);
    same(
        C,
        "a second tag's metadata",
        reds[1].metadata.clone(),
        Metadata::new(),
    );
    let none = drain(
        C,
        journal.current_events_by_tag(&format!("{C}-none"), Offset::START),
    )
    .await;
    same(C, "events of an unused tag", none.len(), 0);
    let by_id: Vec<EventEnvelope> = {
        let mut s = journal.current_events_by_persistence_id(&pid, SequenceId(1), SequenceId::LAST);
        let mut v = Vec::new();
        while let Some(e) = s.next().await {
            v.push(ok(C, "by id", e));
        }
        v
    };
    same(C, "tags by id", by_id[0].tags.clone(), both.to_vec());
    same(
        C,
        "metadata by id",
        by_id[0].metadata.clone(),
        reds[0].metadata.clone(),
    );
    // A refused batch stores no tag either.
    let refused = store
        .write_events(
            &pid,
            &[
                NewEvent::new(SequenceId(4), "E", b"4").tags(&only_red),
                NewEvent::new(SequenceId(3), "E", b"3"),
            ],
        )
        .await;
    assert!(
        matches!(refused, Err(PersistError::SequenceConflict { .. })),
        "conformance check `{C}` failed: a batch with a taken sequence: {refused:?}"
    );
    let reds = drain(C, journal.current_events_by_tag(&red, Offset::START)).await;
    same(C, "events tagged red after a refused batch", reds.len(), 2);
}

/// Deleted events leave every query, and their offsets are never reused:
/// events written after a delete have offsets above every earlier one.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_deleted_events_leave_and_offsets_stay_used<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_deleted_events_leave_and_offsets_stay_used";
    let pid = id(C, "", "1");
    let tag = [format!("{C}-t")];
    for seq in 1..=4 {
        ok(
            C,
            "write",
            store
                .write_events(
                    &pid,
                    &[NewEvent::new(SequenceId(seq), "E", b"x").tags(&tag)],
                )
                .await,
        );
    }
    let journal = ReadJournal::from_dyn(store.clone());
    let before = drain(C, journal.current_events_by_entity_type(C, Offset::START)).await;
    let highest = before.last().map(|e| e.offset).expect("events");
    ok(
        C,
        "delete to 4",
        store.delete_events_to(&pid, SequenceId(4)).await,
    );
    let after = drain(C, journal.current_events_by_entity_type(C, Offset::START)).await;
    same(C, "events after deleting them all", after.len(), 0);
    let tagged = drain(C, journal.current_events_by_tag(&tag[0], Offset::START)).await;
    same(C, "tagged events after deleting them", tagged.len(), 0);
    write(&*store, C, &pid, 5).await;
    let fresh = drain(C, journal.current_events_by_entity_type(C, Offset::START)).await;
    same(
        C,
        "events after writing on",
        keys(&fresh),
        vec![(pid.0.clone(), 5)],
    );
    assert!(
        fresh[0].offset > highest,
        "conformance check `{C}` failed: offset {} reused (the deleted events reached {highest})",
        fresh[0].offset
    );
}

/// Many writers at once, and a reader that resumes after every page from
/// the offset it last saw: once the writers are done and the reader caught
/// up, it read exactly the events committed, each once, each id in order.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_concurrent_writers_and_a_resuming_reader<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_concurrent_writers_and_a_resuming_reader";
    const WRITERS: usize = 8;
    const EACH: i64 = 40;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let pid = id(C, "", &w.to_string());
            for seq in 1..=EACH {
                write(&*store, C, &pid, seq).await;
                if seq % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let journal = ReadJournal::from_dyn(store.clone()).page_size(16);
    let mut offset = Offset::START;
    let mut read: Vec<EventEnvelope> = Vec::new();
    let mut done = false;
    while !done {
        done = writers.iter().all(|w| w.is_finished());
        // A fresh stream per page: resuming is all the reader has.
        let mut stream = journal.current_events_by_entity_type(C, offset);
        for _ in 0..16 {
            match stream.next().await {
                Some(e) => {
                    let e = ok(C, "next", e);
                    offset = e.offset;
                    read.push(e);
                }
                None => break,
            }
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    read.extend(drain(C, journal.current_events_by_entity_type(C, offset)).await);
    ascending(C, &read);
    same(C, "events read", read.len(), WRITERS * EACH as usize);
    let mut per_id: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (pid, seq) in keys(&read) {
        per_id.entry(pid).or_default().push(seq);
    }
    for (pid, seqs) in per_id {
        same(
            C,
            &format!("the order of {pid}"),
            seqs,
            (1..=EACH).collect(),
        );
    }
}

/// Events of one id: from and to bound them, deleted ones are left out,
/// and the envelope agrees with the all-events query.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_events_of_one_id<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_events_of_one_id";
    let (pid, other) = (id(C, "", "1"), id(C, "", "2"));
    for seq in 1..=10 {
        write(&*store, C, &pid, seq).await;
        write(&*store, C, &other, seq).await;
    }
    let journal = ReadJournal::from_dyn(store.clone()).page_size(3);
    let seqs = |from: i64, to: i64| {
        let journal = journal.clone();
        let pid = pid.clone();
        async move {
            let mut s =
                journal.current_events_by_persistence_id(&pid, SequenceId(from), SequenceId(to));
            let mut v = Vec::new();
            while let Some(e) = s.next().await {
                let e = ok(C, "by id", e);
                same(C, "the id", &e.persistence_id, &pid);
                v.push(e.sequence_id.0);
            }
            v
        }
    };
    same(
        C,
        "all of them",
        seqs(1, i64::MAX - 1).await,
        (1..=10).collect(),
    );
    same(C, "from 4 to 6", seqs(4, 6).await, vec![4, 5, 6]);
    same(C, "from 0", seqs(0, 2).await, vec![1, 2]);
    same(C, "past the end", seqs(11, 20).await, Vec::<i64>::new());
    ok(
        C,
        "delete to 3",
        store.delete_events_to(&pid, SequenceId(3)).await,
    );
    same(C, "after deleting to 3", seqs(1, 5).await, vec![4, 5]);
}

/// Persistence ids with a journal, in byte order, paged, optionally of one
/// entity type.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_persistence_ids<S>(store: Arc<S>)
where
    S: EventQueries,
{
    const C: &str = "query_persistence_ids";
    let (x, y) = (format!("{C}X"), format!("{C}Y"));
    let mut expected_x = Vec::new();
    for n in ["b", "a", "c", "ü", "A", "a:1"] {
        let pid = PersistenceId::new(&x, n);
        write(&*store, C, &pid, 1).await;
        expected_x.push(pid);
    }
    write(&*store, C, &PersistenceId::new(&y, "z"), 1).await;
    expected_x.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let journal = ReadJournal::from_dyn(store.clone()).page_size(2);
    let ids = ok(
        C,
        "ids of X",
        journal.current_persistence_ids(Some(&x)).collect().await,
    );
    same(C, "ids of entity type X, in byte order", ids, expected_x);
    let all = ok(
        C,
        "all ids",
        journal.current_persistence_ids(None).collect().await,
    );
    let ours: Vec<&PersistenceId> = all.iter().filter(|p| p.0.starts_with(C)).collect();
    same(C, "ids of this check", ours.len(), 7);
}

/// Durable-state changes: the latest state of each id saved after the
/// offset, in save order, by entity type; a deleted state leaves; a live
/// stream delivers new saves.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn query_state_changes<S>(store: Arc<S>)
where
    S: EventQueries + StateStorage,
{
    const C: &str = "query_state_changes";
    let (p, q, r) = (id(C, "P", "1"), id(C, "P", "2"), id(C, "R", "1"));
    for (pid, payload) in [(&p, "p1"), (&q, "q1"), (&r, "r1"), (&p, "p2")] {
        ok(C, "save", store.save_state(pid, payload.as_bytes()).await);
    }
    let journal = ReadJournal::from_dyn(store.clone());
    let mut changes = Vec::new();
    let mut stream = journal.current_state_changes(Some(&format!("{C}P")), Offset::START);
    while let Some(change) = stream.next().await {
        changes.push(ok(C, "change", change));
    }
    let seen: Vec<(String, Vec<u8>)> = changes
        .iter()
        .map(|c| (c.persistence_id.0.clone(), c.payload.clone()))
        .collect();
    same(
        C,
        "the latest state of each id of type P, in save order",
        seen,
        vec![(q.0.clone(), b"q1".to_vec()), (p.0.clone(), b"p2".to_vec())],
    );
    let resume = changes[0].offset;
    ok(C, "delete q", store.delete_state(&q).await);
    let mut after = Vec::new();
    let mut stream = journal.current_state_changes(Some(&format!("{C}P")), resume);
    while let Some(change) = stream.next().await {
        after.push(ok(C, "change", change).persistence_id);
    }
    same(
        C,
        "changes after the first, q deleted",
        after,
        vec![p.clone()],
    );

    let mut live = journal.state_changes(Some(&format!("{C}R")), Offset::START);
    let first = ok(
        C,
        "live",
        tokio::time::timeout(LIVE, live.next())
            .await
            .unwrap()
            .unwrap(),
    );
    same(C, "live first", first.payload, b"r1".to_vec());
    let saver = {
        let store = store.clone();
        let r = r.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            store.save_state(&r, b"r2").await
        })
    };
    let next = tokio::time::timeout(LIVE, live.next())
        .await
        .unwrap_or_else(|_| {
            panic!("conformance check `{C}` failed: a live changes stream delivered nothing new")
        });
    same(
        C,
        "live next",
        ok(C, "live", next.unwrap()).payload,
        b"r2".to_vec(),
    );
    ok(C, "save r2", saver.await.unwrap());
}
