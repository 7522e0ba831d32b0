//! The single-writer fence: racing writers on different nodes of the
//! cluster (exactly one wins each sequence, the other is told
//! `SequenceConflict`), and a write whose answer was lost, tried again by
//! the store, recognised as its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dactor_persist::{JournalStorage, NatsStorage, PersistError, PersistenceId, SequenceId};
use libtest_mimic::Trial;

use crate::proxy::{Mode, Proxy};
use crate::support::{NODES, Streams, Use, builder, cluster_trial, server, trial, unique_prefix};

/// Races in the cluster test: ids times sequences.
const IDS: i64 = 20;
const SEQS: i64 = 60;

pub fn single() -> Vec<Trial> {
    vec![trial(
        "fence::single::a_write_whose_answer_was_lost_is_its_own",
        answer_lost,
    )]
}

pub fn cluster() -> Vec<Trial> {
    vec![cluster_trial(
        "fence::cluster::racing_writers_on_different_nodes_win_each_sequence_once",
        Use::Shared,
        racing,
    )]
}

/// Two stores, one connected to node 1 only and one to node 2 only, race
/// for every sequence of 20 ids: 1,200 races. Each is won exactly once,
/// the loser gets the conflict naming the sequence, and the journal holds
/// the winner's event.
async fn racing() {
    let prefix = unique_prefix();
    let connect = |url: &'static str| {
        let prefix = prefix.clone();
        async move {
            Arc::new(
                builder(url, &prefix)
                    .replicas(3)
                    .shards(2)
                    .connect()
                    .await
                    .unwrap_or_else(|e| panic!("connect to {url}: {e}")),
            )
        }
    };
    let a = connect(NODES[0]).await;
    let b = connect(NODES[1]).await;
    let _streams = Streams {
        urls: NODES.join(","),
        names: a.stream_names(),
    };
    let started = Instant::now();
    let mut wins = [0usize; 2];
    for i in 0..IDS {
        let pid = PersistenceId::new("Race", &i.to_string());
        for seq in 1..=SEQS {
            let (pa, pb) = (format!("a{seq}"), format!("b{seq}"));
            let wa = a.write_event(&pid, SequenceId(seq), "A", pa.as_bytes());
            let wb = b.write_event(&pid, SequenceId(seq), "B", pb.as_bytes());
            // Each goes first (is polled first) in half of the races.
            let (ra, rb) = if seq % 2 == 0 {
                tokio::join!(wa, wb)
            } else {
                let (rb, ra) = tokio::join!(wb, wa);
                (ra, rb)
            };
            let winner = match (&ra, &rb) {
                (Ok(()), Err(e)) if is_conflict(e, &pid, seq) => 0,
                (Err(e), Ok(())) if is_conflict(e, &pid, seq) => 1,
                _ => panic!(
                    "race {i}/{seq}: expected one win and one conflict, got {ra:?} and {rb:?}"
                ),
            };
            wins[winner] += 1;
        }
        let events = a.read_events(&pid, SequenceId(1)).await.unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.sequence_id.0).collect();
        assert_eq!(seqs, (1..=SEQS).collect::<Vec<_>>(), "id {i}");
        // Read through the other node too: the same journal.
        assert_eq!(b.read_events(&pid, SequenceId(1)).await.unwrap(), events);
    }
    let races = IDS * SEQS;
    eprintln!(
        "fence: {races} races on two nodes in {:?}: node 1 won {}, node 2 won {}, never both",
        started.elapsed(),
        wins[0],
        wins[1]
    );
    a.close().await;
    b.close().await;
}

fn is_conflict(e: &PersistError, pid: &PersistenceId, seq: i64) -> bool {
    matches!(e, PersistError::SequenceConflict { persistence_id, sequence_id }
        if persistence_id == pid && *sequence_id == SequenceId(seq))
}

/// The server stores a write but its answer is lost (a proxy drops what the
/// server says, then cuts the connection). The store tries the write again
/// on a new connection; the server recognises its message id and the store
/// its nonce: the write succeeds, and is stored once.
async fn answer_lost() {
    let url = server();
    let upstream = url
        .trim_start_matches("nats://")
        .split(',')
        .next()
        .unwrap_or_default()
        .to_owned();
    let proxy = Proxy::start(upstream).await;
    let prefix = unique_prefix();
    let store: NatsStorage = builder(&format!("nats://127.0.0.1:{}", proxy.port), &prefix)
        .request_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect through the proxy");
    let _streams = Streams {
        urls: url.clone(),
        names: store.stream_names(),
    };
    let pid = PersistenceId::new("Lost", "1");
    store
        .write_event(&pid, SequenceId(1), "E", b"one")
        .await
        .unwrap();

    proxy.set(Mode::Deaf);
    let writing = {
        let store = store.clone();
        let pid = pid.clone();
        tokio::spawn(async move { store.write_event(&pid, SequenceId(2), "E", b"two").await })
    };
    // The write reaches the server and is stored; its answer is dropped.
    let direct = crate::support::fresh_view(&url, &prefix).await;
    let stored_at = Instant::now();
    loop {
        if direct.read_highest_sequence(&pid).await.unwrap() == Some(SequenceId(2)) {
            break;
        }
        assert!(
            stored_at.elapsed() < Duration::from_secs(10),
            "the write never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !writing.is_finished(),
        "the write was answered through a deaf proxy"
    );
    proxy.set(Mode::Forward); // closes the deaf connection; the client reconnects
    let result = writing.await.unwrap();
    assert!(
        result.is_ok(),
        "the retried write was not recognised as its own: {result:?}"
    );

    let events = direct.read_events(&pid, SequenceId(1)).await.unwrap();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    assert_eq!(
        payloads,
        [b"one".as_slice(), b"two"],
        "stored once, in order"
    );
    // The journal goes on from there, through the same store.
    store
        .write_event(&pid, SequenceId(3), "E", b"three")
        .await
        .unwrap();
    assert!(matches!(
        store.write_event(&pid, SequenceId(2), "E", b"again").await,
        Err(PersistError::SequenceConflict { .. })
    ));
    store.close().await;
    direct.close().await;
}
