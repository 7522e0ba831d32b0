//! The SQLite store beyond the conformance suite: the file on disk, damaged
//! rows, bad files, group commit, closing, and recovery through it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::Poll;

use dactor_persist::*;
use rusqlite::Connection;
use tempfile::TempDir;

fn pid(id: &str) -> PersistenceId {
    PersistenceId::new("Counter", id)
}

fn temp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.db");
    (dir, path)
}

/// Runs SQL straight on the file, as a user (or a disk) damaging it would.
fn tamper(path: &Path, sql: &str) {
    let conn = Connection::open(path).expect("open the file with rusqlite");
    let changed = conn.execute(sql, []).expect("tamper");
    assert!(changed > 0, "the tampering statement changed no row: {sql}");
}

// ---------------------------------------------------------------------------
// The file.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn events_snapshots_and_state_survive_closing_and_reopening() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    store
        .write_event_batch(
            &pid("a"),
            &[
                (SequenceId(1), "Added", b"1"),
                (SequenceId(2), "Added", b"2"),
            ],
        )
        .await
        .unwrap();
    store
        .delete_events_to(&pid("a"), SequenceId(1))
        .await
        .unwrap();
    store
        .save_snapshot(&pid("a"), SequenceId(2), b"snap")
        .await
        .unwrap();
    store.save_state(&pid("s"), b"state").await.unwrap();
    store.close().await;

    let again = SqliteStorage::open(&path).await.unwrap();
    let events = again.read_events(&pid("a"), SequenceId(0)).await.unwrap();
    assert_eq!(
        events,
        vec![JournalEntry {
            sequence_id: SequenceId(2),
            event_type: "Added".into(),
            payload: b"2".to_vec()
        }]
    );
    assert_eq!(
        again.read_highest_sequence(&pid("a")).await.unwrap(),
        Some(SequenceId(2))
    );
    // The delete mark survived too: 1 is still used up.
    assert!(matches!(
        again
            .write_event(&pid("a"), SequenceId(1), "Added", b"x")
            .await,
        Err(PersistError::SequenceConflict { .. })
    ));
    let snap = again
        .load_latest_snapshot(&pid("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (snap.sequence_id, snap.payload),
        (SequenceId(2), b"snap".to_vec())
    );
    assert_eq!(
        again.load_state(&pid("s")).await.unwrap(),
        Some(b"state".to_vec())
    );
}

#[tokio::test]
async fn a_dropped_store_has_committed_every_acknowledged_write() {
    let (_dir, path) = temp();
    {
        let store = SqliteStorage::open(&path).await.unwrap();
        for seq in 1..=20 {
            store
                .write_event(&pid("d"), SequenceId(seq), "E", &[seq as u8])
                .await
                .unwrap();
        }
        // Dropped without close().
    }
    let again = SqliteStorage::open(&path).await.unwrap();
    assert_eq!(
        again.read_highest_sequence(&pid("d")).await.unwrap(),
        Some(SequenceId(20))
    );
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_its_schema_version_recorded() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    store.close().await;
    // Opening again applies nothing twice.
    SqliteStorage::open(&path).await.unwrap().close().await;

    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let versions: Vec<(i64, String)> = conn
        .prepare("SELECT version, name FROM dactor_persist_schema ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        vec![
            (1, "init".to_owned()),
            (2, "checksums_cover_ids".to_owned()),
            (3, "journal_log".to_owned()),
            (4, "projections".to_owned())
        ]
    );
    assert_eq!(SqliteStorage::schema_version(), 4);
}

#[tokio::test]
async fn missing_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("store.db");
    let store = SqliteStorage::open(&path).await.unwrap();
    assert_eq!(store.path(), path.as_path());
    store.close().await;
    assert!(path.is_file());
}

// ---------------------------------------------------------------------------
// Bad input: clear errors naming the path, files left as they were.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_path_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let path = blocker.join("sub").join("store.db");
    let err = SqliteStorage::open(&path).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PersistError::StorageUnavailable(_)),
        "{err:?}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let (dir, path) = temp();
    let text = "name,balance\nalice,10\nbob,20\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = SqliteStorage::open(&path).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PersistError::IncompatibleStore(_)), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a SQLite database"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "no -wal or -shm file was left beside it");
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_and_left_untouched() {
    let (_dir, path) = temp();
    SqliteStorage::open(&path).await.unwrap().close().await;
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO dactor_persist_schema (version, name) VALUES (999, 'from the future')",
            [],
        )
        .unwrap();
        // Fold the WAL into the file, so that the bytes below are the whole database.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStorage::open(&path).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PersistError::IncompatibleStore(_)), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("999"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed"
    );
}

// ---------------------------------------------------------------------------
// Damaged rows: the right error, the right sequence, never a panic.
// ---------------------------------------------------------------------------

async fn seeded(path: &Path) -> SqliteStorage {
    let store = SqliteStorage::open(path).await.unwrap();
    for seq in 1..=5 {
        store
            .write_event(&pid("c"), SequenceId(seq), "Delta", &(seq).to_le_bytes())
            .await
            .unwrap();
    }
    store
}

#[tokio::test]
async fn a_damaged_event_payload_is_a_corrupt_entry_at_its_sequence() {
    let (_dir, path) = temp();
    let store = seeded(&path).await;
    // Event 3's payload is 3i64 in little-endian; make it 4: same length,
    // one byte different, still a valid event for the decoder.
    tamper(
        &path,
        "UPDATE events SET payload = X'0400000000000000' \
         WHERE stream = (SELECT id FROM streams WHERE persistence_id = 'Counter:c') \
         AND sequence = 3",
    );
    for read in [
        store.read_events(&pid("c"), SequenceId(1)).await,
        store.read_events_page(&pid("c"), SequenceId(2), 10).await,
    ] {
        match read {
            Err(PersistError::CorruptEntry {
                sequence_id,
                detail,
            }) => {
                assert_eq!(sequence_id, SequenceId(3));
                assert!(detail.contains("Counter:c"), "{detail}");
                assert!(detail.contains("checksum"), "{detail}");
            }
            other => panic!("expected CorruptEntry at 3, got {other:?}"),
        }
    }
    // The events before it still read; so do the ones after.
    let head = store
        .read_events_page(&pid("c"), SequenceId(1), 2)
        .await
        .unwrap();
    assert_eq!(head.len(), 2);
    let tail = store.read_events(&pid("c"), SequenceId(4)).await.unwrap();
    assert_eq!(tail.len(), 2);
}

#[tokio::test]
async fn a_damaged_event_type_sequence_or_checksum_is_caught() {
    let (_dir, path) = temp();
    let store = seeded(&path).await;
    let cases = [
        (
            "UPDATE events SET event_type = 'Deltb' WHERE sequence = 2",
            2,
        ),
        (
            "UPDATE events SET checksum = checksum + 1 WHERE sequence = 4",
            4,
        ),
        (
            "UPDATE events SET payload = 'text, not bytes' WHERE sequence = 5",
            5,
        ),
    ];
    for (sql, seq) in cases {
        tamper(&path, sql);
        match store.read_events(&pid("c"), SequenceId(seq)).await {
            Err(PersistError::CorruptEntry { sequence_id, .. }) => {
                assert_eq!(sequence_id, SequenceId(seq), "{sql}")
            }
            other => panic!("{sql}: expected CorruptEntry at {seq}, got {other:?}"),
        }
    }
    // Swapping two rows' payloads: each checksum covers its own sequence.
    let (_dir2, path2) = temp();
    let store2 = SqliteStorage::open(&path2).await.unwrap();
    store2
        .write_event_batch(
            &pid("s"),
            &[(SequenceId(1), "E", b"same"), (SequenceId(2), "E", b"same")],
        )
        .await
        .unwrap();
    tamper(
        &path2,
        "UPDATE events SET checksum = (SELECT checksum FROM events WHERE sequence = 1) WHERE sequence = 2",
    );
    assert!(matches!(
        store2.read_events(&pid("s"), SequenceId(1)).await,
        Err(PersistError::CorruptEntry {
            sequence_id: SequenceId(2),
            ..
        })
    ));
}

#[tokio::test]
async fn a_damaged_snapshot_is_corrupt_snapshot_and_recovery_replays_the_journal() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    let mut counter = Counter::new("snap");
    counter.persist_batch(vec![1, 2, 3], &store).await.unwrap();
    counter.snapshot(&store).await.unwrap();
    tamper(
        &path,
        "UPDATE snapshots SET payload = zeroblob(8) WHERE persistence_id = 'Counter:snap'",
    );
    match store.load_latest_snapshot(&pid("snap")).await {
        Err(PersistError::CorruptSnapshot {
            persistence_id,
            sequence_id,
            detail,
        }) => {
            assert_eq!(persistence_id, pid("snap"));
            assert_eq!(sequence_id, SequenceId(3));
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected CorruptSnapshot, got {other:?}"),
    }
    // The snapshot is a cache: the journal still has everything.
    let mut again = Counter::new("snap");
    recover_event_sourced(&mut again, &store, &store)
        .await
        .unwrap();
    assert_eq!((again.value, again.seq), (6, SequenceId(3)));
}

#[tokio::test]
async fn a_damaged_state_is_corrupt_state() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    store.save_state(&pid("st"), b"settings v1").await.unwrap();
    tamper(
        &path,
        "UPDATE states SET payload = CAST('settings v2' AS BLOB) WHERE persistence_id = 'Counter:st'",
    );
    match store.load_state(&pid("st")).await {
        Err(PersistError::CorruptState {
            persistence_id,
            detail,
        }) => {
            assert_eq!(persistence_id, pid("st"));
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected CorruptState, got {other:?}"),
    }
    // Saving again replaces the damaged row.
    store.save_state(&pid("st"), b"settings v3").await.unwrap();
    assert_eq!(
        store.load_state(&pid("st")).await.unwrap(),
        Some(b"settings v3".to_vec())
    );
}

// ---------------------------------------------------------------------------
// Group commit, writers and closing.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_writes_share_commits_and_a_conflict_fails_alone() {
    let (_dir, path) = temp();
    let store = Arc::new(SqliteStorage::open(&path).await.unwrap());
    store
        .write_event(&pid("taken"), SequenceId(1), "E", b"first")
        .await
        .unwrap();
    let before = store.stats();

    // Polled together on this one thread, so all are queued before the
    // writer has committed much: they land in few groups.
    let singles = (0..200).map(|i| {
        let store = store.clone();
        async move {
            store
                .write_event(&pid(&format!("g{i}")), SequenceId(1), "E", b"ok")
                .await
        }
    });
    let taken_id = pid("taken");
    let conflict = store.write_event(&taken_id, SequenceId(1), "E", b"second");
    let bad_batch = store.write_event_batch(
        &taken_id,
        &[
            (SequenceId(2), "E", b"2"),
            (SequenceId(1), "E", b"1"),
            (SequenceId(3), "E", b"3"),
        ],
    );
    let (singles, conflict, bad_batch) =
        tokio::join!(futures_join_all(singles.collect()), conflict, bad_batch);

    assert!(singles.iter().all(Result::is_ok), "{singles:?}");
    assert!(matches!(
        conflict,
        Err(PersistError::SequenceConflict {
            sequence_id: SequenceId(1),
            ..
        })
    ));
    assert!(matches!(
        bad_batch,
        Err(PersistError::SequenceConflict {
            sequence_id: SequenceId(1),
            ..
        })
    ));
    let taken = store
        .read_events(&pid("taken"), SequenceId(0))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "nothing of the failed batch was stored");
    assert_eq!(taken[0].payload, b"first");
    for i in 0..200 {
        assert_eq!(
            store
                .read_highest_sequence(&pid(&format!("g{i}")))
                .await
                .unwrap(),
            Some(SequenceId(1))
        );
    }

    let after = store.stats();
    let requests = after.requests - before.requests;
    let commits = after.commits - before.commits;
    assert_eq!(requests, 202);
    println!("202 concurrent writes in {commits} commits");
    assert!(
        commits <= 40,
        "202 concurrent writes took {commits} commits: they were not grouped"
    );
}

/// Polls every future on the current task until all are done, so that all
/// of them send their request before any waits.
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *slot = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[tokio::test]
async fn group_size_one_commits_each_write_alone() {
    let (_dir, path) = temp();
    let store = Arc::new(
        SqliteStorage::builder(&path)
            .max_group_size(1)
            .durability(Durability::Relaxed)
            .open()
            .await
            .unwrap(),
    );
    let writes = (0..20).map(|i| {
        let store = store.clone();
        async move {
            store
                .write_event(&pid(&format!("one{i}")), SequenceId(1), "E", b"x")
                .await
        }
    });
    let results = futures_join_all(writes.collect()).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(store.stats().commits, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_win_each_sequence_exactly_once() {
    let (_dir, path) = temp();
    let a = Arc::new(SqliteStorage::open(&path).await.unwrap());
    let b = Arc::new(SqliteStorage::open(&path).await.unwrap());
    let race = |store: Arc<SqliteStorage>, name: &'static str| {
        tokio::spawn(async move {
            let mut won = Vec::new();
            for seq in 1..=30 {
                match store
                    .write_event(&pid("fence"), SequenceId(seq), name, name.as_bytes())
                    .await
                {
                    Ok(()) => won.push(seq),
                    Err(PersistError::SequenceConflict { .. }) => {}
                    Err(other) => panic!("{name} at {seq}: {other}"),
                }
            }
            won
        })
    };
    let (won_a, won_b) = tokio::join!(race(a.clone(), "a"), race(b.clone(), "b"));
    let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
    let mut all: Vec<i64> = won_a.iter().chain(&won_b).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=30).collect::<Vec<_>>(),
        "a won {won_a:?}, b won {won_b:?}"
    );
    for entry in a.read_events(&pid("fence"), SequenceId(1)).await.unwrap() {
        let winner = if won_a.contains(&entry.sequence_id.0) {
            "a"
        } else {
            "b"
        };
        assert_eq!(entry.event_type, winner);
    }
}

#[tokio::test]
async fn after_close_every_operation_fails_clearly() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    store
        .write_event(&pid("x"), SequenceId(1), "E", b"1")
        .await
        .unwrap();
    store.close().await;
    store.close().await; // twice is fine
    for err in [
        store
            .write_event(&pid("x"), SequenceId(2), "E", b"2")
            .await
            .unwrap_err(),
        store
            .read_events(&pid("x"), SequenceId(1))
            .await
            .unwrap_err(),
        store.save_state(&pid("x"), b"s").await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, PersistError::StorageUnavailable(m) if m.contains("closed") && m.contains(&path.display().to_string())),
            "{err:?}"
        );
    }
    let again = SqliteStorage::open(&path).await.unwrap();
    assert_eq!(
        again.read_highest_sequence(&pid("x")).await.unwrap(),
        Some(SequenceId(1))
    );
}

#[tokio::test]
async fn the_provider_hands_out_the_one_store() {
    let (_dir, path) = temp();
    let provider = SqliteStorageProvider::open(&path).await.unwrap();
    let id = pid("p");
    let journal = provider.journal(&id).unwrap();
    journal
        .write_event(&id, SequenceId(1), "E", b"x")
        .await
        .unwrap();
    provider
        .state(&id)
        .unwrap()
        .save_state(&id, b"s")
        .await
        .unwrap();
    provider
        .snapshots(&id)
        .unwrap()
        .save_snapshot(&id, SequenceId(1), b"snap")
        .await
        .unwrap();
    let store = provider.storage();
    assert_eq!(
        store.read_highest_sequence(&id).await.unwrap(),
        Some(SequenceId(1))
    );
    assert_eq!(store.load_state(&id).await.unwrap(), Some(b"s".to_vec()));
    assert!(store.load_latest_snapshot(&id).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------
// Recovery through the SQLite store.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_actor_recovers_a_journal_longer_than_a_replay_page_and_carries_on() {
    let (_dir, path) = temp();
    let store = SqliteStorage::builder(&path)
        .durability(Durability::Relaxed)
        .open()
        .await
        .unwrap();
    let mut counter = Counter::new("long");
    for chunk in (1..=20_000i64).collect::<Vec<_>>().chunks(5_000) {
        counter.persist_batch(chunk.to_vec(), &store).await.unwrap();
    }
    counter.snapshot(&store).await.unwrap();
    counter.persist(7, &store).await.unwrap();
    store.close().await;

    let store = SqliteStorage::open(&path).await.unwrap();
    let mut again = Counter::new("long");
    recover_event_sourced(&mut again, &store, &store)
        .await
        .unwrap();
    assert_eq!(again.seq, SequenceId(20_001));
    assert_eq!(again.value, 20_000 * 20_001 / 2 + 7);
    store
        .delete_snapshots_before(&pid("long"), SequenceId(i64::MAX))
        .await
        .unwrap();
    let mut from_journal = Counter::new("long");
    recover_event_sourced(&mut from_journal, &store, &store)
        .await
        .unwrap();
    assert_eq!(
        (from_journal.value, from_journal.seq),
        (again.value, again.seq)
    );
    assert_eq!(again.persist(1, &store).await.unwrap(), SequenceId(20_002));
}

#[tokio::test]
async fn a_durable_state_actor_recovers_through_sqlite() {
    let (_dir, path) = temp();
    let store = SqliteStorage::open(&path).await.unwrap();
    let mut settings = Settings {
        data: "dark mode".into(),
    };
    DurableState::save_state(&settings, &store).await.unwrap();
    settings.data.clear();
    recover_durable_state(&mut settings, &store).await.unwrap();
    assert_eq!(settings.data, "dark mode");
}

/// A counter written against the bare traits.
struct Counter {
    id: String,
    value: i64,
    seq: SequenceId,
}

impl Counter {
    fn new(id: &str) -> Self {
        Counter {
            id: id.to_owned(),
            value: 0,
            seq: SequenceId(0),
        }
    }
}

impl Actor for Counter {
    type Args = ();
    type Deps = ();
    fn create(_: (), _: ()) -> Self {
        Counter::new("default")
    }
}

impl PersistentActor for Counter {
    fn persistence_id(&self) -> PersistenceId {
        pid(&self.id)
    }
}

fn decode(payload: &[u8]) -> Result<i64, PersistError> {
    let bytes: [u8; 8] = payload
        .try_into()
        .map_err(|_| PersistError::SerializationFailed("expected 8 bytes".into()))?;
    Ok(i64::from_le_bytes(bytes))
}

impl EventSourced for Counter {
    type Event = i64;
    fn apply(&mut self, delta: &i64) {
        self.value += delta;
    }
    fn deserialize_event(&self, payload: &[u8]) -> Result<i64, PersistError> {
        decode(payload)
    }
    fn serialize_event(&self, delta: &i64) -> Result<Vec<u8>, PersistError> {
        Ok(delta.to_le_bytes().to_vec())
    }
    fn event_type(&self, _: &i64) -> &'static str {
        "Delta"
    }
    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.value = decode(&payload)?;
        Ok(())
    }
    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        Ok(self.value.to_le_bytes().to_vec())
    }
    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }
    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}

struct Settings {
    data: String,
}

impl Actor for Settings {
    type Args = ();
    type Deps = ();
    fn create(_: (), _: ()) -> Self {
        Settings {
            data: String::new(),
        }
    }
}

impl PersistentActor for Settings {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Settings", "s")
    }
}

impl DurableState for Settings {
    fn serialize_state(&self) -> Result<Vec<u8>, PersistError> {
        Ok(self.data.as_bytes().to_vec())
    }
    fn restore_state(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        self.data = String::from_utf8(payload)
            .map_err(|e| PersistError::SerializationFailed(e.to_string()))?;
        Ok(())
    }
}

/// Durable-state saves of many actors made at the same time share commits
/// (what `SaveConfig`'s docs promise): 200 concurrent saves, far fewer
/// transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_state_saves_share_commits() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(
        SqliteStorage::open(dir.path().join("saves.db"))
            .await
            .unwrap(),
    );
    let before = store.stats();
    let pids: Vec<PersistenceId> = (0..200)
        .map(|i| PersistenceId::new("Settings", &i.to_string()))
        .collect();
    let saves: Vec<_> = pids
        .iter()
        .map(|pid| {
            let (store, pid) = (store.clone(), pid.clone());
            tokio::spawn(async move { store.save_state(&pid, b"state").await })
        })
        .collect();
    for save in saves {
        save.await.unwrap().unwrap();
    }
    let after = store.stats();
    let (commits, requests) = (
        after.commits - before.commits,
        after.requests - before.requests,
    );
    assert_eq!(requests, 200);
    assert!(
        commits * 4 <= requests,
        "{commits} commits for {requests} saves"
    );
    for pid in &pids {
        assert_eq!(
            store.load_state(pid).await.unwrap().as_deref(),
            Some(&b"state"[..])
        );
    }
    store.close().await;
}
