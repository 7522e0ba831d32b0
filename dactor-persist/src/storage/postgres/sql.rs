//! Every statement the PostgreSQL store issues, in one place.
//!
//! Each is a macro expanding to a string literal, so that the store's rustdoc
//! lists the very text that runs (`#[doc = sql!(...)]`). `{schema}` stands for
//! the configured schema's quoted name and is replaced once, at connect time;
//! every value is a `$n` parameter. Only SQL that PostgreSQL, CockroachDB and
//! YugabyteDB all accept: no advisory locks, no LISTEN/NOTIFY, no
//! `DELETE ... USING`, no data-modifying CTEs.

/// Appends events, many rows in one statement from parallel arrays (one
/// element per event). A row whose sequence was deleted (used up) is filtered
/// out; a row whose key is taken is skipped by `ON CONFLICT DO NOTHING`. The
/// rows stored come back as (write_id, sequence): every request has its own
/// write_id, so each outcome is attributed exactly.
macro_rules! insert_events {
    () => {
        "INSERT INTO {schema}.journal
    (persistence_id, sequence, event_type, payload, checksum, write_id)
SELECT e.persistence_id, e.sequence, e.event_type, e.payload, e.checksum, e.write_id
FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[], $6::BIGINT[])
    AS e (persistence_id, sequence, event_type, payload, checksum, write_id)
WHERE NOT EXISTS (
    SELECT 1 FROM {schema}.journal_meta m
    WHERE m.persistence_id = e.persistence_id AND m.deleted_to >= e.sequence)
ON CONFLICT (persistence_id, sequence) DO NOTHING
RETURNING write_id, sequence"
    };
}

/// Appends one event: [`insert_events!`] for a group of a single write of a
/// single event, the commonest case when few actors write, without the arrays.
macro_rules! insert_event {
    () => {
        "INSERT INTO {schema}.journal
    (persistence_id, sequence, event_type, payload, checksum, write_id)
SELECT $1::TEXT, $2::BIGINT, $3::TEXT, $4::BYTEA, $5::BIGINT, $6::BIGINT
WHERE NOT EXISTS (
    SELECT 1 FROM {schema}.journal_meta m
    WHERE m.persistence_id = $1::TEXT AND m.deleted_to >= $2::BIGINT)
ON CONFLICT (persistence_id, sequence) DO NOTHING
RETURNING write_id, sequence"
    };
}

/// Undoes, inside the group's transaction, the rows a batch stored before one
/// of its other events was refused: a batch is stored whole or not at all.
macro_rules! undo_events {
    () => {
        "DELETE FROM {schema}.journal
WHERE persistence_id = $1 AND sequence = ANY($2::BIGINT[]) AND write_id = $3"
    };
}

/// Reads back the rows at a write's sequences, to settle whether an earlier
/// attempt of the same write, whose outcome was unknown, was stored.
macro_rules! written_by {
    () => {
        "SELECT sequence, write_id, checksum FROM {schema}.journal
WHERE persistence_id = $1 AND sequence = ANY($2::BIGINT[])"
    };
}

/// One page of a journal, ascending.
macro_rules! read_events {
    () => {
        "SELECT sequence, event_type, payload, checksum FROM {schema}.journal
WHERE persistence_id = $1 AND sequence >= $2
ORDER BY sequence
LIMIT $3"
    };
}

/// The highest sequence ever written: the larger of the stored events' and
/// the one recorded when events were deleted; 0 when none.
macro_rules! highest {
    () => {
        "SELECT GREATEST(
    COALESCE((SELECT max(sequence) FROM {schema}.journal WHERE persistence_id = $1), 0),
    COALESCE((SELECT highest FROM {schema}.journal_meta WHERE persistence_id = $1), 0))"
    };
}

/// Removes events up to a sequence (in one transaction with the two below).
macro_rules! delete_events {
    () => {
        "DELETE FROM {schema}.journal WHERE persistence_id = $1 AND sequence <= $2"
    };
}

/// Records how far events were deleted and the highest sequence, never
/// lowering either.
macro_rules! upsert_meta {
    () => {
        "INSERT INTO {schema}.journal_meta AS m (persistence_id, highest, deleted_to)
VALUES ($1, $2, $3)
ON CONFLICT (persistence_id) DO UPDATE SET
    highest = GREATEST(m.highest, EXCLUDED.highest),
    deleted_to = GREATEST(m.deleted_to, EXCLUDED.deleted_to)"
    };
}

/// Saves a snapshot, replacing one at the same sequence.
macro_rules! save_snapshot {
    () => {
        "INSERT INTO {schema}.snapshots AS s (persistence_id, sequence, payload, checksum)
VALUES ($1, $2, $3, $4)
ON CONFLICT (persistence_id, sequence) DO UPDATE SET
    payload = EXCLUDED.payload, checksum = EXCLUDED.checksum"
    };
}

/// The snapshot with the highest sequence.
macro_rules! latest_snapshot {
    () => {
        "SELECT sequence, payload, checksum FROM {schema}.snapshots
WHERE persistence_id = $1
ORDER BY sequence DESC
LIMIT 1"
    };
}

/// Removes the snapshots below a sequence.
macro_rules! delete_snapshots {
    () => {
        "DELETE FROM {schema}.snapshots WHERE persistence_id = $1 AND sequence < $2"
    };
}

/// Saves a durable state, replacing the previous one.
macro_rules! save_state {
    () => {
        "INSERT INTO {schema}.states AS s (persistence_id, payload, checksum)
VALUES ($1, $2, $3)
ON CONFLICT (persistence_id) DO UPDATE SET
    payload = EXCLUDED.payload, checksum = EXCLUDED.checksum"
    };
}

/// Loads a durable state.
macro_rules! load_state {
    () => {
        "SELECT payload, checksum FROM {schema}.states WHERE persistence_id = $1"
    };
}

/// Deletes a durable state.
macro_rules! delete_state {
    () => {
        "DELETE FROM {schema}.states WHERE persistence_id = $1"
    };
}

/// Does the configured schema exist? (Checked before creating it, so that a
/// role without the CREATE privilege can use a schema made for it.)
macro_rules! schema_exists {
    () => {
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1"
    };
}

/// Creates the configured schema.
macro_rules! create_schema {
    () => {
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    };
}

/// Does the schema version table exist? (Checked before anything is written,
/// so that a database this code must refuse is left untouched.)
macro_rules! version_table_exists {
    () => {
        "SELECT 1 FROM information_schema.tables
WHERE table_schema = $1 AND table_name = 'dactor_persist_schema'"
    };
}

/// The table recording which migrations were applied. It is created before
/// any migration runs, so it cannot live in one of them.
/// (BIGINT rather than INTEGER: INTEGER is 64-bit on CockroachDB and 32-bit
/// elsewhere, and the store reads one type.)
macro_rules! create_version_table {
    () => {
        "CREATE TABLE IF NOT EXISTS {schema}.dactor_persist_schema (
    version    BIGINT      NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"
    };
}

/// The newest applied migration; 0 when none.
macro_rules! schema_version {
    () => {
        "SELECT COALESCE(max(version), 0) FROM {schema}.dactor_persist_schema"
    };
}

/// Records an applied migration, in its transaction. Its primary key makes a
/// second node migrating at the same moment fail and look again.
macro_rules! record_version {
    () => {
        "INSERT INTO {schema}.dactor_persist_schema (version, name) VALUES ($1, $2)"
    };
}

pub(super) use {
    create_schema, create_version_table, delete_events, delete_snapshots, delete_state, highest,
    insert_event, insert_events, latest_snapshot, load_state, read_events, record_version,
    save_snapshot, save_state, schema_exists, schema_version, undo_events, upsert_meta,
    version_table_exists, written_by,
};

/// The statements with the schema's quoted name filled in, built once.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) insert_events: String,
    pub(super) insert_event: String,
    pub(super) undo_events: String,
    pub(super) written_by: String,
    pub(super) read_events: String,
    pub(super) highest: String,
    pub(super) delete_events: String,
    pub(super) upsert_meta: String,
    pub(super) save_snapshot: String,
    pub(super) latest_snapshot: String,
    pub(super) delete_snapshots: String,
    pub(super) save_state: String,
    pub(super) load_state: String,
    pub(super) delete_state: String,
}

impl Statements {
    /// The statements for the schema whose quoted name is `schema`.
    pub(super) fn new(schema: &str) -> Self {
        let s = |sql: &str| in_schema(sql, schema);
        Self {
            insert_events: s(insert_events!()),
            insert_event: s(insert_event!()),
            undo_events: s(undo_events!()),
            written_by: s(written_by!()),
            read_events: s(read_events!()),
            highest: s(highest!()),
            delete_events: s(delete_events!()),
            upsert_meta: s(upsert_meta!()),
            save_snapshot: s(save_snapshot!()),
            latest_snapshot: s(latest_snapshot!()),
            delete_snapshots: s(delete_snapshots!()),
            save_state: s(save_state!()),
            load_state: s(load_state!()),
            delete_state: s(delete_state!()),
        }
    }
}

/// `sql` with `{schema}` replaced by the quoted schema name.
pub(super) fn in_schema(sql: &str, quoted_schema: &str) -> String {
    sql.replace("{schema}", quoted_schema)
}

/// `name` as a quoted SQL identifier: in double quotes, inner quotes doubled.
/// The schema name is the one piece of SQL text that cannot be a parameter;
/// quoted so, any name is taken literally (case kept, no injection).
pub(super) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_literally() {
        assert_eq!(quote_identifier("app"), "\"app\"");
        assert_eq!(quote_identifier("My App"), "\"My App\"");
        assert_eq!(
            quote_identifier("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
    }

    #[test]
    fn every_statement_is_in_the_schema() {
        let statements = Statements::new("\"s\"");
        let all = format!("{statements:?}");
        assert!(!all.contains("{schema}"));
        assert!(
            statements
                .insert_events
                .contains("INSERT INTO \"s\".journal")
        );
        assert!(statements.highest.contains("\"s\".journal_meta"));
    }
}
