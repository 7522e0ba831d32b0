-- dactor-persist PostgreSQL schema, version 1: the journal, its per-id
-- bookkeeping, snapshots and durable state.
--
-- `{schema}` is replaced by the configured schema's quoted name before this
-- runs (`PostgresStorageBuilder::schema`, default "dactor_persist"). Applied
-- once, in the migration transaction, by `PostgresStorage::connect`; the
-- version is recorded in `{schema}.dactor_persist_schema`.
--
-- Only SQL that PostgreSQL, CockroachDB and YugabyteDB all accept: plain
-- tables, primary keys, CHECK constraints, IF NOT EXISTS (so that a migration
-- interrupted on a database without transactional DDL can run again).

-- One row per stored event. The primary key is the single-writer fence: of two
-- writers racing for (persistence_id, sequence), exactly one INSERT succeeds,
-- whichever node it runs on. A replay is one range scan of this key.
CREATE TABLE IF NOT EXISTS {schema}.journal (
    persistence_id TEXT   NOT NULL,
    sequence       BIGINT NOT NULL CHECK (sequence >= 1),
    event_type     TEXT   NOT NULL,
    payload        BYTEA  NOT NULL,
    -- CRC-32 of the sequence, event type and payload (the SQLite store's scheme).
    checksum       BIGINT NOT NULL,
    -- A random number drawn for the write that stored the row. When a write's
    -- outcome is unknown (the connection broke during its commit), the same
    -- store retrying it recognises its own row by this number.
    write_id       BIGINT NOT NULL,
    PRIMARY KEY (persistence_id, sequence)
);

-- Written only by `delete_events_to`: how far events were deleted (those
-- sequences are used up and refused forever) and the highest sequence at that
-- moment, so that the highest sequence never goes down once events are gone.
CREATE TABLE IF NOT EXISTS {schema}.journal_meta (
    persistence_id TEXT   NOT NULL PRIMARY KEY,
    highest        BIGINT NOT NULL,
    deleted_to     BIGINT NOT NULL
);

-- Snapshots, at most one per (persistence_id, sequence); the latest is the one
-- with the highest sequence.
CREATE TABLE IF NOT EXISTS {schema}.snapshots (
    persistence_id TEXT   NOT NULL,
    sequence       BIGINT NOT NULL,
    payload        BYTEA  NOT NULL,
    -- CRC-32 of the sequence and payload.
    checksum       BIGINT NOT NULL,
    PRIMARY KEY (persistence_id, sequence)
);

-- The whole state of each durable-state actor, replaced on every save.
CREATE TABLE IF NOT EXISTS {schema}.states (
    persistence_id TEXT   NOT NULL PRIMARY KEY,
    payload        BYTEA  NOT NULL,
    -- CRC-32 of the payload.
    checksum       BIGINT NOT NULL
);
