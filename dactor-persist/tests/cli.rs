//! The `dactor-persist` command (feature `cli`): `verify` on a SQLite file.
#![cfg(feature = "cli")]

use std::process::Command;

use dactor_persist::{JournalStorage, PersistenceId, SequenceId, SqliteStorage};

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dactor-persist"))
        .args(args)
        .output()
        .expect("run dactor-persist");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn verify_reports_intact_then_damaged_with_its_exit_status() {
    let dir = std::env::temp_dir().join(format!("dactor-cli-{}", std::process::id()));
    let path = dir.join("app.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStorage::open(&path).await.unwrap();
        let id = PersistenceId::new("Account", "a-1");
        for seq in 1..=3 {
            store
                .write_event(&id, SequenceId(seq), "E", b"x")
                .await
                .unwrap();
        }
        store.close().await;
    });
    let file = path.to_str().unwrap();
    let (code, text) = run(&["verify", file]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("intact") && text.contains("3 events"),
        "{text}"
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM events WHERE sequence = 2", [])
        .unwrap();
    drop(conn);
    let (code, text) = run(&["verify", file]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("DAMAGED") && text.contains("missing event 2"),
        "{text}"
    );

    let (code, text) = run(&["verify", &format!("{file}.absent")]);
    assert_eq!(code, 2, "{text}");
    assert!(
        !std::path::Path::new(&format!("{file}.absent")).exists(),
        "verify created a file"
    );
    let (code, text) = run(&["frobnicate"]);
    assert_eq!(
        (code, text.contains("unknown command")),
        (2, true),
        "{text}"
    );
    let (code, text) = run(&["--help"]);
    assert_eq!((code, text.contains("verify")), (0, true), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
