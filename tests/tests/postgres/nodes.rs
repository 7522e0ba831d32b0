//! Several nodes: two OS processes host the same persistence id against the
//! same database and persist as fast as they can. The primary key fences
//! them: afterwards the journal holds one gap-free, duplicate-free sequence,
//! every acknowledged event is there as its node wrote it, and the node that
//! lost a sequence got the conflict and its actor stopped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dactor_persist::{JournalStorage, PersistenceId, SequenceId};
use dactor_persist_tests::journaled::payload;
use libtest_mimic::Trial;

use crate::support::{Schema, server, trial};

/// Events the two nodes write together.
const TARGET: i64 = 1_500;

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "nodes::two_processes_one_id_one_gap_free_journal",
        two_processes,
    )]
}

/// What one node printed.
#[derive(Default, Debug)]
struct Report {
    acks: Vec<i64>,
    conflicts: Vec<(i64, String)>,
    done: bool,
}

fn start(schema: &Schema, id: &PersistenceId, node: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pg_node"))
        .args([&server(), &schema.name, &id.0, node, &TARGET.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pg_node")
}

/// Reads a node's output until it ends.
fn collect(child: &mut Child, node: &str, ready: std::sync::mpsc::Sender<()>) -> Report {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut report = Report::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read pg_node output");
        let mut words = line.splitn(4, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("ready"), _, _) => {
                let _ = ready.send(());
            }
            (Some("ack"), Some(seq), _) => report.acks.push(seq.parse().expect("sequence")),
            (Some("conflict"), Some(seq), Some(status)) => report
                .conflicts
                .push((seq.parse().expect("sequence"), status.to_owned())),
            (Some("done"), _, _) => report.done = true,
            _ => panic!("node {node} printed {line:?}"),
        }
    }
    report
}

async fn two_processes() {
    let schema = Schema::new("nodes");
    // Migrate before the nodes start, so that they race on the journal only.
    let store = schema.store().await;
    let id = PersistenceId::new("Shared", "account-1");

    let nodes = ["node-a", "node-b"];
    let mut children: Vec<Child> = nodes.iter().map(|n| start(&schema, &id, n)).collect();
    let mut stdins: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdin.take().expect("piped stdin"))
        .collect();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let readers: Vec<_> = children
        .into_iter()
        .zip(nodes)
        .map(|(mut child, node)| {
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                let report = collect(&mut child, node, ready);
                let status = child.wait().expect("wait for pg_node");
                (node, status, report)
            })
        })
        .collect();
    for _ in &nodes {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a node did not connect within 30 s");
    }
    // Both go at once.
    for stdin in &mut stdins {
        writeln!(stdin, "go").expect("start a node");
    }
    drop(stdins);
    let started = Instant::now();
    let reports: Vec<_> = readers
        .into_iter()
        .map(|r| r.join().expect("reader thread"))
        .collect();
    let elapsed = started.elapsed();

    let mut owner: BTreeMap<i64, &str> = BTreeMap::new();
    let mut conflicts = 0;
    for (node, status, report) in &reports {
        assert!(status.success(), "{node} exited with {status}");
        assert!(report.done, "{node} did not finish");
        for seq in &report.acks {
            assert!(
                owner.insert(*seq, node).is_none(),
                "sequence {seq} acknowledged twice"
            );
        }
        for (seq, actor_status) in &report.conflicts {
            assert_eq!(
                actor_status, "stopped",
                "{node}: conflict at {seq} left the actor running"
            );
            conflicts += 1;
        }
    }
    assert!(conflicts >= 1, "the nodes never collided: {reports:?}");

    let events = store.read_events(&id, SequenceId(0)).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.sequence_id.0).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "the journal has a gap or a duplicate");
    assert!(seqs.len() as i64 >= TARGET, "only {} events", seqs.len());
    for event in &events {
        let seq = event.sequence_id.0;
        let node = owner
            .get(&seq)
            .unwrap_or_else(|| panic!("event {seq} is in the journal but nobody acknowledged it"));
        assert_eq!(
            event.payload,
            payload(node, seq),
            "event {seq} is not {node}'s"
        );
    }
    assert_eq!(
        owner.len(),
        events.len(),
        "an acknowledged event is missing"
    );
    let per_node: Vec<String> = reports
        .iter()
        .map(|(node, _, r)| {
            format!(
                "{node}: {} events, {} conflicts",
                r.acks.len(),
                r.conflicts.len()
            )
        })
        .collect();
    eprintln!(
        "nodes: {} events in {elapsed:.2?}; {}",
        events.len(),
        per_node.join("; ")
    );
    store.close().await;
}
