//! Outages: the database is cut away in the middle of a write stream (through
//! a TCP proxy: first a partition that only timeouts notice, then a server
//! that closes every connection) and brought back. Writes during the outage
//! fail with `StorageUnavailable` within the configured bound; the pool
//! reconnects; an actor with the `Retry` persist policy carries on once the
//! database is back; every acknowledged event is in the journal afterwards.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dactor_persist::runtime::{ActorStatus, Runtime};
use dactor_persist::{
    JournalStorage, PersistError, PersistenceId, PostgresStorage, PostgresStorageProvider,
    SequenceId,
};
use dactor_persist_tests::journaled::{Append, Journaled, payload};
use libtest_mimic::Trial;

use crate::proxy::{Mode, Proxy};
use crate::support::{Schema, server, trial};

/// The store's bound on every operation in this test.
const BOUND: Duration = Duration::from_secs(1);
/// How late past the bound a failure may come (scheduling on a busy machine).
const SLACK: Duration = Duration::from_millis(750);

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "outage::writes_fail_in_bounds_and_resume_after_an_outage",
            outage,
        ),
        trial(
            "outage::a_write_committed_unseen_is_settled_when_retried",
            committed_unseen,
        ),
    ]
}

/// `host:port` of the test server, and its URL with that replaced by the proxy.
fn through_proxy(url: &str, proxy_port: u16) -> (String, String) {
    let config: tokio_postgres::Config = url.parse().expect("the test URL parses");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => panic!("the outage test needs a TCP host in the test URL"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // postgres://[user[:password]@]host[:port]/rest
    let (scheme, rest) = url
        .split_once("://")
        .expect("the outage test needs a postgres:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    let proxied = format!(
        "{scheme}://{}127.0.0.1:{proxy_port}{path}",
        userinfo.unwrap_or_default()
    );
    (format!("{host}:{port}"), proxied)
}

/// A direct write while the database is cut off: it must fail as
/// `StorageUnavailable`, within the bound.
async fn probe(store: &PostgresStorage, n: i64) {
    let started = Instant::now();
    let result = store
        .write_event(
            &PersistenceId::new("Probe", &n.to_string()),
            SequenceId(1),
            "P",
            b"p",
        )
        .await;
    let took = started.elapsed();
    match result {
        Err(PersistError::StorageUnavailable(msg)) => {
            assert!(
                took <= BOUND + SLACK,
                "failed after {took:?}, bound {BOUND:?}: {msg}"
            )
        }
        other => panic!("a write during the outage: expected StorageUnavailable, got {other:?}"),
    }
}

/// Waits until the actor has acknowledged `more` events past `from`.
async fn progress(acks: &Mutex<Vec<i64>>, from: usize, more: usize, what: &str) {
    let started = Instant::now();
    while acks.lock().unwrap().len() < from + more {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no progress {what}: {} acknowledged",
            acks.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn outage() {
    let schema = Schema::new("outage");
    let direct = schema.store().await; // migrates; reads the journal afterwards
    let url = server();
    let probe_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (upstream, _) = through_proxy(&url, probe_port);
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = through_proxy(&url, proxy.port);
    let store = Arc::new(
        PostgresStorage::builder(proxied)
            .schema(&schema.name)
            .pool_size(4)
            .connect_timeout(BOUND)
            .operation_timeout(BOUND)
            .connect()
            .await
            .expect("connect through the proxy"),
    );

    let host = Runtime::builder()
        .storage(PostgresStorageProvider::from_storage(store.clone()))
        .build();
    let id = PersistenceId::new("Outage", "1");
    let actor = host
        .spawn_event_sourced(Journaled::new(id.clone(), "n", Journaled::retrying()))
        .await
        .unwrap();
    actor.ready().await.unwrap();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let writing = {
        let (actor, acks) = (actor.clone(), acks.clone());
        tokio::spawn(async move {
            loop {
                match actor.ask(Append).await {
                    Ok(Ok(seq)) => acks.lock().unwrap().push(seq.0),
                    // Stopped by the test at the end.
                    Err(PersistError::ActorStopped { .. }) => return,
                    Ok(Err(e)) | Err(e) => panic!("the retrying actor failed: {e}"),
                }
            }
        })
    };

    progress(&acks, 0, 100, "before the outage").await;
    for (n, cut) in [(1, Mode::Blackhole), (2, Mode::Refuse)] {
        proxy.set(cut);
        probe(&store, n * 10).await;
        probe(&store, n * 10 + 1).await;
        let during = acks.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Nothing was acknowledged while the database was away (one write may
        // have been on its way back when the cut came).
        assert!(
            acks.lock().unwrap().len() <= during + 1,
            "acknowledged during {cut:?}"
        );
        proxy.set(Mode::Forward);
        let restored = acks.lock().unwrap().len();
        progress(&acks, restored, 100, &format!("after the {cut:?} outage")).await;
        assert_eq!(actor.status(), ActorStatus::Running);
    }

    actor.stop().await;
    writing.await.unwrap();
    host.shutdown().await;
    store.close().await;

    let acknowledged = acks.lock().unwrap().clone();
    let events = direct.read_events(&id, SequenceId(0)).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.sequence_id.0).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "the journal has a gap");
    assert_eq!(
        acknowledged,
        expected[..acknowledged.len()],
        "acknowledged out of order"
    );
    for event in &events {
        assert_eq!(event.payload, payload("n", event.sequence_id.0));
    }
    // Every acknowledged event is there; at most the last, unanswered one more.
    assert!(events.len() <= acknowledged.len() + 1);
    eprintln!(
        "outage: {} events acknowledged, all stored",
        acknowledged.len()
    );
    direct.close().await;
}

/// The server commits a write but its answer is lost (the proxy drops the
/// answers): the caller gets `StorageUnavailable` within the bound. Retried
/// with the same contents, the write succeeds, since the rows are its own;
/// a different write at those sequences is still a conflict, and so is the
/// same write from another store (another node).
async fn committed_unseen() {
    let schema = Schema::new("unseen");
    let direct = schema.store().await;
    let url = server();
    let (upstream, _) = through_proxy(&url, 1);
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = through_proxy(&url, proxy.port);
    let store = PostgresStorage::builder(proxied)
        .schema(&schema.name)
        .pool_size(2)
        .writers(1)
        .connect_timeout(BOUND)
        .operation_timeout(BOUND)
        .connect()
        .await
        .expect("connect through the proxy");
    let single = PersistenceId::new("Unseen", "single");
    let batch = PersistenceId::new("Unseen", "batch");
    let batch_entries: Vec<(SequenceId, &str, &[u8])> = vec![
        (SequenceId(1), "B", b"one".as_slice()),
        (SequenceId(2), "B", b"two".as_slice()),
    ];
    // Warm the pool: both connections open before the answers are dropped.
    store
        .write_event(&single, SequenceId(1), "A", b"a")
        .await
        .unwrap();

    proxy.set(Mode::Deaf);
    match store
        .write_event(&single, SequenceId(2), "A", b"unseen")
        .await
    {
        Err(PersistError::StorageUnavailable(msg)) => {
            assert!(msg.contains("may or may not"), "{msg}")
        }
        other => panic!("a write whose answer was lost: {other:?}"),
    }
    // The batch needs a transaction (and, its connection gone, a new
    // connection): it never gets as far as its INSERT.
    match store.write_event_batch(&batch, &batch_entries).await {
        Err(PersistError::StorageUnavailable(_)) => {}
        other => panic!("a batch whose answers were lost: {other:?}"),
    }
    proxy.set(Mode::Forward);
    // The server did store the single event (one autocommit statement), as
    // the direct connection shows. The batch runs in a transaction whose
    // BEGIN was never answered: it stalled there and is not stored; its
    // retry must then store it, once.
    assert_eq!(
        direct.read_highest_sequence(&single).await.unwrap(),
        Some(SequenceId(2))
    );

    // Another node writing the very same event is refused: the rows are not its own.
    match direct
        .write_event(&single, SequenceId(2), "A", b"unseen")
        .await
    {
        Err(PersistError::SequenceConflict { .. }) => {}
        other => panic!("the same write from another store: {other:?}"),
    }
    // The same store retrying with different contents is refused too.
    match store
        .write_event(&single, SequenceId(2), "A", b"changed")
        .await
    {
        Err(PersistError::SequenceConflict { .. }) => {}
        other => panic!("a different write at the unseen sequence: {other:?}"),
    }
    // Retrying the very writes settles them as stored, once each.
    store
        .write_event(&single, SequenceId(2), "A", b"unseen")
        .await
        .expect("the retried single write");
    store
        .write_event_batch(&batch, &batch_entries)
        .await
        .expect("the retried batch");
    let events = direct.read_events(&batch, SequenceId(0)).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].payload, b"two");
    // Settled: a third try is an ordinary conflict again.
    match store
        .write_event(&single, SequenceId(2), "A", b"unseen")
        .await
    {
        Err(PersistError::SequenceConflict { .. }) => {}
        other => panic!("a write already settled, tried again: {other:?}"),
    }
    store.close().await;
    direct.close().await;
}
