-- dactor-persist SQLite schema, version 1: the journal, its per-id bookkeeping,
-- snapshots and durable state. Applied once, inside the migration transaction,
-- by `SqliteStorage::open`; the version is recorded in `dactor_persist_schema`.

-- One row per stored event. The primary key is the single-writer fence: of two
-- writers racing for (persistence_id, sequence), exactly one INSERT succeeds.
-- WITHOUT ROWID keeps each id's events together in key order, so a replay is
-- one sequential range scan.
CREATE TABLE journal (
    persistence_id TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 1),
    event_type     TEXT    NOT NULL,
    payload        BLOB    NOT NULL,
    -- CRC-32 of the sequence, event type and payload (see storage/sqlite/codec).
    checksum       INTEGER NOT NULL,
    PRIMARY KEY (persistence_id, sequence)
) WITHOUT ROWID;

-- Written only by `delete_events_to`: how far events were deleted (those
-- sequences are used up and refused forever) and the highest sequence at that
-- moment, so that the highest sequence never goes down once events are gone.
CREATE TABLE journal_meta (
    persistence_id TEXT    NOT NULL PRIMARY KEY,
    highest        INTEGER NOT NULL,
    deleted_to     INTEGER NOT NULL
) WITHOUT ROWID;

-- Snapshots, at most one per (persistence_id, sequence); the latest is the one
-- with the highest sequence. Rows may be megabytes: an ordinary rowid table.
CREATE TABLE snapshots (
    persistence_id TEXT    NOT NULL,
    sequence       INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    -- CRC-32 of the sequence and payload.
    checksum       INTEGER NOT NULL,
    PRIMARY KEY (persistence_id, sequence)
);

-- The whole state of each durable-state actor, replaced on every save.
CREATE TABLE states (
    persistence_id TEXT    NOT NULL PRIMARY KEY,
    payload        BLOB    NOT NULL,
    -- CRC-32 of the payload.
    checksum       INTEGER NOT NULL
);
