//! What the crash test (`tests/tests/sqlite_crash.rs`) and its child process
//! (`src/bin/crash_writer.rs`) agree on.

use dactor_persist::PersistenceId;

/// The persistence id of the child's `i`-th writer.
pub fn persistence_id(i: usize) -> PersistenceId {
    PersistenceId::new("CrashTest", &format!("writer-{i}"))
}

/// The payload of event `seq` of writer `i`: its own bytes, of a length that
/// varies with the sequence, so a misplaced or truncated event shows.
pub fn payload(i: usize, seq: i64) -> Vec<u8> {
    let len = 16 + (seq % 97) as usize;
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (seq as u64);
    (0..len)
        .map(|k| (seed.rotate_left((k % 64) as u32) as u8) ^ (k as u8))
        .collect()
}
