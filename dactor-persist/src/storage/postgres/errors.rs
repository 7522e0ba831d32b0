//! Reading the driver's errors: which may pass on a retry, which mean the
//! connection is gone, and which leave a write's outcome unknown.

use tokio_postgres::error::SqlState;

/// A serialization failure or a deadlock: the transaction was rolled back and
/// may simply be run again (CockroachDB asks clients to retry these).
pub(super) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The server did not answer with an error of its own: the socket failed,
/// closed or timed out. The connection must not be used again.
pub(super) fn is_connection_broken(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none() || e.is_closed()
}

/// A write failed in a way that leaves open whether it was committed: the
/// connection broke after the statement may have reached the server, or the
/// server itself says so (CockroachDB's `40003 statement completion
/// unknown`). An error the server answered with means nothing was stored.
pub(super) fn is_outcome_unknown(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => *code == SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN,
        None => true,
    }
}

/// A unique violation (23505): on the journal's key, another writer holds
/// the sequence.
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(code) if *code == SqlState::UNIQUE_VIOLATION)
}

/// A value too large for an index entry (PostgreSQL's b-tree keys hold about
/// 2.7 KB, after compression): a persistence id that long cannot be stored.
pub(super) fn is_too_large(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(code) if *code == SqlState::PROGRAM_LIMIT_EXCEEDED)
}

/// A race between nodes creating the same schema or tables at the same
/// moment: looking again finds the other's work.
pub(super) fn is_migration_race(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(code) if *code == SqlState::UNIQUE_VIOLATION
            || *code == SqlState::DUPLICATE_TABLE
            || *code == SqlState::DUPLICATE_SCHEMA
            || *code == SqlState::DUPLICATE_OBJECT
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The server reports damaged data or a damaged index: `XX001`
/// (data_corrupted) or `XX002` (index_corrupted).
pub(super) fn is_damage(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED
    )
}

/// The driver's error with what the server said, when it said something.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => {
            // "error communicating with the server: Connection reset by peer"
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            text
        }
    }
}
