//! The NATS store's own behaviour on one server, beyond the conformance
//! suite: the server's version read at connect, streams of another layout
//! refused, damage and removals behind the store's back reported (never a
//! wrong state), and the fence kept when a journal is deleted to its end.

use async_nats::jetstream::message::PublishMessage;
use dactor_persist::{
    JournalStorage, PersistError, PersistenceId, SequenceId, SnapshotStorage, StateStorage,
    recover_event_sourced,
};
use dactor_persist_tests::journaled::Journaled;
use libtest_mimic::Trial;

use crate::support::{
    Streams, builder, fresh, fresh_with, raw_client, server, trial, unique_prefix,
};

pub fn single() -> Vec<Trial> {
    vec![
        trial("store::reads_the_server_version", version),
        trial("store::refuses_streams_of_another_layout", layout),
        trial("store::a_damaged_record_is_reported", damaged),
        trial(
            "store::a_record_removed_behind_its_back_fails_recovery",
            removed,
        ),
        trial("store::a_missing_chunk_is_reported", missing_chunk),
        trial(
            "store::a_journal_deleted_to_its_end_keeps_its_fence",
            fence_kept,
        ),
        trial("store::damaged_values_are_reported", damaged_values),
        trial("store::replaced_values_leave_no_chunks", chunks_dropped),
        trial("store::a_write_stored_twice_reads_once", stored_twice),
        trial(
            "store::offsets_stay_when_part_of_a_record_is_deleted",
            offsets_stay,
        ),
        trial(
            "store::a_lease_whose_holder_went_away_expires",
            lease_expires,
        ),
        trial(
            "store::queries_across_ids_need_one_shard_and_say_so",
            queries_need_one_shard,
        ),
    ]
}

async fn js() -> async_nats::jetstream::Context {
    async_nats::jetstream::new(raw_client(&server()).await.expect("raw client"))
}

async fn version() {
    let (store, _streams) = fresh().await;
    let raw = raw_client(&server()).await.unwrap();
    assert_eq!(store.server().version, raw.server_info().version);
    assert_ne!(store.server().parsed, (0, 0, 0));
    assert_eq!(store.server().max_payload, raw.server_info().max_payload);
    // What this machine's 2.9 promises, and what it does not.
    if store.server().parsed < (2, 10, 0) {
        assert!(!store.server().can_sync_every_write());
        assert!(!store.server().checks_the_fence_when_applying());
    }
    store.close().await;
}

async fn layout() {
    let prefix = unique_prefix();
    let first = builder(&server(), &prefix)
        .shards(4)
        .connect()
        .await
        .unwrap();
    let _streams = Streams {
        urls: server(),
        names: first.stream_names(),
    };
    match builder(&server(), &prefix).shards(8).connect().await {
        Err(PersistError::IncompatibleStore(msg)) => {
            assert!(msg.contains("shard 0 of 4"), "{msg}")
        }
        other => panic!("8 shards over 4: {other:?}"),
    }
    // The same layout opens again.
    let again = builder(&server(), &prefix)
        .shards(4)
        .connect()
        .await
        .unwrap();
    again.close().await;
    first.close().await;
}

async fn damaged() {
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Damaged", "1");
    for seq in 1..=3 {
        store
            .write_event(&pid, SequenceId(seq), "E", b"x")
            .await
            .unwrap();
    }
    // Someone publishes onto the journal's subject behind the store's back.
    js().await
        .publish(store.journal_subject(&pid), "not a record".into())
        .await
        .unwrap()
        .await
        .unwrap();
    for (what, result) in [
        (
            "read",
            store.read_events(&pid, SequenceId(1)).await.map(|_| ()),
        ),
        ("bounds", store.read_bounds(&pid).await.map(|_| ())),
        (
            "write",
            store.write_event(&pid, SequenceId(4), "E", b"x").await,
        ),
    ] {
        match result {
            Err(PersistError::CorruptEntry { detail, .. }) => {
                assert!(detail.contains("Damaged:1"), "{what}: {detail}")
            }
            other => panic!("{what} after damage: {other:?}"),
        }
    }
    store.close().await;
}

async fn removed() {
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Removed", "1");
    let mut seqs = Vec::new();
    for seq in 1..=5 {
        store
            .write_event(&pid, SequenceId(seq), "E", b"x")
            .await
            .unwrap();
    }
    // Find the stream sequence of event 3's record and delete it.
    let stream = js().await.get_stream(store.stream_of(&pid)).await.unwrap();
    let subject = store.journal_subject(&pid);
    let mut at = 1;
    while let Ok(message) = stream.get_first_raw_message_by_subject(&subject, at).await {
        seqs.push(message.sequence);
        at = message.sequence + 1;
    }
    assert_eq!(seqs.len(), 5, "one record per write");
    assert!(stream.delete_message(seqs[2]).await.unwrap());
    // The store reads what is there; recovery proves it incomplete.
    let events = store.read_events(&pid, SequenceId(1)).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.sequence_id.0).collect::<Vec<_>>(),
        [1, 2, 4, 5]
    );
    let mut actor = Journaled::new(pid.clone(), "n", Journaled::retrying());
    let result = recover_event_sourced(&mut actor, &*store, &*store).await;
    match result {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => {
            assert_eq!(sequence_id, SequenceId(3), "{detail}")
        }
        other => panic!("recovery over a removed record: {other:?}"),
    }
    store.close().await;
}

async fn missing_chunk() {
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Chunked", "1");
    let big = vec![7u8; 3 * store.server().max_payload];
    store
        .write_event(&pid, SequenceId(1), "Big", &big)
        .await
        .unwrap();
    let events = store.read_events(&pid, SequenceId(1)).await.unwrap();
    assert_eq!(events[0].payload, big);
    // Its chunks are on the chunk subject; remove one.
    let stream = js().await.get_stream(store.stream_of(&pid)).await.unwrap();
    let chunks = store.journal_subject(&pid).replacen(".j.", ".jc.", 1);
    let chunk = stream
        .get_first_raw_message_by_subject(&chunks, 1)
        .await
        .expect("a chunk");
    assert!(stream.delete_message(chunk.sequence).await.unwrap());
    match store.read_events(&pid, SequenceId(1)).await {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => {
            assert_eq!(sequence_id, SequenceId(1));
            assert!(detail.contains("chunk"), "{detail}");
        }
        other => panic!("read with a chunk gone: {other:?}"),
    }
    store.close().await;
}

async fn fence_kept() {
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Emptied", "1");
    for seq in 1..=3 {
        store
            .write_event(&pid, SequenceId(seq), "E", b"x")
            .await
            .unwrap();
    }
    store.delete_events_to(&pid, SequenceId(3)).await.unwrap();
    assert!(
        store
            .read_events(&pid, SequenceId(1))
            .await
            .unwrap()
            .is_empty()
    );
    // A writer that believes the subject empty (expects nothing) is refused:
    // the deletion left its marker as the subject's last message.
    let refused = js()
        .await
        .send_publish(
            store.journal_subject(&pid),
            PublishMessage::build()
                .payload("stale".into())
                .expected_last_subject_sequence(0),
        )
        .await
        .unwrap()
        .await;
    assert!(
        refused.is_err(),
        "a write expecting an empty subject was stored"
    );
    assert_eq!(
        store.read_highest_sequence(&pid).await.unwrap(),
        Some(SequenceId(3))
    );
    store
        .write_event(&pid, SequenceId(4), "E", b"x")
        .await
        .unwrap();
    store.close().await;
}

async fn damaged_values() {
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Values", "1");
    store
        .save_snapshot(&pid, SequenceId(5), b"snap")
        .await
        .unwrap();
    store.save_state(&pid, b"state").await.unwrap();
    let js = js().await;
    for (kind, code) in [("snapshot", ".s."), ("state", ".d.")] {
        let subject = store.journal_subject(&pid).replacen(".j.", code, 1);
        js.publish(subject, "garbage".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let _ = kind;
    }
    match store.load_latest_snapshot(&pid).await {
        Err(PersistError::CorruptSnapshot { persistence_id, .. }) => {
            assert_eq!(persistence_id, pid)
        }
        other => panic!("a damaged snapshot: {other:?}"),
    }
    match store.load_state(&pid).await {
        Err(PersistError::CorruptState { persistence_id, .. }) => assert_eq!(persistence_id, pid),
        other => panic!("a damaged state: {other:?}"),
    }
    // Writing over damage works and reads back.
    store
        .save_snapshot(&pid, SequenceId(6), b"snap 2")
        .await
        .unwrap();
    let snapshot = store.load_latest_snapshot(&pid).await.unwrap().unwrap();
    assert_eq!(
        (snapshot.sequence_id, snapshot.payload.as_slice()),
        (SequenceId(6), b"snap 2".as_slice())
    );
    store.save_state(&pid, b"state 2").await.unwrap();
    assert_eq!(
        store.load_state(&pid).await.unwrap().as_deref(),
        Some(b"state 2".as_slice())
    );
    store.close().await;
}

/// A chunked state replaced by a small one (through the same store, which
/// remembers it wrote chunks) leaves no chunk behind; so does a chunked
/// snapshot replaced, and deleted.
async fn chunks_dropped() {
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Chunks", "1");
    let big = vec![3u8; 2 * store.server().max_payload];
    let stream = js().await.get_stream(store.stream_of(&pid)).await.unwrap();
    let chunks_of = |code: &str| store.journal_subject(&pid).replacen(".j.", code, 1);
    let chunks_left = |subject: String| {
        let stream = stream.clone();
        async move {
            stream
                .get_first_raw_message_by_subject(&subject, 1)
                .await
                .is_ok()
        }
    };
    store.save_state(&pid, &big).await.unwrap();
    assert!(
        chunks_left(chunks_of(".dc.")).await,
        "a big state is chunked"
    );
    store.save_state(&pid, b"small").await.unwrap();
    assert!(
        !chunks_left(chunks_of(".dc.")).await,
        "the big state's chunks stayed"
    );
    assert_eq!(
        store.load_state(&pid).await.unwrap().as_deref(),
        Some(b"small".as_slice())
    );

    store
        .save_snapshot(&pid, SequenceId(1), &big)
        .await
        .unwrap();
    store
        .save_snapshot(&pid, SequenceId(2), &big)
        .await
        .unwrap();
    assert_eq!(
        store
            .load_latest_snapshot(&pid)
            .await
            .unwrap()
            .unwrap()
            .payload,
        big
    );
    store
        .delete_snapshots_before(&pid, SequenceId(3))
        .await
        .unwrap();
    assert!(store.load_latest_snapshot(&pid).await.unwrap().is_none());
    assert!(
        !chunks_left(chunks_of(".sc.")).await,
        "deleted snapshots' chunks stayed"
    );
    store.close().await;
}

/// On the default eight shards, the events of one id and the list of ids
/// are read; a query across ids fails, naming the remedy.
async fn queries_need_one_shard() {
    use dactor_persist::query::{EventFilter, EventQueries, Offset, ReadJournal};
    let (store, _streams) = fresh().await;
    let pid = PersistenceId::new("Sharded", "1");
    for seq in 1..=3 {
        store
            .write_event(&pid, SequenceId(seq), "E", b"x")
            .await
            .unwrap();
    }
    let journal = ReadJournal::new(store.clone());
    let mut stream =
        journal.current_events_by_persistence_id(&pid, SequenceId(1), SequenceId::LAST);
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    assert_eq!(events.len(), 3);
    assert!(events.windows(2).all(|w| w[0].offset < w[1].offset));
    let ids = journal
        .current_persistence_ids(Some("Sharded"))
        .collect()
        .await
        .unwrap();
    assert_eq!(ids, std::slice::from_ref(&pid));
    match store
        .read_events_after(&EventFilter::All, Offset::START, 10)
        .await
    {
        Err(PersistError::IncompatibleStore(msg)) => assert!(msg.contains(".shards(1)"), "{msg}"),
        other => panic!("a query across ids on 8 shards: {other:?}"),
    }
    store.close().await;
}

/// A write the server stored twice (what a server before 2.11 can do when a
/// write in flight during a leader change is tried again; seen here once in
/// three whole-cluster SIGKILLs) reads once, through the journal and the
/// queries; two different events at one sequence are an error naming both.
async fn stored_twice() {
    use dactor_persist::query::{EventFilter, EventQueries, Offset};
    let (store, _streams) = fresh_with(&server(), |b| b.shards(1)).await;
    let pid = PersistenceId::new("Twice", "1");
    for seq in 1..=3 {
        store
            .write_event(&pid, SequenceId(seq), "E", format!("e{seq}").as_bytes())
            .await
            .unwrap();
    }
    let js = js().await;
    let subject = store.journal_subject(&pid);
    let stream = js.get_stream(store.stream_of(&pid)).await.unwrap();
    let last = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .unwrap();
    // The same record again, as the server would store a retried write.
    js.publish(subject.clone(), last.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    store
        .write_event(&pid, SequenceId(4), "E", b"e4")
        .await
        .unwrap();
    let seqs = |events: Vec<dactor_persist::JournalEntry>| {
        events.iter().map(|e| e.sequence_id.0).collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(store.read_events(&pid, SequenceId(1)).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(
        seqs(
            store
                .read_events_page(&pid, SequenceId(3), 1)
                .await
                .unwrap()
        ),
        [3]
    );
    let mut actor = Journaled::new(pid.clone(), "n", Journaled::retrying());
    recover_event_sourced(&mut actor, &*store, &*store)
        .await
        .unwrap();
    assert_eq!((actor.applied, actor.seq), (4, SequenceId(4)));
    let by_id = store
        .read_envelopes(&pid, SequenceId(1), 100)
        .await
        .unwrap();
    assert_eq!(
        by_id.iter().map(|e| e.sequence_id.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let all = store
        .read_events_after(&EventFilter::All, Offset::START, 100)
        .await
        .unwrap();
    assert_eq!(
        all.events
            .iter()
            .map(|e| e.sequence_id.0)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );

    // Another writer's event 4 for the same id (from a store of its own),
    // stored beside ours: two different events at 4.
    let (rival, _rival_streams) = fresh_with(&server(), |b| b.shards(1)).await;
    for seq in 1..=4 {
        rival
            .write_event(&pid, SequenceId(seq), "E", b"rival")
            .await
            .unwrap();
    }
    let rival_stream = js.get_stream(rival.stream_of(&pid)).await.unwrap();
    let theirs = rival_stream
        .get_last_raw_message_by_subject(&rival.journal_subject(&pid))
        .await
        .unwrap();
    js.publish(subject, theirs.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    match store.read_events(&pid, SequenceId(1)).await {
        Err(PersistError::CorruptEntry {
            sequence_id,
            detail,
        }) => {
            assert_eq!(sequence_id, SequenceId(4));
            assert!(detail.contains("two different events"), "{detail}");
        }
        other => panic!("two different events at 4: {other:?}"),
    }
    rival.close().await;
    store.close().await;
}

/// A projection's lease held by a store that went away (its connection
/// closed, as in a crash: nothing released it) is free again once its time
/// to live passes, and the old holder knows it lost it.
async fn lease_expires() {
    use dactor_persist::projection::ProjectionStore;
    use std::time::{Duration, Instant};
    let ttl = Duration::from_secs(2);
    let (holder, _streams) = fresh_with(&server(), |b| b.shards(1).lease_ttl(ttl)).await;
    let first = &holder.stream_names()[0];
    let prefix = first.strip_suffix("_0").unwrap_or(first).to_owned();
    let other = builder(&server(), &prefix)
        .shards(1)
        .lease_ttl(ttl)
        .connect()
        .await
        .unwrap();
    let lease = holder.try_lease("p").await.unwrap().expect("a free lease");
    assert!(other.try_lease("p").await.unwrap().is_none(), "taken twice");
    // The holder renews it: still taken after more than its time to live.
    tokio::time::sleep(ttl + Duration::from_millis(500)).await;
    assert!(lease.is_held());
    assert!(
        other.try_lease("p").await.unwrap().is_none(),
        "taken while renewed"
    );
    holder.close().await;
    let started = Instant::now();
    let taken = loop {
        if let Some(lease) = other.try_lease("p").await.unwrap() {
            break lease;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the lease of a holder gone stayed taken"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(taken.is_held());
    let waited = started.elapsed();
    // The old holder's guard learns it within a time to live of failing.
    let lost_by = Instant::now() + ttl * 3;
    while lease.is_held() {
        assert!(
            Instant::now() < lost_by,
            "the old holder still believes it holds the lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("lease: free {waited:?} after its holder went away (time to live {ttl:?})");
    drop(taken);
    other.close().await;
}

/// An offset names an event's place for good: after part of a batch's
/// record is deleted, a reader resuming from an offset inside the record
/// gets exactly the events after it.
async fn offsets_stay() {
    use dactor_persist::query::{EventFilter, EventQueries, Offset};
    let (store, _streams) = fresh_with(&server(), |b| b.shards(1)).await;
    let pid = PersistenceId::new("Offsets", "1");
    let batch: Vec<(SequenceId, &str, &[u8])> = (1..=6)
        .map(|s| (SequenceId(s), "E", b"x".as_slice()))
        .collect();
    store.write_event_batch(&pid, &batch).await.unwrap();
    let page = store
        .read_events_after(&EventFilter::All, Offset::START, 100)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 6);
    let third = page.events[2].offset;
    store.delete_events_to(&pid, SequenceId(2)).await.unwrap();
    let after = store
        .read_events_after(&EventFilter::All, third, 100)
        .await
        .unwrap();
    assert_eq!(
        after
            .events
            .iter()
            .map(|e| e.sequence_id.0)
            .collect::<Vec<_>>(),
        [4, 5, 6],
        "resumed after event 3's offset"
    );
    for (before, now) in page.events[3..].iter().zip(&after.events) {
        assert_eq!(before.offset, now.offset, "an offset moved after a delete");
    }
    store.close().await;
}
