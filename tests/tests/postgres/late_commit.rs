//! Global order under concurrent writers: a reader that resumes from the
//! last offset it saw never skips an event whose transaction committed
//! late, does not stall after a rollback, waits (visibly) behind an
//! unrelated open transaction, and, with 16 writers holding their
//! transactions open for random times, reads exactly the set committed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use dactor_persist::query::{EventEnvelope, Offset, ReadJournal};
use dactor_persist::*;
use libtest_mimic::Trial;

use crate::support::{Schema, raw, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial("late_commit::a_late_commit_is_delivered_once", late_commit),
        trial(
            "late_commit::a_rolled_back_transaction_does_not_stall_the_reader",
            rolled_back,
        ),
        trial(
            "late_commit::an_unrelated_open_transaction_holds_readers_back_visibly",
            unrelated,
        ),
        trial(
            "late_commit::another_process_commit_wakes_live_readers",
            notified,
        ),
        trial(
            "late_commit::sixteen_slow_writers_and_a_resuming_reader",
            stress,
        ),
    ]
}

/// The checksum the store writes for an event without tags or metadata
/// (`storage/checksum.rs`, schema 2): for rows written by hand.
fn checksum(pid: &str, seq: i64, event_type: &str, payload: &[u8]) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(b"E2");
    h.update(&(pid.len() as u64).to_le_bytes());
    h.update(pid.as_bytes());
    h.update(&seq.to_le_bytes());
    h.update(&(event_type.len() as u64).to_le_bytes());
    h.update(event_type.as_bytes());
    h.update(payload);
    i64::from(h.finalize())
}

/// Appends an event by hand in `tx` (a transaction left open by the caller).
async fn append(tx: &tokio_postgres::Transaction<'_>, schema: &Schema, pid: &str, seq: i64) {
    let payload = format!("{pid}#{seq}").into_bytes();
    tx.execute(
        &format!(
            "INSERT INTO {}.journal (persistence_id, sequence, event_type, payload, checksum, write_id)
             VALUES ($1, $2, 'E', $3, $4, 0)",
            schema.quoted()
        ),
        &[&pid, &seq, &payload, &checksum(pid, seq, "E", &payload)],
    )
    .await
    .unwrap();
}

/// The store with a short poll and stall warning, and its read side.
async fn read_side(schema: &Schema) -> (Arc<PostgresStorage>, ReadJournal) {
    let store = Arc::new(
        schema
            .builder()
            .poll_interval(Duration::from_millis(50))
            .reader_stall_warning(Duration::from_millis(200))
            .connect()
            .await
            .unwrap(),
    );
    let journal = ReadJournal::new(store.clone()).page_size(4);
    (store, journal)
}

/// What a live stream delivers within `wait` (it is polled that long).
async fn deliveries(
    stream: &mut dactor_persist::query::EventStream,
    wait: Duration,
) -> Vec<EventEnvelope> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(next)) = tokio::time::timeout_at(deadline, stream.next()).await {
        got.push(next.unwrap());
    }
    got
}

fn ids(events: &[EventEnvelope]) -> Vec<&str> {
    events.iter().map(|e| e.persistence_id.as_str()).collect()
}

async fn late_commit() {
    let schema = Schema::new("late");
    let (store, journal) = read_side(&schema).await;
    let mut live = journal.all_events(Offset::START);
    // T1 appends for A and stays open.
    let mut t1_client = raw().await;
    let t1 = t1_client.transaction().await.unwrap();
    append(&t1, &schema, "Late:A", 1).await;
    // T2 appends for B and commits.
    store
        .write_event(
            &PersistenceId::new("Late", "B"),
            SequenceId(1),
            "E",
            b"Late:B#1",
        )
        .await
        .unwrap();
    // The reader does not pass B while T1 may still commit below it.
    let early = deliveries(&mut live, Duration::from_millis(500)).await;
    assert!(
        early.is_empty(),
        "delivered while T1 was open: {:?}",
        ids(&early)
    );
    t1.commit().await.unwrap();
    let after = deliveries(&mut live, Duration::from_secs(3)).await;
    assert_eq!(
        ids(&after),
        ["Late:A", "Late:B"],
        "both, each once, in order"
    );
    // A reader resuming from the last offset gets nothing again.
    let again = deliveries(
        &mut journal.all_events(after[1].offset),
        Duration::from_millis(300),
    )
    .await;
    assert!(again.is_empty(), "{:?}", ids(&again));
    // And one resuming between them gets B only.
    let mut from_a = journal.current_all_events(after[0].offset);
    let next = from_a.next().await.unwrap().unwrap();
    assert_eq!(next.persistence_id.as_str(), "Late:B");
    assert!(from_a.next().await.is_none());
    store.close().await;
}

async fn rolled_back() {
    let schema = Schema::new("rollback");
    let (store, journal) = read_side(&schema).await;
    let mut live = journal.all_events(Offset::START);
    let mut t1_client = raw().await;
    let t1 = t1_client.transaction().await.unwrap();
    append(&t1, &schema, "Roll:A", 1).await;
    store
        .write_event(&PersistenceId::new("Roll", "B"), SequenceId(1), "E", b"x")
        .await
        .unwrap();
    assert!(
        deliveries(&mut live, Duration::from_millis(300))
            .await
            .is_empty()
    );
    t1.rollback().await.unwrap();
    let after = deliveries(&mut live, Duration::from_secs(3)).await;
    assert_eq!(ids(&after), ["Roll:B"], "B once T1 is gone; A never");
    store.close().await;
}

async fn unrelated() {
    let schema = Schema::new("unrelated");
    let (store, journal) = read_side(&schema).await;
    // A transaction that writes elsewhere and stays open.
    let mut other = raw().await;
    let open = other.transaction().await.unwrap();
    open.batch_execute(
        "CREATE TEMPORARY TABLE dactor_unrelated (x INT); INSERT INTO dactor_unrelated VALUES (1)",
    )
    .await
    .unwrap();
    store
        .write_event(&PersistenceId::new("Un", "B"), SequenceId(1), "E", b"x")
        .await
        .unwrap();
    let mut live = journal.all_events(Offset::START);
    let held = deliveries(&mut live, Duration::from_millis(800)).await;
    assert!(
        held.is_empty(),
        "delivered past an open transaction: {:?}",
        ids(&held)
    );
    // The lag is visible: how long readers have been held back.
    let lag = store.readers_held_back();
    assert!(
        lag.is_some_and(|d| d >= Duration::from_millis(200)),
        "readers held back for {lag:?}"
    );
    open.rollback().await.unwrap();
    let after = deliveries(&mut live, Duration::from_secs(3)).await;
    assert_eq!(ids(&after), ["Un:B"]);
    let _ = deliveries(&mut live, Duration::from_millis(100)).await;
    assert_eq!(store.readers_held_back(), None, "no longer held back");
    store.close().await;
}

async fn notified() {
    use dactor_persist::query::EventQueries;
    let schema = Schema::new("notify");
    let writer = schema.store().await;
    // Another node: its own pool and connections, polling only once a minute.
    let reader = Arc::new(
        schema
            .builder()
            .poll_interval(Duration::from_secs(60))
            .connect()
            .await
            .unwrap(),
    );
    let mut commits = reader.watch_commits();
    // The listener says once that it listens (commits may have been missed).
    tokio::time::timeout(Duration::from_secs(10), commits.changed())
        .await
        .expect("the listener started")
        .unwrap();
    commits.borrow_and_update();
    writer
        .write_event(&PersistenceId::new("Hint", "1"), SequenceId(1), "E", b"x")
        .await
        .unwrap();
    // The reader wrote nothing: only the writer's hint can change its watch.
    tokio::time::timeout(Duration::from_secs(10), commits.changed())
        .await
        .expect("the other store's commit hint reached this store")
        .unwrap();
    let journal = ReadJournal::new(reader.clone());
    let mut live = journal.events_by_entity_type("Hint", Offset::START);
    let e = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.persistence_id.as_str(), "Hint:1");
    writer.close().await;
    reader.close().await;
}

async fn stress() {
    const WRITERS: usize = 16;
    const EACH: i64 = 25;
    let schema = Arc::new(Schema::new("stress"));
    let (store, journal) = read_side(&schema).await;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let schema = schema.clone();
        writers.push(tokio::spawn(async move {
            let mut client = raw().await;
            let pid = format!("Stress:{w}");
            let mut committed = Vec::new();
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64);
            let mut seq = 0;
            for round in 0..EACH {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let tx = client.transaction().await.unwrap();
                let next = seq + 1;
                append(&tx, &schema, &pid, next).await;
                // Held open for 0-30 ms; one in seven rolled back.
                tokio::time::sleep(Duration::from_millis(rng % 31)).await;
                if (rng >> 8).is_multiple_of(7) && round % 2 == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    seq = next;
                    committed.push(next);
                }
            }
            (pid, committed)
        }));
    }
    // One reader, a fresh stream per page, resuming from the offset it saw.
    let mut offset = Offset::START;
    let mut read: Vec<EventEnvelope> = Vec::new();
    loop {
        let finished = writers.iter().all(|w| w.is_finished());
        let mut stream = journal.current_events_by_entity_type("Stress", offset);
        let mut page = 0;
        while page < 4 {
            match stream.next().await {
                Some(e) => {
                    let e = e.unwrap();
                    offset = e.offset;
                    read.push(e);
                    page += 1;
                }
                None => break,
            }
        }
        if finished && page == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut expected: BTreeSet<(String, i64)> = BTreeSet::new();
    for w in writers {
        let (pid, committed) = w.await.unwrap();
        expected.extend(committed.into_iter().map(|s| (pid.clone(), s)));
    }
    let got: Vec<(String, i64)> = read
        .iter()
        .map(|e| (e.persistence_id.0.clone(), e.sequence_id.0))
        .collect();
    let distinct: BTreeSet<(String, i64)> = got.iter().cloned().collect();
    assert_eq!(got.len(), distinct.len(), "an event was delivered twice");
    assert_eq!(distinct, expected, "the set read is the set committed");
    let mut per_id: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in &read {
        per_id
            .entry(e.persistence_id.as_str())
            .or_default()
            .push(e.sequence_id.0);
    }
    for (pid, seqs) in per_id {
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "{pid} out of order");
    }
    eprintln!(
        "late commits: {} events from {WRITERS} slow writers read exactly once",
        read.len()
    );
    store.close().await;
}
