//! Every statement the PostgreSQL store issues, in one place.
//!
//! Each is a macro expanding to a string literal, so that the store's rustdoc
//! lists the very text that runs (`#[doc = sql!(...)]`). `{schema}` stands for
//! the configured schema's quoted name and is replaced once, at connect time;
//! every value is a `$n` parameter. PostgreSQL 13 or newer: the read side
//! stands on its transaction ids and `pg_current_snapshot()`.
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
/// write_id, so each outcome is attributed exactly. The transaction id is
/// drawn once for the statement; the position and write time are the
/// columns' defaults.
macro_rules! insert_events {
    () => {
        "INSERT INTO {schema}.journal
    (persistence_id, sequence, event_type, payload, checksum, write_id, tags, metadata, tx_id)
SELECT e.persistence_id, e.sequence, e.event_type, e.payload, e.checksum, e.write_id,
       e.tags, e.metadata, (SELECT pg_current_xact_id()::TEXT::BIGINT)
FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[], $6::BIGINT[],
            $7::BYTEA[], $8::BYTEA[])
    AS e (persistence_id, sequence, event_type, payload, checksum, write_id, tags, metadata)
WHERE NOT EXISTS (
    SELECT 1 FROM {schema}.journal_meta m
    WHERE m.persistence_id = e.persistence_id AND m.deleted_to >= e.sequence)
ON CONFLICT (persistence_id, sequence) DO NOTHING
RETURNING write_id, sequence"
    };
}

/// [`insert_events!`] for a group with tagged events: the tags of the rows
/// stored go to `event_tags` in the same statement (parallel arrays: tag,
/// persistence id, sequence), at the events' places in the global order.
macro_rules! insert_tagged_events {
    () => {
        "WITH stored AS (
    INSERT INTO {schema}.journal
        (persistence_id, sequence, event_type, payload, checksum, write_id, tags, metadata, tx_id)
    SELECT e.persistence_id, e.sequence, e.event_type, e.payload, e.checksum, e.write_id,
           e.tags, e.metadata, (SELECT pg_current_xact_id()::TEXT::BIGINT)
    FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[], $6::BIGINT[],
                $7::BYTEA[], $8::BYTEA[])
        AS e (persistence_id, sequence, event_type, payload, checksum, write_id, tags, metadata)
    WHERE NOT EXISTS (
        SELECT 1 FROM {schema}.journal_meta m
        WHERE m.persistence_id = e.persistence_id AND m.deleted_to >= e.sequence)
    ON CONFLICT (persistence_id, sequence) DO NOTHING
    RETURNING write_id, sequence, persistence_id, tx_id, position
), tagged AS (
    INSERT INTO {schema}.event_tags (tag, tx_id, position, persistence_id, sequence)
    SELECT t.tag, s.tx_id, s.position, s.persistence_id, s.sequence
    FROM unnest($9::TEXT[], $10::TEXT[], $11::BIGINT[]) AS t (tag, persistence_id, sequence)
    JOIN stored s ON s.persistence_id = t.persistence_id AND s.sequence = t.sequence
)
SELECT write_id, sequence FROM stored"
    };
}

/// Appends one event without tags: [`insert_events!`] for a group of a
/// single write of a single event, the commonest case when few actors
/// write, without the arrays.
macro_rules! insert_event {
    () => {
        "INSERT INTO {schema}.journal
    (persistence_id, sequence, event_type, payload, checksum, write_id, metadata)
SELECT $1::TEXT, $2::BIGINT, $3::TEXT, $4::BYTEA, $5::BIGINT, $6::BIGINT, $7::BYTEA
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

/// The tags of the rows [`undo_events!`] undoes.
macro_rules! undo_tags {
    () => {
        "DELETE FROM {schema}.event_tags
WHERE persistence_id = $1 AND sequence = ANY($2::BIGINT[])
  AND tx_id = pg_current_xact_id()::TEXT::BIGINT"
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
        "SELECT sequence, event_type, payload, checksum, tags, metadata FROM {schema}.journal
WHERE persistence_id = $1 AND sequence >= $2
ORDER BY sequence
LIMIT $3"
    };
}

/// One page of a journal as envelopes: [`read_events!`], then the event's
/// place in the global order and its write time.
macro_rules! read_envelopes {
    () => {
        "SELECT sequence, event_type, payload, checksum, tags, metadata, tx_id, position, written_at
FROM {schema}.journal
WHERE persistence_id = $1 AND sequence >= $2
ORDER BY sequence
LIMIT $3"
    };
}

/// The oldest transaction still running, as the horizon of readers: every
/// event of an older transaction is final (committed or rolled back).
macro_rules! horizon {
    () => {
        "pg_snapshot_xmin(pg_current_snapshot())::TEXT::BIGINT"
    };
}

/// The first row of every page: the readers' horizon (the oldest
/// transaction still running, column 0) and whether events are committed
/// above it, holding readers back (the last column); NULL elsewhere. Taken
/// in the same statement as the page, so from the same snapshot.
macro_rules! horizon_row {
    () => {
        concat!(
            "SELECT x.xmin, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT max(tx_id) FROM {schema}.journal) >= x.xmin
FROM (SELECT ",
            $crate::storage::postgres::sql::horizon!(),
            " AS xmin) x"
        )
    };
}

/// One page of events after (tx_id, position) = ($1, $2), in the global
/// order, of transactions older than the horizon: [`horizon_row!`] first,
/// then the events, with NULL in column 0, as [`read_envelopes!`] reads
/// them from column 1, then their persistence id. `$4` filters by entity
/// type (NULL: every event).
macro_rules! events_after {
    () => {
        concat!(
            $crate::storage::postgres::sql::horizon_row!(),
            "
UNION ALL (
SELECT NULL, j.sequence, j.event_type, j.payload, j.checksum, j.tags, j.metadata, j.tx_id,
       j.position, j.written_at, j.persistence_id, NULL
FROM {schema}.journal j
WHERE (j.tx_id, j.position) > ($1, $2)
  AND j.tx_id < (SELECT ",
            $crate::storage::postgres::sql::horizon!(),
            ")
  AND ($4::TEXT IS NULL OR split_part(j.persistence_id, ':', 1) = $4::TEXT)
ORDER BY j.tx_id, j.position
LIMIT $3)"
        )
    };
}

/// As [`events_after!`], the events of one tag (`$4`); an event the tag
/// names that is not stored reads as NULL event columns.
macro_rules! tagged_after {
    () => {
        concat!(
            $crate::storage::postgres::sql::horizon_row!(),
            "
UNION ALL (
SELECT NULL, j.sequence, j.event_type, j.payload, j.checksum, j.tags, j.metadata, t.tx_id,
       t.position, j.written_at, t.persistence_id, NULL
FROM {schema}.event_tags t
LEFT JOIN {schema}.journal j ON j.persistence_id = t.persistence_id AND j.sequence = t.sequence
WHERE t.tag = $4 AND (t.tx_id, t.position) > ($1, $2)
  AND t.tx_id < (SELECT ",
            $crate::storage::postgres::sql::horizon!(),
            ")
ORDER BY t.tx_id, t.position
LIMIT $3)"
        )
    };
}

/// The place of the newest event committed (none: no row).
macro_rules! event_head {
    () => {
        "SELECT tx_id, position FROM {schema}.journal ORDER BY tx_id DESC, position DESC LIMIT 1"
    };
}

/// Up to `$3` persistence ids with events after `$1` (NULL: from the first)
/// in byte order, optionally of one entity type (`$2`): a skip scan of the
/// journal's key, one index probe per id.
macro_rules! persistence_ids {
    () => {
        "WITH RECURSIVE ids (pid) AS (
    (SELECT persistence_id FROM {schema}.journal
     WHERE ($1::TEXT IS NULL OR persistence_id > $1::TEXT)
       AND ($2::TEXT IS NULL OR persistence_id >= $2::TEXT)
     ORDER BY persistence_id LIMIT 1)
    UNION ALL
    SELECT (SELECT persistence_id FROM {schema}.journal
            WHERE persistence_id > ids.pid ORDER BY persistence_id LIMIT 1)
    FROM ids
    WHERE ids.pid IS NOT NULL
      AND ($2::TEXT IS NULL OR ids.pid < $2::TEXT || ';')
)
SELECT pid FROM ids
WHERE pid IS NOT NULL AND ($2::TEXT IS NULL OR split_part(pid, ':', 1) = $2::TEXT)
LIMIT $3"
    };
}

/// The persistence ids whose events were all deleted (kept in the
/// bookkeeping), as [`persistence_ids!`] pages them.
macro_rules! deleted_ids {
    () => {
        "SELECT persistence_id FROM {schema}.journal_meta
WHERE ($1::TEXT IS NULL OR persistence_id > $1::TEXT)
  AND ($2::TEXT IS NULL OR split_part(persistence_id, ':', 1) = $2::TEXT)
  AND highest > 0
ORDER BY persistence_id LIMIT $3"
    };
}

/// One page of durable-state changes after ($1, $2), as [`events_after!`]
/// reads events: a first row with the horizon in column 0, then the changes
/// (`persistence_id, payload, checksum, tx_id, position, written_at` from
/// column 1); `$4` filters by entity type.
macro_rules! states_after {
    () => {
        concat!(
            "SELECT x.xmin, NULL, NULL, NULL, NULL, NULL, NULL
FROM (SELECT ",
            $crate::storage::postgres::sql::horizon!(),
            " AS xmin) x
UNION ALL (
SELECT NULL, persistence_id, payload, checksum, tx_id, position, written_at
FROM {schema}.states
WHERE (tx_id, position) > ($1, $2)
  AND tx_id < (SELECT ",
            $crate::storage::postgres::sql::horizon!(),
            ")
  AND ($4::TEXT IS NULL OR split_part(persistence_id, ':', 1) = $4::TEXT)
ORDER BY tx_id, position
LIMIT $3)"
        )
    };
}

/// The place of the newest state save committed.
macro_rules! state_head {
    () => {
        "SELECT tx_id, position FROM {schema}.states ORDER BY tx_id DESC, position DESC LIMIT 1"
    };
}

/// A hint to live readers in other processes, sent after a commit (never in
/// the writing transaction: a `NOTIFY` there would serialize all commits).
macro_rules! notify {
    () => {
        "SELECT pg_notify('dactor_persist', $1)"
    };
}

/// The transaction that holds readers back: the oldest running one, with
/// what it is doing (for the log).
macro_rules! oldest_transaction {
    () => {
        "SELECT pid, (now() - xact_start)::TEXT, state, left(query, 80)
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL
ORDER BY age(backend_xid) DESC
LIMIT 1"
    };
}

/// One id's bookkeeping row (highest, deleted_to, whether its checksum
/// holds; all NULL when it has none: nothing was ever removed) and its
/// largest stored sequence. That one is the first row of a backward index
/// scan, not `max(sequence)`: for an id the planner's statistics think rare,
/// it planned `max` as an aggregate over every event of the id (10 ms for
/// 20,000 events).
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
    (SELECT sequence FROM {schema}.journal WHERE persistence_id = $1
     ORDER BY sequence DESC LIMIT 1)
FROM (SELECT 1) AS one
LEFT JOIN {schema}.journal_meta m ON m.persistence_id = $1"
        )
    };
}

/// Removes the tags of the events [`delete_events!`] removes.
macro_rules! delete_tags {
    () => {
        "DELETE FROM {schema}.event_tags WHERE persistence_id = $1 AND sequence <= $2"
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

/// Saves a durable state, replacing the previous one, at a new place in
/// the order of saves.
macro_rules! save_state {
    () => {
        "INSERT INTO {schema}.states AS s (persistence_id, payload, checksum)
VALUES ($1, $2, $3)
ON CONFLICT (persistence_id) DO UPDATE SET
    payload = EXCLUDED.payload, checksum = EXCLUDED.checksum,
    tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, written_at = EXCLUDED.written_at"
    };
}

/// Saves the states of a group of distinct ids in one statement, from
/// parallel arrays (see `states.rs`).
macro_rules! save_states {
    () => {
        "INSERT INTO {schema}.states AS s (persistence_id, payload, checksum)
SELECT * FROM unnest($1::TEXT[], $2::BYTEA[], $3::BIGINT[])
ON CONFLICT (persistence_id) DO UPDATE SET
    payload = EXCLUDED.payload, checksum = EXCLUDED.checksum,
    tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, written_at = EXCLUDED.written_at"
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

/// The server's own description and version number, checked before
/// anything else on connect.
macro_rules! server_version {
    () => {
        "SELECT version(), current_setting('server_version_num')::INT"
    };
}

pub(super) use {
    amcheck_indexes, amcheck_installed, verify_journal, verify_snapshots, verify_states,
};
pub(super) use {
    bounds, create_schema, create_version_table, delete_events, delete_snapshots, delete_state,
    insert_event, insert_events, latest_snapshot, load_state, meta_checksum, read_events,
    record_version, save_snapshot, save_state, save_states, schema_exists, schema_version,
    server_version, undo_events, undoing_batch, upsert_meta, version_table_exists, written_by,
};
pub(super) use {
    delete_tags, deleted_ids, event_head, events_after, horizon, horizon_row, insert_tagged_events,
    notify, oldest_transaction, persistence_ids, read_envelopes, state_head, states_after,
    tagged_after, undo_tags,
};

/// The statements with the schema's quoted name filled in, built once.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) insert_events: String,
    pub(super) insert_event: String,
    pub(super) undo_events: String,
    pub(super) undo_tags: String,
    pub(super) undoing_batch: String,
    pub(super) insert_tagged_events: String,
    pub(super) read_envelopes: String,
    pub(super) events_after: String,
    pub(super) tagged_after: String,
    pub(super) event_head: String,
    pub(super) persistence_ids: String,
    pub(super) deleted_ids: String,
    pub(super) states_after: String,
    pub(super) state_head: String,
    pub(super) delete_tags: String,
    pub(super) written_by: String,
    pub(super) read_events: String,
    pub(super) bounds: String,
    pub(super) delete_events: String,
    pub(super) upsert_meta: String,
    pub(super) save_snapshot: String,
    pub(super) latest_snapshot: String,
    pub(super) delete_snapshots: String,
    pub(super) save_state: String,
    pub(super) save_states: String,
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
            undo_tags: s(undo_tags!()),
            undoing_batch: s(undoing_batch!()),
            insert_tagged_events: s(insert_tagged_events!()),
            read_envelopes: s(read_envelopes!()),
            events_after: s(events_after!()),
            tagged_after: s(tagged_after!()),
            event_head: s(event_head!()),
            persistence_ids: s(persistence_ids!()),
            deleted_ids: s(deleted_ids!()),
            states_after: s(states_after!()),
            state_head: s(state_head!()),
            delete_tags: s(delete_tags!()),
            written_by: s(written_by!()),
            read_events: s(read_events!()),
            bounds: s(bounds!()),
            delete_events: s(delete_events!()),
            upsert_meta: s(upsert_meta!()),
            save_snapshot: s(save_snapshot!()),
            latest_snapshot: s(latest_snapshot!()),
            delete_snapshots: s(delete_snapshots!()),
            save_state: s(save_state!()),
            save_states: s(save_states!()),
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
