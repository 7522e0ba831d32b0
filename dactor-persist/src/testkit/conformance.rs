//! The storage conformance suite: the contract of [`crate::storage`], checked
//! against any backend.
//!
//! Every check is a public `async fn` taking the store under test as an
//! `Arc`; it panics with a message naming the check and what differed. The
//! journal checks need a [`JournalStorage`], the snapshot checks a
//! [`SnapshotStorage`], the state checks a [`StateStorage`]. Each check uses
//! persistence ids of its own, so checks may share a store, but a fresh store
//! per check isolates failures best.
//!
//! The easy way to run them is one macro call in a backend's test file, which
//! writes one `#[test]` per check, so a failure names the check that failed:
//!
//! ```
//! use std::sync::Arc;
//! use dactor_persist::InMemoryStorage;
//!
//! // One #[test] per check of the journal, snapshot and state suites. The
//! // factory is called once per check; it may return the store as an `Arc`,
//! // or `(Arc<store>, guard)` to keep a temporary directory or a database
//! // schema alive until the check ends.
//! dactor_persist::storage_conformance_tests!(|| async { Arc::new(InMemoryStorage::new()) });
//! # fn main() {}
//! ```
//!
//! A backend with only some of the traits uses [`journal_conformance_tests!`],
//! [`snapshot_conformance_tests!`] or [`state_conformance_tests!`]. To run the
//! whole suite in one test instead, call [`run_all`] (or [`run_journal`],
//! [`run_snapshots`], [`run_state`]).
//!
//! The generated tests run on a two-worker tokio runtime that this crate
//! builds, so the test crate needs no tokio of its own.
//!
//! [`journal_conformance_tests!`]: crate::journal_conformance_tests
//! [`snapshot_conformance_tests!`]: crate::snapshot_conformance_tests
//! [`state_conformance_tests!`]: crate::state_conformance_tests

// Test support: a failed expectation must panic, with a message naming the check.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{
    JournalEntry, JournalStorage, PersistError, PersistenceId, SequenceId, SnapshotStorage,
    StateStorage,
};

/// What a conformance factory returns: the store under test, and whatever must
/// live as long as it (a temporary directory, a database schema), dropped
/// after the check, store first.
///
/// Implemented for `Arc<S>` (nothing to keep) and `(Arc<S>, G)` (keep `G`).
pub trait Fixture: Send + 'static {
    /// The store under test.
    type Store: ?Sized + Send + Sync + 'static;

    /// A handle to the store.
    fn under_test(&self) -> Arc<Self::Store>;
}

impl<S: ?Sized + Send + Sync + 'static> Fixture for Arc<S> {
    type Store = S;

    fn under_test(&self) -> Arc<S> {
        self.clone()
    }
}

impl<S: ?Sized + Send + Sync + 'static, G: Send + 'static> Fixture for (Arc<S>, G) {
    type Store = S;

    fn under_test(&self) -> Arc<S> {
        self.0.clone()
    }
}

/// Runs `future` to completion on a new two-worker tokio runtime. Used by the
/// generated tests; handy for writing more of them.
///
/// # Panics
///
/// When the runtime cannot be built, or when `future` panics.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("testkit: cannot build a tokio runtime");
    runtime.block_on(future)
}

/// Writes one `#[test]` per check of every suite (journal, snapshots, state)
/// for the store that `$factory` makes: `$factory` is called, and awaited, once
/// per check, and returns a [`Fixture`](crate::testkit::Fixture).
///
/// See the [module docs](crate::testkit::conformance) for an example.
#[macro_export]
macro_rules! storage_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::journal_conformance_tests!($factory);
        $crate::snapshot_conformance_tests!($factory);
        $crate::state_conformance_tests!($factory);
    };
}

/// Writes one `#[test]` per journal check for the store that `$factory`
/// makes. See [`storage_conformance_tests!`](crate::storage_conformance_tests).
#[macro_export]
macro_rules! journal_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::__journal_checks!([$crate::__conformance_tests] [$factory;]);
    };
}

/// Writes one `#[test]` per snapshot check for the store that `$factory`
/// makes. See [`storage_conformance_tests!`](crate::storage_conformance_tests).
#[macro_export]
macro_rules! snapshot_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::__snapshot_checks!([$crate::__conformance_tests] [$factory;]);
    };
}

/// Writes one `#[test]` per state check for the store that `$factory` makes.
/// See [`storage_conformance_tests!`](crate::storage_conformance_tests).
#[macro_export]
macro_rules! state_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::__state_checks!([$crate::__conformance_tests] [$factory;]);
    };
}

/// The journal checks, listed once: hands their names to the macro in the
/// first brackets, after the tokens in the second.
#[doc(hidden)]
#[macro_export]
macro_rules! __journal_checks {
    ([$($then:tt)*] [$($prefix:tt)*]) => {
        $($then)*! {
            $($prefix)*
            journal_reads_in_order_within_bounds,
            journal_reads_pages_in_order,
            journal_hands_out_events_one_by_one,
            journal_unknown_id_is_empty,
            journal_highest_never_goes_down,
            journal_refuses_a_duplicate_without_overwriting,
            journal_conflicting_batch_stores_nothing,
            journal_refuses_deleted_sequences,
            journal_refuses_sequences_below_one,
            journal_sequence_range,
            journal_reports_its_bounds,
            journal_empty_batch_stores_nothing,
            journal_payload_extremes,
            journal_tricky_ids_never_mix,
            journal_parallel_writers_on_different_ids,
            journal_racing_writers_win_each_sequence_once,
            journal_reads_see_a_batch_whole_or_not_at_all,
        }
    };
}

/// The snapshot checks, listed once: hands their names to the macro in the
/// first brackets, after the tokens in the second.
#[doc(hidden)]
#[macro_export]
macro_rules! __snapshot_checks {
    ([$($then:tt)*] [$($prefix:tt)*]) => {
        $($then)*! {
            $($prefix)*
            snapshot_latest_is_the_highest_sequence,
            snapshot_at_the_same_sequence_replaces,
            snapshot_delete_before_removes_only_older,
            snapshot_sequence_range,
            snapshot_payload_extremes,
            snapshot_tricky_ids_never_mix,
        }
    };
}

/// The state checks, listed once: hands their names to the macro in the
/// first brackets, after the tokens in the second.
#[doc(hidden)]
#[macro_export]
macro_rules! __state_checks {
    ([$($then:tt)*] [$($prefix:tt)*]) => {
        $($then)*! {
            $($prefix)*
            state_save_replace_delete_and_unknown,
            state_payload_extremes,
            state_tricky_ids_never_mix,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::testkit::block_on(async {
                    let fixture = ($factory)().await;
                    let store = $crate::testkit::Fixture::under_test(&fixture);
                    $crate::testkit::conformance::$check(store).await;
                    drop(fixture);
                });
            }
        )+
    };
}

/// Runs every journal check, each on a fresh store from `make`.
///
/// # Panics
///
/// At the first check that fails, naming it.
pub async fn run_journal<F, Fut, X>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = X>,
    X: Fixture,
    X::Store: JournalStorage,
{
    macro_rules! each {
        ($($check:ident),+ $(,)?) => {$(
            let fixture = make().await;
            $check(fixture.under_test()).await;
            drop(fixture);
        )+};
    }
    crate::__journal_checks!([each] []);
}

/// Runs every snapshot check, each on a fresh store from `make`.
///
/// # Panics
///
/// At the first check that fails, naming it.
pub async fn run_snapshots<F, Fut, X>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = X>,
    X: Fixture,
    X::Store: SnapshotStorage,
{
    macro_rules! each {
        ($($check:ident),+ $(,)?) => {$(
            let fixture = make().await;
            $check(fixture.under_test()).await;
            drop(fixture);
        )+};
    }
    crate::__snapshot_checks!([each] []);
}

/// Runs every state check, each on a fresh store from `make`.
///
/// # Panics
///
/// At the first check that fails, naming it.
pub async fn run_state<F, Fut, X>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = X>,
    X: Fixture,
    X::Store: StateStorage,
{
    macro_rules! each {
        ($($check:ident),+ $(,)?) => {$(
            let fixture = make().await;
            $check(fixture.under_test()).await;
            drop(fixture);
        )+};
    }
    crate::__state_checks!([each] []);
}

/// Runs the journal, snapshot and state suites, each check on a fresh store
/// from `make`.
///
/// # Panics
///
/// At the first check that fails, naming it.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use dactor_persist::{InMemoryStorage, testkit};
///
/// testkit::block_on(testkit::run_all(|| async { Arc::new(InMemoryStorage::new()) }));
/// ```
pub async fn run_all<F, Fut, X>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = X>,
    X: Fixture,
    X::Store: JournalStorage + SnapshotStorage + StateStorage,
{
    run_journal(&make).await;
    run_snapshots(&make).await;
    run_state(&make).await;
}

// ---------------------------------------------------------------------------
// Helpers. This is test code: a failed expectation panics with the check's name.
// ---------------------------------------------------------------------------

/// Unwraps `result`, or panics naming the check and the step.
#[track_caller]
fn ok<T>(check: &str, step: &str, result: Result<T, PersistError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("conformance check `{check}` failed: {step}: unexpected error: {err}"),
    }
}

/// Panics with the check's name unless `result` is the conflict at `seq` of `pid`.
#[track_caller]
fn expect_conflict(
    check: &str,
    step: &str,
    result: Result<(), PersistError>,
    pid: &PersistenceId,
    seq: i64,
) {
    match result {
        Err(PersistError::SequenceConflict {
            persistence_id,
            sequence_id,
        }) if persistence_id == *pid && sequence_id == SequenceId(seq) => {}
        other => panic!(
            "conformance check `{check}` failed: {step}: expected \
             SequenceConflict {{ persistence_id: {pid:?}, sequence_id: SequenceId({seq}) }}, got {other:?}"
        ),
    }
}

/// Panics with the check's name unless `actual == expected`.
#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(check: &str, what: &str, actual: T, expected: T) {
    if actual != expected {
        panic!(
            "conformance check `{check}` failed: {what}:\n  expected {expected:?}\n  got      {actual:?}"
        );
    }
}

/// Compares bytes without printing megabytes of them.
#[track_caller]
fn same_bytes(check: &str, what: &str, actual: &[u8], expected: &[u8]) {
    if actual == expected {
        return;
    }
    let at = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    panic!(
        "conformance check `{check}` failed: {what}: {} bytes read back, {} written, first \
         difference at byte {at}",
        actual.len(),
        expected.len()
    );
}

/// The sequences of `entries`.
fn seqs(entries: &[JournalEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.sequence_id.0).collect()
}

/// A persistence id private to one check.
fn id(check: &str, name: &str) -> PersistenceId {
    PersistenceId::new(check, name)
}

/// `len` bytes of a pattern that is not all one value, so that a truncated
/// or shifted payload shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) as u8) ^ seed ^ ((i >> 8) as u8))
        .collect()
}

const MIB: usize = 1024 * 1024;

/// Snapshots are stored at 1 to [`SequenceId::LAST`] and nowhere else: 0,
/// -1, `i64::MIN` and `i64::MAX` are refused with `InvalidInput` naming the
/// id, and nothing is stored; `i64::MAX - 1` is stored and loaded back.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn snapshot_sequence_range<S>(store: Arc<S>)
where
    S: SnapshotStorage + ?Sized,
{
    const C: &str = "snapshot_sequence_range";
    let pid = id(C, "1");
    for seq in [0, -1, i64::MIN, i64::MAX] {
        let result = store.save_snapshot(&pid, SequenceId(seq), b"s").await;
        assert!(
            matches!(&result, Err(PersistError::InvalidInput { persistence_id, .. }) if *persistence_id == pid),
            "conformance check `{C}` failed: a snapshot at {seq}: expected InvalidInput naming {pid:?}, got {result:?}"
        );
    }
    let loaded = ok(C, "load", store.load_latest_snapshot(&pid).await);
    same(
        C,
        "snapshots after the refused saves",
        loaded.map(|s| s.sequence_id),
        None,
    );
    ok(
        C,
        "save at i64::MAX - 1",
        store.save_snapshot(&pid, SequenceId::LAST, b"last").await,
    );
    let loaded = ok(C, "load", store.load_latest_snapshot(&pid).await);
    same(
        C,
        "the snapshot at i64::MAX - 1",
        loaded.map(|s| (s.sequence_id, s.payload)),
        Some((SequenceId::LAST, b"last".to_vec())),
    );
}

/// Persistence ids a careless backend would mix up or mangle: SQL and LIKE
/// metacharacters, escapes, unicode, whitespace, 4 KiB of text, and ids that
/// differ only in case or by a suffix.
pub fn tricky_ids() -> Vec<PersistenceId> {
    let mut ids: Vec<String> = [
        "plain",
        "Plain",
        "PLAIN",
        "plain ",
        " plain",
        "plain2",
        "plain_",
        "plai_",
        "plain%",
        "plai%",
        "%",
        "_",
        "*",
        "quote'd",
        "''",
        "double\"quoted\"",
        "semi;colon",
        "'; DROP TABLE journal; --",
        "back\\slash",
        "back\\\\slash",
        "back\\",
        "ünïcødé",
        "UNÏCØDÉ",
        "日本語:アクター",
        "crab 🦀",
        "tab\tand\nnewline",
        "Counter:1",
        "Counter:10",
        "Counter:1:0",
        "",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let long = "x".repeat(4096);
    ids.push(format!("{}y", &long[1..]));
    ids.push(format!("{long}z"));
    ids.push(long);
    ids.into_iter().map(PersistenceId).collect()
}

// ---------------------------------------------------------------------------
// Journal checks.
// ---------------------------------------------------------------------------

/// Events read back in sequence order (whatever the write order), with their
/// type and payload, from `from` inclusive; `from` = 0 or below reads all,
/// `from` past the end reads nothing.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_reads_in_order_within_bounds<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_reads_in_order_within_bounds";
    let pid = id(C, "1");
    for seq in [3, 1, 5, 2, 4] {
        let event_type = format!("Type{seq}");
        let step = format!("write at {seq}");
        ok(
            C,
            &step,
            store
                .write_event(&pid, SequenceId(seq), &event_type, &[seq as u8; 3])
                .await,
        );
    }
    let all = ok(
        C,
        "read from 1",
        store.read_events(&pid, SequenceId(1)).await,
    );
    same(C, "sequences read from 1", seqs(&all), vec![1, 2, 3, 4, 5]);
    for entry in &all {
        let seq = entry.sequence_id.0;
        same(
            C,
            "event type",
            entry.event_type.as_str(),
            format!("Type{seq}").as_str(),
        );
        same_bytes(C, "payload", &entry.payload, &[seq as u8; 3]);
    }
    for (from, expected) in [
        (0, vec![1, 2, 3, 4, 5]),
        (-7, vec![1, 2, 3, 4, 5]),
        (3, vec![3, 4, 5]),
        (5, vec![5]),
        (6, vec![]),
        (1_000_000, vec![]),
        (i64::MAX, vec![]),
    ] {
        let read = ok(
            C,
            &format!("read from {from}"),
            store.read_events(&pid, SequenceId(from)).await,
        );
        same(
            C,
            &format!("sequences read from {from}"),
            seqs(&read),
            expected,
        );
    }
}

/// `read_events_page` returns ascending pages of at most `max` events (the
/// prefix of what `read_events` returns), and an empty page at the end.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_reads_pages_in_order<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_reads_pages_in_order";
    let pid = id(C, "1");
    let payloads: Vec<Vec<u8>> = (1..=10).map(|i| vec![i as u8]).collect();
    let entries: Vec<(SequenceId, &str, &[u8])> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (SequenceId(i as i64 + 1), "E", p.as_slice()))
        .collect();
    ok(
        C,
        "write 10 events",
        store.write_event_batch(&pid, &entries).await,
    );

    let mut next = SequenceId(1);
    let mut seen = Vec::new();
    loop {
        let page = ok(
            C,
            &format!("page from {}", next.0),
            store.read_events_page(&pid, next, 3).await,
        );
        let Some(last) = page.last() else { break };
        assert!(
            page.len() <= 10,
            "conformance check `{C}` failed: a page longer than the journal"
        );
        next = last.sequence_id.next();
        seen.extend(seqs(&page));
        assert!(
            seen.len() <= 10,
            "conformance check `{C}` failed: pages repeat events: {seen:?}"
        );
    }
    same(C, "sequences over all pages", seen, (1..=10).collect());
    let first = ok(
        C,
        "page of 4 from 0",
        store.read_events_page(&pid, SequenceId(0), 4).await,
    );
    let whole = ok(C, "read all", store.read_events(&pid, SequenceId(0)).await);
    same(
        C,
        "a page is a prefix of read_events",
        seqs(&first),
        seqs(&whole)[..first.len()].to_vec(),
    );
    let past = ok(
        C,
        "page past the end",
        store.read_events_page(&pid, SequenceId(11), 5).await,
    );
    same(C, "page past the end", seqs(&past), vec![]);
}

/// `read_events_each` hands out the events `read_events` returns, in order,
/// whole (type and payload), about `max` of them from where it was asked,
/// and counts them; it stops when told to, returns the error `each`
/// returns, and hands out nothing past the end.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_hands_out_events_one_by_one<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_hands_out_events_one_by_one";
    let pid = id(C, "1");
    let payloads: Vec<Vec<u8>> = (1..=10).map(|i| vec![i as u8; i]).collect();
    let entries: Vec<(SequenceId, &str, &[u8])> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                SequenceId(i as i64 + 1),
                if i % 2 == 0 { "Even" } else { "Odd" },
                p.as_slice(),
            )
        })
        .collect();
    ok(
        C,
        "write 10 events",
        store.write_event_batch(&pid, &entries).await,
    );
    let whole = ok(C, "read all", store.read_events(&pid, SequenceId(1)).await);

    // Everything from 1, in as many reads as the store needs.
    let mut seen: Vec<JournalEntry> = Vec::new();
    loop {
        let from = seen.last().map_or(SequenceId(1), |e| e.sequence_id.next());
        let mut read = Vec::new();
        let handed = ok(
            C,
            &format!("read from {}", from.0),
            store
                .read_events_each(&pid, from, 100, &mut |e| {
                    read.push(e.clone());
                    Ok(ControlFlow::Continue(()))
                })
                .await,
        );
        same(C, "the count it answers", handed, read.len());
        if read.is_empty() {
            break;
        }
        seen.extend(read);
        assert!(
            seen.len() <= 10,
            "conformance check `{C}` failed: reads repeat events: {:?}",
            seqs(&seen)
        );
    }
    same(C, "the events handed out", seen, whole.clone());

    // From the middle: the events from 4 on, in order (a store may hand
    // out more than asked, as `read_events_page` may, or fewer, but some).
    let mut read = Vec::new();
    let handed = ok(
        C,
        "read 3 from 4",
        store
            .read_events_each(&pid, SequenceId(4), 3, &mut |e| {
                read.push(e.sequence_id.0);
                Ok(ControlFlow::Continue(()))
            })
            .await,
    );
    assert!(
        handed >= 1 && handed == read.len() && read == (4..4 + handed as i64).collect::<Vec<_>>(),
        "conformance check `{C}` failed: a read of 3 from 4 handed out {read:?} and counted {handed}"
    );

    // Told to stop after the second.
    let mut read = Vec::new();
    let handed = ok(
        C,
        "read until told to stop",
        store
            .read_events_each(&pid, SequenceId(1), 100, &mut |e| {
                read.push(e.sequence_id.0);
                Ok(if read.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })
            .await,
    );
    same(
        C,
        "a read told to stop after two",
        (handed, read),
        (2, vec![1, 2]),
    );

    // An error from `each` is the read's error.
    let mut calls = 0;
    let failed = store
        .read_events_each(&pid, SequenceId(1), 100, &mut |_| {
            calls += 1;
            Err(PersistError::SerializationFailed("stop here".into()))
        })
        .await;
    assert!(
        matches!(&failed, Err(PersistError::SerializationFailed(m)) if m == "stop here")
            && calls == 1,
        "conformance check `{C}` failed: an error from `each` after {calls} call(s) gave {failed:?}"
    );

    let mut past = 0;
    let handed = ok(
        C,
        "read past the end",
        store
            .read_events_each(&pid, SequenceId(11), 5, &mut |_| {
                past += 1;
                Ok(ControlFlow::Continue(()))
            })
            .await,
    );
    same(C, "a read past the end", (handed, past), (0, 0));
}

/// An id nothing was written to reads no events, no highest sequence, and
/// deleting its events is harmless.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_unknown_id_is_empty<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_unknown_id_is_empty";
    let pid = id(C, "never-written");
    let other = id(C, "written");
    ok(
        C,
        "write another id",
        store.write_event(&other, SequenceId(1), "E", b"x").await,
    );
    same(
        C,
        "events of an unknown id",
        seqs(&ok(C, "read", store.read_events(&pid, SequenceId(0)).await)),
        vec![],
    );
    same(
        C,
        "highest of an unknown id",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        None,
    );
    ok(
        C,
        "delete unknown",
        store.delete_events_to(&pid, SequenceId(10)).await,
    );
    same(
        C,
        "highest of an unknown id after a delete",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        None,
    );
    same(
        C,
        "the other id is untouched",
        ok(C, "highest", store.read_highest_sequence(&other).await),
        Some(SequenceId(1)),
    );
}

/// The highest sequence is the highest ever written: unchanged after deleting
/// some events, all of them, or "up to" a sequence past the end.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_highest_never_goes_down<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_highest_never_goes_down";
    let pid = id(C, "1");
    for seq in 1..=5 {
        ok(
            C,
            "write",
            store
                .write_event(&pid, SequenceId(seq), "E", &[seq as u8])
                .await,
        );
    }
    let highest = |step: &'static str| {
        let store = store.clone();
        let pid = pid.clone();
        async move { ok(C, step, store.read_highest_sequence(&pid).await) }
    };
    same(
        C,
        "highest after 5 writes",
        highest("highest").await,
        Some(SequenceId(5)),
    );

    ok(
        C,
        "delete to 2",
        store.delete_events_to(&pid, SequenceId(2)).await,
    );
    same(
        C,
        "events after deleting to 2",
        seqs(&ok(C, "read", store.read_events(&pid, SequenceId(0)).await)),
        vec![3, 4, 5],
    );
    same(
        C,
        "highest after deleting to 2",
        highest("highest").await,
        Some(SequenceId(5)),
    );

    ok(
        C,
        "delete to 5",
        store.delete_events_to(&pid, SequenceId(5)).await,
    );
    same(
        C,
        "events after deleting all",
        seqs(&ok(C, "read", store.read_events(&pid, SequenceId(0)).await)),
        vec![],
    );
    same(
        C,
        "highest after deleting all",
        highest("highest").await,
        Some(SequenceId(5)),
    );

    ok(
        C,
        "delete to 100",
        store.delete_events_to(&pid, SequenceId(100)).await,
    );
    same(
        C,
        "highest after deleting past the end",
        highest("highest").await,
        Some(SequenceId(5)),
    );
    ok(
        C,
        "write 6",
        store.write_event(&pid, SequenceId(6), "E", b"6").await,
    );
    same(
        C,
        "highest after writing 6",
        highest("highest").await,
        Some(SequenceId(6)),
    );
}

/// A second write at a taken (id, sequence) is the conflict naming both, and
/// the first event is kept as it was, type and payload.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_refuses_a_duplicate_without_overwriting<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_refuses_a_duplicate_without_overwriting";
    let pid = id(C, "1");
    ok(
        C,
        "first write",
        store
            .write_event(&pid, SequenceId(1), "First", b"one")
            .await,
    );
    expect_conflict(
        C,
        "second write at 1",
        store
            .write_event(&pid, SequenceId(1), "Second", b"two")
            .await,
        &pid,
        1,
    );
    expect_conflict(
        C,
        "batch rewriting 1",
        store
            .write_event_batch(&pid, &[(SequenceId(1), "Second", b"two".as_slice())])
            .await,
        &pid,
        1,
    );
    let events = ok(C, "read", store.read_events(&pid, SequenceId(1)).await);
    same(C, "events after the refused writes", seqs(&events), vec![1]);
    same(C, "kept event type", events[0].event_type.as_str(), "First");
    same_bytes(C, "kept payload", &events[0].payload, b"one");
    same(
        C,
        "highest",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        Some(SequenceId(1)),
    );
    // Another id may use the same sequence.
    ok(
        C,
        "same sequence, other id",
        store
            .write_event(&id(C, "2"), SequenceId(1), "E", b"x")
            .await,
    );
}

/// A batch of five whose third entry is taken stores none of them; a batch
/// naming one sequence twice stores none either.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_conflicting_batch_stores_nothing<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_conflicting_batch_stores_nothing";
    let pid = id(C, "1");
    ok(
        C,
        "write 3",
        store
            .write_event(&pid, SequenceId(3), "Taken", b"kept")
            .await,
    );
    let batch: Vec<(SequenceId, &str, &[u8])> = (1..=5)
        .map(|s| (SequenceId(s), "New", b"new".as_slice()))
        .collect();
    expect_conflict(
        C,
        "batch 1..=5 over a taken 3",
        store.write_event_batch(&pid, &batch).await,
        &pid,
        3,
    );
    let events = ok(C, "read", store.read_events(&pid, SequenceId(0)).await);
    same(C, "events after the refused batch", seqs(&events), vec![3]);
    same(C, "kept event type", events[0].event_type.as_str(), "Taken");
    same_bytes(C, "kept payload", &events[0].payload, b"kept");
    same(
        C,
        "highest after the refused batch",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        Some(SequenceId(3)),
    );

    let twice = id(C, "twice");
    let batch: Vec<(SequenceId, &str, &[u8])> = vec![
        (SequenceId(1), "A", b"a"),
        (SequenceId(2), "B", b"b"),
        (SequenceId(1), "C", b"c"),
    ];
    expect_conflict(
        C,
        "a batch naming 1 twice",
        store.write_event_batch(&twice, &batch).await,
        &twice,
        1,
    );
    same(
        C,
        "events after a batch naming 1 twice",
        seqs(&ok(
            C,
            "read",
            store.read_events(&twice, SequenceId(0)).await,
        )),
        vec![],
    );
    same(
        C,
        "highest after a batch naming 1 twice",
        ok(C, "highest", store.read_highest_sequence(&twice).await),
        None,
    );
}

/// Deleted sequences are used up: writing at one is a conflict. Sequences
/// above the highest stay free, even after deleting "up to" past the end.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_refuses_deleted_sequences<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_refuses_deleted_sequences";
    let pid = id(C, "1");
    for seq in 1..=3 {
        ok(
            C,
            "write",
            store
                .write_event(&pid, SequenceId(seq), "E", &[seq as u8])
                .await,
        );
    }
    ok(
        C,
        "delete to 2",
        store.delete_events_to(&pid, SequenceId(2)).await,
    );
    for seq in [1, 2, 3] {
        expect_conflict(
            C,
            &format!("rewrite {seq} after deleting to 2"),
            store
                .write_event(&pid, SequenceId(seq), "E", b"again")
                .await,
            &pid,
            seq,
        );
    }
    let batch: Vec<(SequenceId, &str, &[u8])> =
        vec![(SequenceId(4), "E", b"4"), (SequenceId(2), "E", b"2")];
    expect_conflict(
        C,
        "a batch reaching back to a deleted 2",
        store.write_event_batch(&pid, &batch).await,
        &pid,
        2,
    );
    same(
        C,
        "events after the refused writes",
        seqs(&ok(C, "read", store.read_events(&pid, SequenceId(0)).await)),
        vec![3],
    );
    ok(
        C,
        "write 4",
        store.write_event(&pid, SequenceId(4), "E", b"4").await,
    );
    ok(
        C,
        "delete to 100",
        store.delete_events_to(&pid, SequenceId(100)).await,
    );
    expect_conflict(
        C,
        "rewrite 4 after deleting to 100",
        store.write_event(&pid, SequenceId(4), "E", b"again").await,
        &pid,
        4,
    );
    ok(
        C,
        "write 5, never used, after deleting to 100",
        store.write_event(&pid, SequenceId(5), "E", b"5").await,
    );
    same(
        C,
        "events at the end",
        seqs(&ok(C, "read", store.read_events(&pid, SequenceId(0)).await)),
        vec![5],
    );
}

/// Sequences below 1 are invalid input, alone or in a batch, and nothing of
/// such a batch is stored.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_refuses_sequences_below_one<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_refuses_sequences_below_one";
    let pid = id(C, "1");
    for seq in [0, -1, i64::MIN] {
        let result = store.write_event(&pid, SequenceId(seq), "E", b"x").await;
        assert!(
            matches!(&result, Err(PersistError::InvalidInput { persistence_id, .. }) if *persistence_id == pid),
            "conformance check `{C}` failed: a write at {seq}: expected InvalidInput naming {pid:?}, got {result:?}"
        );
    }
    let batch: Vec<(SequenceId, &str, &[u8])> =
        vec![(SequenceId(1), "E", b"1"), (SequenceId(0), "E", b"0")];
    let result = store.write_event_batch(&pid, &batch).await;
    assert!(
        matches!(result, Err(PersistError::InvalidInput { .. })),
        "conformance check `{C}` failed: a batch holding 0: expected InvalidInput, got {result:?}"
    );
    same(
        C,
        "events after the refused writes",
        seqs(&ok(
            C,
            "read",
            store.read_events(&pid, SequenceId(i64::MIN)).await,
        )),
        vec![],
    );
    same(
        C,
        "highest after the refused writes",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        None,
    );
}

/// Events are stored at 1 to [`SequenceId::LAST`] (`i64::MAX - 1`) and
/// nowhere else: 0, -1, `i64::MIN` and `i64::MAX` (a sequence with no
/// successor) are refused with `InvalidInput` naming the id, alone or in a
/// batch (which then stores nothing); `i64::MAX - 1` is stored and read back.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_sequence_range<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_sequence_range";
    let pid = id(C, "1");
    for seq in [0, -1, i64::MIN, i64::MAX] {
        let result = store.write_event(&pid, SequenceId(seq), "E", b"x").await;
        assert!(
            matches!(&result, Err(PersistError::InvalidInput { persistence_id, .. }) if *persistence_id == pid),
            "conformance check `{C}` failed: a write at {seq}: expected InvalidInput naming {pid:?}, got {result:?}"
        );
        let batch: Vec<(SequenceId, &str, &[u8])> =
            vec![(SequenceId(5), "E", b"5"), (SequenceId(seq), "E", b"x")];
        let result = store.write_event_batch(&pid, &batch).await;
        assert!(
            matches!(result, Err(PersistError::InvalidInput { .. })),
            "conformance check `{C}` failed: a batch holding {seq}: expected InvalidInput, got {result:?}"
        );
    }
    same(
        C,
        "highest after the refused writes",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        None,
    );
    let last = SequenceId::LAST;
    ok(
        C,
        "write at i64::MAX - 1",
        store.write_event(&pid, last, "Last", b"last").await,
    );
    let read = ok(
        C,
        "read",
        store.read_events(&pid, SequenceId(i64::MIN)).await,
    );
    same(C, "events stored", seqs(&read), vec![last.0]);
    same(
        C,
        "highest after the last sequence",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        Some(last),
    );
    let page = ok(
        C,
        "page from the last",
        store.read_events_page(&pid, last, 10).await,
    );
    same(C, "page from the last", seqs(&page), vec![last.0]);
    let past = ok(
        C,
        "page from i64::MAX",
        store.read_events_page(&pid, SequenceId(i64::MAX), 10).await,
    );
    same(C, "page from i64::MAX", seqs(&past), vec![]);
    ok(
        C,
        "delete to i64::MAX",
        store.delete_events_to(&pid, SequenceId(i64::MAX)).await,
    );
    same(
        C,
        "highest after deleting everything",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        Some(last),
    );
}

/// `read_bounds` reports how far events were deleted and the highest ever
/// written: nothing for an unknown id, the highest after writes (in any
/// order), and both after deletes; a delete past the highest records only
/// the highest as deleted.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_reports_its_bounds<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_reports_its_bounds";
    let pid = id(C, "1");
    let bounds = |step: &'static str| {
        let store = store.clone();
        let pid = pid.clone();
        async move { ok(C, step, store.read_bounds(&pid).await) }
    };
    let expect = |deleted_to: i64, highest: i64| crate::JournalBounds {
        deleted_to: SequenceId(deleted_to),
        highest: SequenceId(highest),
    };
    same(
        C,
        "bounds of an unknown id",
        bounds("bounds").await,
        expect(0, 0),
    );
    for seq in [2, 1, 4, 3] {
        ok(
            C,
            "write",
            store.write_event(&pid, SequenceId(seq), "E", b"e").await,
        );
    }
    same(
        C,
        "bounds after 4 writes",
        bounds("bounds").await,
        expect(0, 4),
    );
    ok(
        C,
        "delete to 2",
        store.delete_events_to(&pid, SequenceId(2)).await,
    );
    same(
        C,
        "bounds after deleting to 2",
        bounds("bounds").await,
        expect(2, 4),
    );
    ok(
        C,
        "delete to 1",
        store.delete_events_to(&pid, SequenceId(1)).await,
    );
    same(
        C,
        "bounds after deleting less than before",
        bounds("bounds").await,
        expect(2, 4),
    );
    ok(
        C,
        "delete to 9",
        store.delete_events_to(&pid, SequenceId(9)).await,
    );
    same(
        C,
        "bounds after deleting past the end",
        bounds("bounds").await,
        expect(4, 4),
    );
    ok(
        C,
        "write 5",
        store.write_event(&pid, SequenceId(5), "E", b"e").await,
    );
    same(
        C,
        "bounds after writing on",
        bounds("bounds").await,
        expect(4, 5),
    );
    same(
        C,
        "highest agrees with the bounds",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        Some(SequenceId(5)),
    );
}

/// An empty batch succeeds and stores nothing.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_empty_batch_stores_nothing<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_empty_batch_stores_nothing";
    let pid = id(C, "1");
    ok(C, "empty batch", store.write_event_batch(&pid, &[]).await);
    same(
        C,
        "highest after an empty batch",
        ok(C, "highest", store.read_highest_sequence(&pid).await),
        None,
    );
    same(
        C,
        "events after an empty batch",
        seqs(&ok(C, "read", store.read_events(&pid, SequenceId(0)).await)),
        vec![],
    );
}

/// Empty payloads, a 1 MiB event and unicode event types are stored and read
/// back byte for byte.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_payload_extremes<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_payload_extremes";
    let pid = id(C, "1");
    let big = pattern(MIB, 7);
    let types = [
        "",
        "Überweisung 💸 送金",
        "Type with 'quotes'; and \\ slashes",
    ];
    ok(
        C,
        "empty payload",
        store.write_event(&pid, SequenceId(1), types[0], b"").await,
    );
    ok(
        C,
        "1 MiB payload",
        store.write_event(&pid, SequenceId(2), types[1], &big).await,
    );
    let batch: Vec<(SequenceId, &str, &[u8])> = vec![
        (SequenceId(3), types[2], b""),
        (SequenceId(4), types[1], big.as_slice()),
    ];
    ok(
        C,
        "batch of empty and 1 MiB",
        store.write_event_batch(&pid, &batch).await,
    );
    let events = ok(C, "read", store.read_events(&pid, SequenceId(1)).await);
    same(C, "sequences", seqs(&events), vec![1, 2, 3, 4]);
    let expected: [(&str, &[u8]); 4] = [
        (types[0], b""),
        (types[1], &big),
        (types[2], b""),
        (types[1], &big),
    ];
    for (entry, (event_type, payload)) in events.iter().zip(expected) {
        let at = entry.sequence_id.0;
        same(
            C,
            &format!("event type at {at}"),
            entry.event_type.as_str(),
            event_type,
        );
        same_bytes(C, &format!("payload at {at}"), &entry.payload, payload);
    }
}

/// Every tricky id ([`tricky_ids`]) keeps its own events: a different number
/// of events each, read back exactly, never another id's.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_tricky_ids_never_mix<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_tricky_ids_never_mix";
    let ids = tricky_ids();
    for (i, pid) in ids.iter().enumerate() {
        for seq in 1..=(i % 3 + 1) as i64 {
            let payload = format!("{i}:{seq}:{}", pid.0);
            ok(
                C,
                &format!("write id #{i}"),
                store
                    .write_event(pid, SequenceId(seq), "E", payload.as_bytes())
                    .await,
            );
        }
    }
    for (i, pid) in ids.iter().enumerate() {
        let count = (i % 3 + 1) as i64;
        let events = ok(
            C,
            &format!("read id #{i}"),
            store.read_events(pid, SequenceId(0)).await,
        );
        same(
            C,
            &format!("sequences of id #{i} {:?}", short(pid)),
            seqs(&events),
            (1..=count).collect(),
        );
        for entry in &events {
            let expected = format!("{i}:{}:{}", entry.sequence_id.0, pid.0);
            same_bytes(
                C,
                &format!(
                    "payload of id #{i} {:?} at {}",
                    short(pid),
                    entry.sequence_id.0
                ),
                &entry.payload,
                expected.as_bytes(),
            );
        }
        same(
            C,
            &format!("highest of id #{i} {:?}", short(pid)),
            ok(C, "highest", store.read_highest_sequence(pid).await),
            Some(SequenceId(count)),
        );
    }
}

/// An id, cut short for messages.
fn short(pid: &PersistenceId) -> String {
    pid.0.chars().take(24).collect()
}

/// Many tasks writing different ids at once all succeed, and every id holds
/// exactly its own events.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_parallel_writers_on_different_ids<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_parallel_writers_on_different_ids";
    const TASKS: usize = 16;
    const EVENTS: i64 = 40;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let pid = id(C, &format!("task-{t}"));
                for seq in 1..=EVENTS {
                    let payload = format!("{t}/{seq}");
                    ok(
                        C,
                        &format!("task {t} write {seq}"),
                        store
                            .write_event(&pid, SequenceId(seq), "E", payload.as_bytes())
                            .await,
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            panic!("conformance check `{C}` failed: a writer task failed: {e}");
        }
    }
    for t in 0..TASKS {
        let pid = id(C, &format!("task-{t}"));
        let events = ok(C, "read", store.read_events(&pid, SequenceId(1)).await);
        same(
            C,
            &format!("sequences of task {t}"),
            seqs(&events),
            (1..=EVENTS).collect(),
        );
        for entry in &events {
            let expected = format!("{t}/{}", entry.sequence_id.0);
            same_bytes(
                C,
                &format!("payload of task {t}"),
                &entry.payload,
                expected.as_bytes(),
            );
        }
    }
}

/// Tasks racing to write the same sequences of one id: each sequence is won
/// by exactly one of them, every loser gets the conflict, and the stored event
/// is the winner's.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_racing_writers_win_each_sequence_once<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_racing_writers_win_each_sequence_once";
    const TASKS: usize = 8;
    const SEQS: i64 = 25;
    let pid = id(C, "contended");
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let pid = pid.clone();
            tokio::spawn(async move {
                let mut won = Vec::new();
                for seq in 1..=SEQS {
                    let payload = format!("task-{t}");
                    let result = store
                        .write_event(&pid, SequenceId(seq), "E", payload.as_bytes())
                        .await;
                    match result {
                        Ok(()) => won.push(seq),
                        Err(PersistError::SequenceConflict {
                            persistence_id,
                            sequence_id,
                        }) if persistence_id == pid && sequence_id == SequenceId(seq) => {}
                        Err(other) => panic!(
                            "conformance check `{C}` failed: task {t} at {seq}: expected Ok or \
                             the conflict at {seq}, got {other:?}"
                        ),
                    }
                    tokio::task::yield_now().await;
                }
                (t, won)
            })
        })
        .collect();
    let mut winners: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for task in tasks {
        match task.await {
            Ok((t, won)) => {
                for seq in won {
                    winners.entry(seq).or_default().push(t);
                }
            }
            Err(e) => panic!("conformance check `{C}` failed: a racing task failed: {e}"),
        }
    }
    for seq in 1..=SEQS {
        let won_by = winners.get(&seq).cloned().unwrap_or_default();
        assert!(
            won_by.len() == 1,
            "conformance check `{C}` failed: sequence {seq} was won by tasks {won_by:?}, \
             expected exactly one"
        );
    }
    let events = ok(C, "read", store.read_events(&pid, SequenceId(1)).await);
    same(C, "sequences stored", seqs(&events), (1..=SEQS).collect());
    for entry in &events {
        let winner = winners
            .get(&entry.sequence_id.0)
            .and_then(|w| w.first())
            .copied()
            .unwrap_or(usize::MAX);
        same_bytes(
            C,
            &format!("payload at {} (the winner's)", entry.sequence_id.0),
            &entry.payload,
            format!("task-{winner}").as_bytes(),
        );
    }
}

/// A read racing batch writes sees each batch whole or not at all: always a
/// whole number of batches, contiguous from 1.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn journal_reads_see_a_batch_whole_or_not_at_all<S>(store: Arc<S>)
where
    S: JournalStorage + ?Sized,
{
    const C: &str = "journal_reads_see_a_batch_whole_or_not_at_all";
    const BATCHES: i64 = 20;
    const SIZE: i64 = 50;
    let pid = id(C, "1");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, pid, done) = (store.clone(), pid.clone(), done.clone());
        tokio::spawn(async move {
            let payload = pattern(256, 3);
            for b in 0..BATCHES {
                let batch: Vec<(SequenceId, &str, &[u8])> = (1..=SIZE)
                    .map(|i| (SequenceId(b * SIZE + i), "E", payload.as_slice()))
                    .collect();
                ok(
                    C,
                    &format!("batch {b}"),
                    store.write_event_batch(&pid, &batch).await,
                );
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut reads = 0u32;
    let mut partial_seen = Vec::new();
    loop {
        // A writer that panicked never sets `done`: stop on its end too.
        let finished = done.load(Ordering::SeqCst) || writer.is_finished();
        let events = ok(
            C,
            "read during writes",
            store.read_events(&pid, SequenceId(1)).await,
        );
        let n = events.len() as i64;
        if n % SIZE != 0 || seqs(&events) != (1..=n).collect::<Vec<_>>() {
            partial_seen.push(n);
        }
        let highest = ok(
            C,
            "highest during writes",
            store.read_highest_sequence(&pid).await,
        )
        .map_or(0, |s| s.0);
        if highest % SIZE != 0 {
            partial_seen.push(highest);
        }
        reads += 1;
        if finished {
            break;
        }
        tokio::task::yield_now().await;
    }
    if let Err(e) = writer.await {
        panic!("conformance check `{C}` failed: the writer task failed: {e}");
    }
    assert!(
        partial_seen.is_empty(),
        "conformance check `{C}` failed: {} of {reads} reads saw part of a batch (event counts \
         {partial_seen:?}, batches are {SIZE} events)",
        partial_seen.len()
    );
    same(
        C,
        "events at the end",
        ok(C, "read", store.read_events(&pid, SequenceId(1)).await).len(),
        (BATCHES * SIZE) as usize,
    );
}

// ---------------------------------------------------------------------------
// Snapshot checks.
// ---------------------------------------------------------------------------

/// The latest snapshot is the one with the highest sequence, not the last
/// saved; an id without snapshots has none.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn snapshot_latest_is_the_highest_sequence<S>(store: Arc<S>)
where
    S: SnapshotStorage + ?Sized,
{
    const C: &str = "snapshot_latest_is_the_highest_sequence";
    let pid = id(C, "1");
    same(
        C,
        "latest of an unknown id",
        ok(C, "load", store.load_latest_snapshot(&pid).await),
        None,
    );
    for seq in [5, 2, 9, 7] {
        ok(
            C,
            &format!("save at {seq}"),
            store
                .save_snapshot(&pid, SequenceId(seq), format!("state@{seq}").as_bytes())
                .await,
        );
    }
    let latest = ok(C, "load", store.load_latest_snapshot(&pid).await);
    same(
        C,
        "latest snapshot",
        latest.map(|s| (s.sequence_id, s.payload)),
        Some((SequenceId(9), b"state@9".to_vec())),
    );
    same(
        C,
        "latest of another id",
        ok(C, "load", store.load_latest_snapshot(&id(C, "2")).await),
        None,
    );
}

/// Saving at a sequence that has a snapshot replaces it.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn snapshot_at_the_same_sequence_replaces<S>(store: Arc<S>)
where
    S: SnapshotStorage + ?Sized,
{
    const C: &str = "snapshot_at_the_same_sequence_replaces";
    let pid = id(C, "1");
    ok(
        C,
        "save",
        store.save_snapshot(&pid, SequenceId(4), b"first").await,
    );
    ok(
        C,
        "save again",
        store
            .save_snapshot(&pid, SequenceId(4), b"second, longer")
            .await,
    );
    let latest = ok(C, "load", store.load_latest_snapshot(&pid).await);
    same(
        C,
        "latest after saving twice at 4",
        latest.map(|s| (s.sequence_id, s.payload)),
        Some((SequenceId(4), b"second, longer".to_vec())),
    );
    ok(
        C,
        "save shorter",
        store.save_snapshot(&pid, SequenceId(4), b"3rd").await,
    );
    let latest = ok(C, "load", store.load_latest_snapshot(&pid).await);
    same(
        C,
        "latest after a shorter replacement",
        latest.map(|s| s.payload),
        Some(b"3rd".to_vec()),
    );
}

/// `delete_snapshots_before(n)` removes the snapshots below `n` and keeps `n`
/// and above.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn snapshot_delete_before_removes_only_older<S>(store: Arc<S>)
where
    S: SnapshotStorage + ?Sized,
{
    const C: &str = "snapshot_delete_before_removes_only_older";
    let pid = id(C, "1");
    let latest = |step: &'static str| {
        let store = store.clone();
        let pid = pid.clone();
        async move { ok(C, step, store.load_latest_snapshot(&pid).await).map(|s| s.sequence_id.0) }
    };
    for seq in 1..=4 {
        ok(
            C,
            "save",
            store
                .save_snapshot(&pid, SequenceId(seq), &[seq as u8])
                .await,
        );
    }
    ok(
        C,
        "delete before 3",
        store.delete_snapshots_before(&pid, SequenceId(3)).await,
    );
    same(
        C,
        "latest after deleting before 3",
        latest("load").await,
        Some(4),
    );
    ok(
        C,
        "delete before 4",
        store.delete_snapshots_before(&pid, SequenceId(4)).await,
    );
    same(
        C,
        "latest after deleting before 4 (keeps 4)",
        latest("load").await,
        Some(4),
    );
    ok(
        C,
        "delete before 5",
        store.delete_snapshots_before(&pid, SequenceId(5)).await,
    );
    same(
        C,
        "latest after deleting before 5",
        latest("load").await,
        None,
    );

    // What was below the cut is gone: a new low snapshot is the latest alone.
    for seq in [1, 2, 6] {
        ok(
            C,
            "save",
            store
                .save_snapshot(&pid, SequenceId(seq), &[seq as u8])
                .await,
        );
    }
    ok(
        C,
        "delete before 2",
        store.delete_snapshots_before(&pid, SequenceId(2)).await,
    );
    ok(
        C,
        "delete before 7",
        store.delete_snapshots_before(&pid, SequenceId(7)).await,
    );
    same(C, "latest after deleting all", latest("load").await, None);
    ok(
        C,
        "delete for an unknown id",
        store
            .delete_snapshots_before(&id(C, "none"), SequenceId(9))
            .await,
    );
}

/// An empty snapshot and a 10 MiB one read back byte for byte.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn snapshot_payload_extremes<S>(store: Arc<S>)
where
    S: SnapshotStorage + ?Sized,
{
    const C: &str = "snapshot_payload_extremes";
    let empty = id(C, "empty");
    ok(
        C,
        "save empty",
        store.save_snapshot(&empty, SequenceId(1), b"").await,
    );
    let loaded = ok(C, "load empty", store.load_latest_snapshot(&empty).await);
    same(
        C,
        "empty snapshot",
        loaded.map(|s| (s.sequence_id, s.payload)),
        Some((SequenceId(1), Vec::new())),
    );
    let big_id = id(C, "10MiB");
    let big = pattern(10 * MIB, 11);
    ok(
        C,
        "save 10 MiB",
        store.save_snapshot(&big_id, SequenceId(3), &big).await,
    );
    match ok(C, "load 10 MiB", store.load_latest_snapshot(&big_id).await) {
        Some(snapshot) => {
            same(
                C,
                "sequence of the 10 MiB snapshot",
                snapshot.sequence_id,
                SequenceId(3),
            );
            same_bytes(C, "10 MiB snapshot", &snapshot.payload, &big);
        }
        None => panic!("conformance check `{C}` failed: the 10 MiB snapshot was not found"),
    }
}

/// Every tricky id ([`tricky_ids`]) keeps its own snapshot.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn snapshot_tricky_ids_never_mix<S>(store: Arc<S>)
where
    S: SnapshotStorage + ?Sized,
{
    const C: &str = "snapshot_tricky_ids_never_mix";
    let ids = tricky_ids();
    for (i, pid) in ids.iter().enumerate() {
        let payload = format!("{i}:{}", pid.0);
        ok(
            C,
            &format!("save id #{i}"),
            store
                .save_snapshot(pid, SequenceId(i as i64 + 1), payload.as_bytes())
                .await,
        );
    }
    for (i, pid) in ids.iter().enumerate() {
        let loaded = ok(
            C,
            &format!("load id #{i}"),
            store.load_latest_snapshot(pid).await,
        );
        same(
            C,
            &format!("snapshot of id #{i} {:?}", short(pid)),
            loaded.map(|s| (s.sequence_id, s.payload)),
            Some((
                SequenceId(i as i64 + 1),
                format!("{i}:{}", pid.0).into_bytes(),
            )),
        );
    }
}

// ---------------------------------------------------------------------------
// State checks.
// ---------------------------------------------------------------------------

/// State: none for an unknown id; saved, replaced (by a shorter one too),
/// deleted; deleting twice or for an unknown id is harmless; ids are separate.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn state_save_replace_delete_and_unknown<S>(store: Arc<S>)
where
    S: StateStorage + ?Sized,
{
    const C: &str = "state_save_replace_delete_and_unknown";
    let pid = id(C, "1");
    let other = id(C, "2");
    let load = |pid: PersistenceId, step: &'static str| {
        let store = store.clone();
        async move { ok(C, step, store.load_state(&pid).await) }
    };
    same(
        C,
        "state of an unknown id",
        load(pid.clone(), "load").await,
        None,
    );
    ok(C, "save", store.save_state(&pid, b"first state").await);
    ok(C, "save other", store.save_state(&other, b"other").await);
    same(
        C,
        "saved state",
        load(pid.clone(), "load").await,
        Some(b"first state".to_vec()),
    );
    ok(C, "replace", store.save_state(&pid, b"2nd").await);
    same(
        C,
        "replaced state",
        load(pid.clone(), "load").await,
        Some(b"2nd".to_vec()),
    );
    ok(C, "delete", store.delete_state(&pid).await);
    same(
        C,
        "state after delete",
        load(pid.clone(), "load").await,
        None,
    );
    ok(C, "delete again", store.delete_state(&pid).await);
    ok(
        C,
        "delete unknown",
        store.delete_state(&id(C, "none")).await,
    );
    same(
        C,
        "the other id's state",
        load(other.clone(), "load").await,
        Some(b"other".to_vec()),
    );
    ok(C, "save after delete", store.save_state(&pid, b"").await);
    same(
        C,
        "empty state after delete",
        load(pid, "load").await,
        Some(Vec::new()),
    );
}

/// An empty state and a 10 MiB one read back byte for byte.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn state_payload_extremes<S>(store: Arc<S>)
where
    S: StateStorage + ?Sized,
{
    const C: &str = "state_payload_extremes";
    let empty = id(C, "empty");
    ok(C, "save empty", store.save_state(&empty, b"").await);
    same(
        C,
        "empty state",
        ok(C, "load empty", store.load_state(&empty).await),
        Some(Vec::new()),
    );
    let big_id = id(C, "10MiB");
    let big = pattern(10 * MIB, 13);
    ok(C, "save 10 MiB", store.save_state(&big_id, &big).await);
    match ok(C, "load 10 MiB", store.load_state(&big_id).await) {
        Some(state) => same_bytes(C, "10 MiB state", &state, &big),
        None => panic!("conformance check `{C}` failed: the 10 MiB state was not found"),
    }
}

/// Every tricky id ([`tricky_ids`]) keeps its own state.
///
/// # Panics
///
/// When the store does not behave so; the message names the check.
pub async fn state_tricky_ids_never_mix<S>(store: Arc<S>)
where
    S: StateStorage + ?Sized,
{
    const C: &str = "state_tricky_ids_never_mix";
    let ids = tricky_ids();
    for (i, pid) in ids.iter().enumerate() {
        ok(
            C,
            &format!("save id #{i}"),
            store
                .save_state(pid, format!("{i}:{}", pid.0).as_bytes())
                .await,
        );
    }
    for (i, pid) in ids.iter().enumerate() {
        same(
            C,
            &format!("state of id #{i} {:?}", short(pid)),
            ok(C, &format!("load id #{i}"), store.load_state(pid).await),
            Some(format!("{i}:{}", pid.0).into_bytes()),
        );
    }
}
