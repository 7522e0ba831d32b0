//! Projections on PostgreSQL: two processes running the same projection
//! while one is killed and restarted apply every event exactly once and
//! never move the offset back; a late commit reaches a projection once.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dactor_persist::projection::{Projection, ProjectionStore};
use dactor_persist::query::{EventQueries, Offset};
use dactor_persist::*;
use dactor_persist_tests::projection::{Applied, PG_ENTITY, PG_NAME};
use libtest_mimic::Trial;

use crate::support::{Schema, raw, server, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "projections::two_processes_apply_each_event_once",
            two_processes,
        ),
        trial("projections::a_late_commit_is_applied_once", late_commit),
    ]
}

/// Starts a child running the projection as `node`, once it says so.
fn start(schema: &Schema, node: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pg_projection_child"))
        .arg(server())
        .arg(&schema.name)
        .arg(node)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the projection child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the child");
    assert_eq!(line.trim(), "running", "the child {node} did not start");
    child
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Rows of the read model: (applications, distinct events, nodes).
async fn applied(schema: &Schema) -> (i64, i64, i64) {
    let row = raw()
        .await
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT (pid, seq)), count(DISTINCT node) FROM {}.applied",
                schema.quoted()
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

async fn two_processes() {
    let schema = Schema::new("proj2");
    let store = schema.store().await;
    raw()
        .await
        .batch_execute(&Applied::create_table(&schema.quoted()))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (store, stop) = (store.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let pid = PersistenceId::new(PG_ENTITY, &format!("w{w}"));
            let mut seq = 0i64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                store
                    .write_event(&pid, SequenceId(seq), "E", b"x")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            seq
        }));
    }
    // The offset, sampled all along: it must never go back.
    let sampler = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last: Option<Offset> = None;
            let mut samples = 0;
            while !stop.load(Ordering::Relaxed) {
                let record = store.load_projection(PG_NAME).await.unwrap();
                assert!(
                    record.offset >= last,
                    "the offset went back from {last:?} to {:?}",
                    record.offset
                );
                last = record.offset;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            samples
        })
    };
    let pause = || tokio::time::sleep(Duration::from_millis(600));
    let mut a = start(&schema, "a");
    let mut b = start(&schema, "b");
    pause().await;
    kill(&mut a);
    pause().await;
    let mut a = start(&schema, "a");
    pause().await;
    kill(&mut b);
    pause().await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }
    let samples = sampler.await.unwrap();
    // The survivor catches up with everything written.
    let head = store.event_head().await.unwrap();
    let mut caught_up = false;
    for _ in 0..400 {
        if store.load_projection(PG_NAME).await.unwrap().offset >= Some(head) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(&mut a);
    assert!(caught_up, "the projection did not catch up with the head");
    let (applications, distinct, nodes) = applied(&schema).await;
    assert_eq!(
        (applications, distinct),
        (written, written),
        "every event applied exactly once ({samples} offset samples)"
    );
    assert_eq!(nodes, 2, "both processes applied events: the lease moved");
    store.close().await;
}

/// Appends an event by hand in `tx`, which the caller leaves open.
async fn append(tx: &tokio_postgres::Transaction<'_>, schema: &Schema, pid: &str) {
    let payload = b"late".to_vec();
    let mut h = crc32fast::Hasher::new();
    h.update(b"E2");
    h.update(&(pid.len() as u64).to_le_bytes());
    h.update(pid.as_bytes());
    h.update(&1i64.to_le_bytes());
    h.update(&1u64.to_le_bytes());
    h.update(b"E");
    h.update(&payload);
    let checksum = i64::from(h.finalize());
    tx.execute(
        &format!(
            "INSERT INTO {}.journal (persistence_id, sequence, event_type, payload, checksum, write_id)
             VALUES ($1, 1, 'E', $2, $3, 0)",
            schema.quoted()
        ),
        &[&pid, &payload, &checksum],
    )
    .await
    .unwrap();
}

async fn late_commit() {
    let schema = Schema::new("projlate");
    let store = Arc::new(
        schema
            .builder()
            .poll_interval(Duration::from_millis(20))
            .connect()
            .await
            .unwrap(),
    );
    raw()
        .await
        .batch_execute(&Applied::create_table(&schema.quoted()))
        .await
        .unwrap();
    let handle = Projection::by_entity_type(PG_NAME, PG_ENTITY)
        .batch(10, Duration::from_millis(1))
        .check_interval(Duration::from_millis(50))
        .run_in_postgres(
            store.clone(),
            Applied {
                schema: schema.quoted(),
                node: "n".into(),
            },
        )
        .unwrap();
    // T1 appends for A and stays open; B commits after it.
    let mut t1_client = raw().await;
    let t1 = t1_client.transaction().await.unwrap();
    append(&t1, &schema, "Pj:A").await;
    store
        .write_event(
            &PersistenceId::new(PG_ENTITY, "B"),
            SequenceId(1),
            "E",
            b"b",
        )
        .await
        .unwrap();
    let rows = |schema: &Schema| {
        let q = format!("SELECT pid FROM {}.applied ORDER BY pid", schema.quoted());
        async move {
            raw()
                .await
                .query(&q, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    // Held back behind T1: not even B is applied while A may still commit
    // below it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        rows(&schema).await.is_empty(),
        "applied past an open transaction"
    );
    t1.commit().await.unwrap();
    let head = store.event_head().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), handle.wait_for(head))
        .await
        .expect("applied within 20 s")
        .unwrap();
    let applied: Vec<String> = rows(&schema).await;
    assert_eq!(
        applied,
        ["Pj:A", "Pj:B"],
        "each once, the late one included"
    );
    let status = handle.stop().await;
    assert_eq!(status.events_handled, 2);
    let distinct: BTreeSet<String> = applied.into_iter().collect();
    assert_eq!(distinct.len(), 2);
    store.close().await;
}
