//! Faults on the three-node cluster: the stream leader SIGKILLed during a
//! write load, every node SIGKILLed at once, the runtime's `Retry` policy
//! riding through a leader election, and a leader stopped (SIGSTOP: alive,
//! silent, as in a partition) while a second writer takes over.
//!
//! Each test holds the cluster alone and leaves every node running.
//! Afterwards every acknowledged event is read back under each node's
//! leadership in turn (the leader is stepped down until each node has led),
//! so each node's copy is proven, not only the leader's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dactor_persist::runtime::{ActorStatus, Runtime};
use dactor_persist::{
    JournalStorage, NatsStorage, NatsStorageProvider, PersistError, PersistenceId, SequenceId,
};
use dactor_persist_tests::journaled::{Append, Journaled, payload};
use libtest_mimic::Trial;

use crate::support::{
    NODES, Streams, Use, builder, cluster, cluster_trial, cluster_urls, leader_of, raw_client,
    unique_prefix,
};

pub fn cluster_trials() -> Vec<Trial> {
    vec![
        cluster_trial(
            "faults::sigkill_of_the_stream_leader_during_writes_loses_nothing",
            Use::Exclusive,
            leader_killed,
        ),
        cluster_trial(
            "faults::sigkill_of_every_node_loses_nothing_acknowledged",
            Use::Exclusive,
            all_killed,
        ),
        cluster_trial(
            "faults::the_retry_policy_rides_through_a_leader_election",
            Use::Exclusive,
            retry_through_election,
        ),
        cluster_trial(
            "faults::a_stopped_leader_does_not_let_a_second_writer_win",
            Use::Exclusive,
            stopped_leader,
        ),
    ]
}

/// A store on the cluster with one stream (shard), three replicas.
async fn store(urls: &str, prefix: &str, op_timeout: Duration) -> Arc<NatsStorage> {
    Arc::new(
        builder(urls, prefix)
            .replicas(3)
            .shards(1)
            .request_timeout(Duration::from_millis(500))
            .operation_timeout(op_timeout)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {urls}: {e}")),
    )
}

/// Acknowledged sequences per id.
type Acks = Arc<Mutex<BTreeMap<PersistenceId, Vec<i64>>>>;

/// `writers` ids written sequentially until `stop`: a failed write is tried
/// again at the same sequence; a conflict there must be the writer's own
/// earlier try (its answer lost), which is then counted as stored.
fn write_load(
    store: &Arc<NatsStorage>,
    writers: usize,
    tag: &str,
    stop: &Arc<AtomicBool>,
) -> (Acks, Vec<tokio::task::JoinHandle<()>>) {
    let acks: Acks = Arc::default();
    let tasks = (0..writers)
        .map(|w| {
            let (store, acks, stop) = (store.clone(), acks.clone(), stop.clone());
            let pid = PersistenceId::new(tag, &w.to_string());
            tokio::spawn(async move {
                let mut seq = 1;
                while !stop.load(Ordering::Relaxed) {
                    let data = payload(&pid.0, seq);
                    match store.write_event(&pid, SequenceId(seq), "E", &data).await {
                        Ok(()) => {
                            acks.lock()
                                .unwrap()
                                .entry(pid.clone())
                                .or_default()
                                .push(seq);
                            seq += 1;
                        }
                        Err(PersistError::StorageUnavailable(_)) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(PersistError::SequenceConflict { .. }) => {
                            let stored = store.read_events(&pid, SequenceId(seq)).await;
                            match stored.as_deref() {
                                Ok([first, ..]) if first.sequence_id == SequenceId(seq) => {
                                    assert_eq!(
                                        first.payload, data,
                                        "{pid} at {seq}: a conflict with someone else's event"
                                    );
                                    seq += 1;
                                }
                                other => panic!("{pid} at {seq}: conflict, then read {other:?}"),
                            }
                        }
                        Err(e) => panic!("{pid} at {seq}: {e}"),
                    }
                }
            })
        })
        .collect();
    (acks, tasks)
}

fn acked(acks: &Acks) -> usize {
    acks.lock().unwrap().values().map(Vec::len).sum()
}

/// Waits until `acks` holds `more` acknowledgements past `from`; the time it took.
async fn progress(acks: &Acks, from: usize, more: usize, what: &str) -> Duration {
    let started = Instant::now();
    while acked(acks) < from + more {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress {what}: {} acknowledged",
            acked(acks)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// The node leading `stream`, waiting for an election to end.
async fn leader(stream: &str) -> usize {
    let started = Instant::now();
    loop {
        if let Some(n) = leader_of(stream).await {
            return n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no leader for {stream}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks the leader of `stream` to step down, and waits for a new one. The
/// request is repeated every 2 s: a leader refuses while its replicas still
/// catch up (after a restart of every node).
async fn step_down(stream: &str, from: usize) -> usize {
    let client = raw_client(&cluster_urls()).await.expect("raw client");
    let started = Instant::now();
    let mut asked: Option<Instant> = None;
    let mut answer = String::new();
    loop {
        if asked.is_none_or(|at| at.elapsed() >= Duration::from_secs(2)) {
            answer = match client
                .request(
                    format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
                    "".into(),
                )
                .await
            {
                Ok(reply) => String::from_utf8_lossy(&reply.payload).into_owned(),
                Err(e) => e.to_string(),
            };
            asked = Some(Instant::now());
        }
        if let Some(n) = leader_of(stream).await
            && n != from
        {
            return n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{stream}: node {from} did not step down; last answer: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many journal records the stream holds beyond the events read back:
/// writes the server stored twice (read once; see `NatsStorage`).
async fn stored_twice(store: &NatsStorage, acks: &Acks) -> u64 {
    use futures_util::StreamExt;
    let client = raw_client(&cluster_urls()).await.expect("raw client");
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(&store.stream_names()[0])
        .await
        .expect("stream");
    let any = acks.lock().unwrap().keys().next().cloned();
    let Some(pid) = any else { return 0 };
    let subject = store.journal_subject(&pid);
    let wildcard = format!("{}*", &subject[..subject.rfind('.').map_or(0, |i| i + 1)]);
    let mut records = 0u64;
    let mut subjects = stream
        .info_with_subjects(&wildcard)
        .await
        .expect("subjects");
    while let Some(Ok((_, count))) = subjects.next().await {
        records += count as u64;
    }
    let mut events = 0u64;
    let ids: Vec<PersistenceId> = acks.lock().unwrap().keys().cloned().collect();
    for pid in ids {
        events += store
            .read_events(&pid, SequenceId(1))
            .await
            .map_or(0, |e| e.len() as u64);
    }
    records.saturating_sub(events)
}

/// The last sequence of `stream`, as its leader reports it now.
async fn last_sequence(stream: &str) -> u64 {
    let client = raw_client(&cluster_urls()).await.expect("raw client");
    let js = async_nats::jetstream::new(client);
    let started = Instant::now();
    loop {
        if let Ok(mut handle) = js.get_stream(stream).await
            && let Ok(info) = handle.info().await
        {
            return info.state.last_sequence;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{stream}: no stream info"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every acknowledged event is there, once, with its payload, in a journal
/// without gaps; read under each node's leadership in turn.
async fn verify_on_every_node(store: &NatsStorage, acks: &Acks) {
    let stream = &store.stream_names()[0];
    let acks = acks.lock().unwrap().clone();
    let mut led: BTreeSet<usize> = BTreeSet::new();
    let mut current = leader(stream).await;
    for _ in 0..20 {
        if led.insert(current) {
            // A new leader serves reads from what it has applied: read
            // again until every acknowledged event is there (a node that
            // lost one never gets there).
            let started = Instant::now();
            loop {
                match missing_under(store, &acks).await {
                    Ok(()) => break,
                    Err(what) if started.elapsed() < Duration::from_secs(60) => {
                        let _ = what;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(what) => panic!(
                        "{stream} under node {current} (stream last sequence {}): {what}",
                        last_sequence(stream).await
                    ),
                }
            }
        }
        if led.len() == 3 {
            return;
        }
        current = step_down(stream, current).await;
    }
    panic!("{stream}: not every node led in 20 step-downs: {led:?}");
}

/// `Err` naming the first acknowledged event not read back as written, or a
/// journal that is not contiguous.
async fn missing_under(
    store: &NatsStorage,
    acks: &BTreeMap<PersistenceId, Vec<i64>>,
) -> Result<(), String> {
    for (pid, seqs) in acks {
        let events = store
            .read_events(pid, SequenceId(1))
            .await
            .map_err(|e| format!("{pid}: {e}"))?;
        let stored: Vec<i64> = events.iter().map(|e| e.sequence_id.0).collect();
        if stored != (1..=stored.len() as i64).collect::<Vec<_>>() {
            return Err(format!("{pid}: a gap or a duplicate"));
        }
        for seq in seqs {
            match events.get(*seq as usize - 1) {
                Some(event) if event.payload == payload(&pid.0, *seq) => {}
                Some(_) => return Err(format!("{pid}: acknowledged {seq} has another payload")),
                None => {
                    return Err(format!(
                        "{pid}: acknowledged {seq} is missing ({} events read)",
                        events.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn leader_killed() {
    let prefix = unique_prefix();
    let store = store(&cluster_urls(), &prefix, Duration::from_secs(20)).await;
    let _streams = Streams {
        urls: cluster_urls(),
        names: store.stream_names(),
    };
    let stream = store.stream_names()[0].clone();
    // A writer that read the journal before the failover, and will be stale.
    let stale = self::store(&cluster_urls(), &prefix, Duration::from_secs(20)).await;
    let stale_pid = PersistenceId::new("Killed", "0");
    let stop = Arc::new(AtomicBool::new(false));
    let (acks, tasks) = write_load(&store, 16, "Killed", &stop);
    progress(&acks, 0, 2_000, "before the kill").await;
    let stale_seen = stale.read_highest_sequence(&stale_pid).await.unwrap();
    let victim = leader(&stream).await;
    cluster("kill", Some(victim));
    let at_kill = acked(&acks);
    let failover = progress(&acks, at_kill, 1, "after the kill").await;
    progress(&acks, at_kill, 2_000, "after the failover").await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a writer panicked");
    }
    let new_leader = leader(&stream).await;
    assert_ne!(new_leader, victim);

    // The stale writer's next sequence is taken: refused, nothing replaced.
    let next = stale_seen.map_or(1, |s| s.0 + 1);
    match stale
        .write_event(&stale_pid, SequenceId(next), "Stale", b"stale")
        .await
    {
        Err(PersistError::SequenceConflict { sequence_id, .. }) => {
            assert_eq!(sequence_id, SequenceId(next))
        }
        other => panic!("the stale writer at {next}: expected the conflict, got {other:?}"),
    }

    cluster("start-node", Some(victim));
    cluster("wait", None);
    verify_on_every_node(&store, &acks).await;
    eprintln!(
        "leader killed: {} acknowledged ({at_kill} before the kill of node {victim}), none lost, \
         first acknowledgement {failover:?} after the kill; {} writes stored twice by the \
         server (read once)",
        acked(&acks),
        stored_twice(&store, &acks).await
    );
    store.close().await;
    stale.close().await;
}

async fn all_killed() {
    let prefix = unique_prefix();
    let store = store(&cluster_urls(), &prefix, Duration::from_secs(60)).await;
    let _streams = Streams {
        urls: cluster_urls(),
        names: store.stream_names(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (acks, tasks) = write_load(&store, 16, "AllKilled", &stop);
    progress(&acks, 0, 3_000, "before the kill").await;
    for n in 1..=3 {
        cluster("kill", Some(n));
    }
    let at_kill = acked(&acks);
    cluster("start", None);
    // The writers carry on once the cluster is back.
    progress(&acks, at_kill, 500, "after the restart").await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a writer panicked");
    }
    verify_on_every_node(&store, &acks).await;
    eprintln!(
        "every node killed: {at_kill} acknowledged before the kill, {} in all, none lost; \
         {} writes stored twice by the server (read once)",
        acked(&acks),
        stored_twice(&store, &acks).await
    );
    store.close().await;
}

async fn retry_through_election() {
    let prefix = unique_prefix();
    // Operations fail fast (1 s), so the election is ridden through by the
    // actor's Retry policy, not by the store's own patience.
    let store = store(&cluster_urls(), &prefix, Duration::from_secs(1)).await;
    let _streams = Streams {
        urls: cluster_urls(),
        names: store.stream_names(),
    };
    let stream = store.stream_names()[0].clone();
    let host = Runtime::builder()
        .storage(NatsStorageProvider::from_storage(store.clone()))
        .build();
    let id = PersistenceId::new("Elected", "1");
    let actor = host
        .spawn_event_sourced(Journaled::new(id.clone(), "n", Journaled::retrying()))
        .await
        .unwrap();
    actor.ready().await.unwrap();
    let acks: Arc<Mutex<Vec<i64>>> = Arc::default();
    let writing = {
        let (actor, acks) = (actor.clone(), acks.clone());
        tokio::spawn(async move {
            loop {
                match actor.ask(Append).await {
                    Ok(Ok(seq)) => acks.lock().unwrap().push(seq.0),
                    Err(PersistError::ActorStopped { .. }) => return,
                    Ok(Err(e)) | Err(e) => panic!("the retrying actor failed: {e}"),
                }
            }
        })
    };
    let count = |acks: &Mutex<Vec<i64>>| acks.lock().unwrap().len();
    let wait_for = |n: usize| {
        let acks = acks.clone();
        async move {
            let started = Instant::now();
            while count(&acks) < n {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no progress: {}",
                    count(&acks)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(200).await;
    let victim = leader(&stream).await;
    cluster("kill", Some(victim));
    let at_kill = count(&acks);
    wait_for(at_kill + 200).await;
    assert_eq!(actor.status(), ActorStatus::Running);
    actor.stop().await;
    writing.await.unwrap();
    host.shutdown().await;
    cluster("start-node", Some(victim));
    cluster("wait", None);

    let acknowledged = acks.lock().unwrap().clone();
    // Read once the restarted node's leadership (if it leads) has applied
    // its log: until then a read fails as unavailable, never short.
    let started = Instant::now();
    let events = loop {
        match store.read_events(&id, SequenceId(1)).await {
            Ok(events) => break events,
            Err(PersistError::StorageUnavailable(e))
                if started.elapsed() < Duration::from_secs(60) =>
            {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("reading the journal back: {e}"),
        }
    };
    let seqs: Vec<i64> = events.iter().map(|e| e.sequence_id.0).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "a gap");
    assert_eq!(
        acknowledged,
        seqs[..acknowledged.len()],
        "acknowledged out of order"
    );
    assert!(events.len() <= acknowledged.len() + 1);
    for event in &events {
        assert_eq!(event.payload, payload("n", event.sequence_id.0));
    }
    eprintln!(
        "retry through an election: {} acknowledged, {at_kill} before node {victim} was killed",
        acknowledged.len()
    );
    store.close().await;
}

async fn stopped_leader() {
    let prefix = unique_prefix();
    let setup = store(&cluster_urls(), &prefix, Duration::from_secs(20)).await;
    let _streams = Streams {
        urls: cluster_urls(),
        names: setup.stream_names(),
    };
    let stream = setup.stream_names()[0].clone();
    let old = leader(&stream).await;
    let others: Vec<&str> = (1..=3)
        .filter(|&n| n != old)
        .map(|n| NODES[n - 1])
        .collect();
    // Writer A talks to the leader only; writer B to the two others.
    let a = store(NODES[old - 1], &prefix, Duration::from_secs(3)).await;
    let b = store(&others.join(","), &prefix, Duration::from_secs(30)).await;
    let pid = PersistenceId::new("Stopped", "1");
    for seq in 1..=5 {
        a.write_event(&pid, SequenceId(seq), "A", &payload("a", seq))
            .await
            .unwrap();
    }
    cluster("pause", Some(old));
    // A's write cannot be acknowledged: its node is silent.
    let a_during = a
        .write_event(&pid, SequenceId(6), "A", &payload("a", 6))
        .await;
    assert!(
        matches!(a_during, Err(PersistError::StorageUnavailable(_))),
        "a write through the stopped leader: {a_during:?}"
    );
    // B takes over once the two others elect a leader.
    let highest = b.read_highest_sequence(&pid).await.unwrap();
    assert_eq!(
        highest,
        Some(SequenceId(5)),
        "B sees A's acknowledged events"
    );
    b.write_event(&pid, SequenceId(6), "B", &payload("b", 6))
        .await
        .unwrap();
    b.write_event(&pid, SequenceId(7), "B", &payload("b", 7))
        .await
        .unwrap();
    cluster("resume", Some(old));
    // A, stale, tries again at 6: refused, whatever its silent write became.
    let started = Instant::now();
    loop {
        match a
            .write_event(&pid, SequenceId(6), "A", &payload("a", 6))
            .await
        {
            Err(PersistError::SequenceConflict { sequence_id, .. }) => {
                assert_eq!(sequence_id, SequenceId(6));
                break;
            }
            Err(PersistError::StorageUnavailable(_))
                if started.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("the stale writer after its node came back: {other:?}"),
        }
    }
    // The resumed node may answer as the leader it no longer is for a
    // while, from a log it has not reconciled (even with the write A made
    // while it was cut off, which the cluster never committed): a read
    // whose answers disagree fails as unavailable, and one that agrees
    // may show that view. Read until the cluster has settled on what it
    // acknowledged, for up to 90 s: B's 6 and 7 must be there, A's 6 not.
    let mut expected: Vec<(i64, Vec<u8>)> = (1..=5).map(|s| (s, payload("a", s))).collect();
    expected.push((6, payload("b", 6)));
    expected.push((7, payload("b", 7)));
    let started = Instant::now();
    let mut views = 0;
    loop {
        let seen = match b.read_events(&pid, SequenceId(1)).await {
            Ok(events) => Some(
                events
                    .iter()
                    .map(|e| (e.sequence_id.0, e.payload.clone()))
                    .collect::<Vec<_>>(),
            ),
            Err(PersistError::StorageUnavailable(_)) => None,
            Err(e) => panic!("reading the journal back: {e}"),
        };
        if seen.as_ref() == Some(&expected) {
            break;
        }
        views += 1;
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "one writer per sequence: the cluster never settled on B's events; last read {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("stopped leader: the journal read as acknowledged after {views} unsettled reads");
    a.close().await;
    b.close().await;
    setup.close().await;
}
