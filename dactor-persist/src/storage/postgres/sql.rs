//! Every statement the PostgreSQL store issues, in one place.
//!
//! Each is a macro expanding to a string literal, so that the store's rustdoc
//! lists the very text that runs (`#[doc = sql!(...)]`). `{schema}` stands for
//! the configured schema's quoted name and is replaced once, at connect time;
//! every value is a `$n` parameter. Only SQL that PostgreSQL, CockroachDB and
//! YugabyteDB all accept (by their documentation): no advisory locks, no
//! LISTEN/NOTIFY, no `DELETE ... USING`.
//! The bookkeeping row of an id (`journal_meta`) carries an MD5 of its
//! persistence id, highest sequence and deleted-to sequence, computed by the
//! server ([`meta_checksum!`]), because the journal's triggers raise it in
//! SQL (see `migrations/postgres/0002_journal_triggers.sql`).

/// The checksum of a bookkeeping row, as SQL over its columns `$pid`,
/// `$highest` and `$deleted_to` (replaced by the caller's expressions).
macro_rules! meta_checksum {
    ($pid:literal, $highest:literal, $deleted_to:literal) => {
        concat!(
            "md5(",
            $pid,
            " || ':' || (",
            $highest,
            ")::TEXT || ':' || (",
            $deleted_to,
            ")::TEXT)"
        )
    };
}

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

/// Marks the group's transaction as undoing a batch it stored in part, so
/// that the journal's removal trigger does not record those rows (they were
/// never committed). Local to the transaction.
macro_rules! undoing_batch {
    () => {
        "SELECT set_config('dactor_persist.undoing_batch', 'on', true)"
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

/// One id's bookkeeping row (highest, deleted_to, whether its checksum
/// holds; all NULL when it has none: nothing was ever removed) and its
/// largest stored sequence.
macro_rules! bounds {
    () => {
        concat!(
            "SELECT m.highest, m.deleted_to, m.checksum = ",
            $crate::storage::postgres::sql::meta_checksum!(
                "m.persistence_id",
                "m.highest",
                "m.deleted_to"
            ),
            ",
    (SELECT max(sequence) FROM {schema}.journal WHERE persistence_id = $1)
FROM (SELECT 1) AS one
LEFT JOIN {schema}.journal_meta m ON m.persistence_id = $1"
        )
    };
}

/// Removes events up to a sequence (in one transaction with the two below).
macro_rules! delete_events {
    () => {
        "DELETE FROM {schema}.journal WHERE persistence_id = $1 AND sequence <= $2"
    };
}

/// Records how far events were deleted and the highest sequence (both
/// already checked against the bookkeeping read in the same transaction).
macro_rules! upsert_meta {
    () => {
        concat!(
            "INSERT INTO {schema}.journal_meta AS m (persistence_id, highest, deleted_to, checksum)
VALUES ($1, $2, $3, ",
            $crate::storage::postgres::sql::meta_checksum!("$1::TEXT", "$2::BIGINT", "$3::BIGINT"),
            ")
ON CONFLICT (persistence_id) DO UPDATE SET
    highest = EXCLUDED.highest,
    deleted_to = EXCLUDED.deleted_to,
    checksum = EXCLUDED.checksum"
        )
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

/// `verify`: every journal row beside its id's bookkeeping row (whose
/// checksum the server checks), sorted by id and sequence.
macro_rules! verify_journal {
    () => {
        concat!(
            "SELECT COALESCE(j.persistence_id, m.persistence_id),
    m.persistence_id IS NOT NULL, m.highest, m.deleted_to, m.checksum = ",
            $crate::storage::postgres::sql::meta_checksum!(
                "m.persistence_id",
                "m.highest",
                "m.deleted_to"
            ),
            ",
    j.sequence, j.event_type, j.payload, j.checksum
FROM {schema}.journal j
FULL JOIN {schema}.journal_meta m ON m.persistence_id = j.persistence_id
ORDER BY 1, j.sequence"
        )
    };
}

/// `verify`: every snapshot.
macro_rules! verify_snapshots {
    () => {
        "SELECT persistence_id, sequence, payload, checksum FROM {schema}.snapshots"
    };
}

/// `verify`: every durable state.
macro_rules! verify_states {
    () => {
        "SELECT persistence_id, payload, checksum FROM {schema}.states"
    };
}

/// `verify`: is PostgreSQL's `amcheck` extension installed?
macro_rules! amcheck_installed {
    () => {
        "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'"
    };
}

/// `verify`: `amcheck`'s check of every B-tree index of the schema's tables.
macro_rules! amcheck_indexes {
    () => {
        "SELECT c.relname::TEXT, bt_index_check(c.oid)::TEXT
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am a ON a.oid = c.relam
WHERE n.nspname = $1 AND a.amname = 'btree'"
    };
}

pub(super) use {
    amcheck_indexes, amcheck_installed, verify_journal, verify_snapshots, verify_states,
};
pub(super) use {
    bounds, create_schema, create_version_table, delete_events, delete_snapshots, delete_state,
    insert_event, insert_events, latest_snapshot, load_state, meta_checksum, read_events,
    record_version, save_snapshot, save_state, schema_exists, schema_version, undo_events,
    undoing_batch, upsert_meta, version_table_exists, written_by,
};

/// The statements with the schema's quoted name filled in, built once.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) insert_events: String,
    pub(super) insert_event: String,
    pub(super) undo_events: String,
    pub(super) undoing_batch: String,
    pub(super) written_by: String,
    pub(super) read_events: String,
    pub(super) bounds: String,
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
            undoing_batch: s(undoing_batch!()),
            written_by: s(written_by!()),
            read_events: s(read_events!()),
            bounds: s(bounds!()),
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
        assert!(statements.bounds.contains("\"s\".journal_meta"));
    }
}
