-- dactor-persist SQLite schema, version 3: the journal becomes a log in
-- write order, for queries across ids that resume from an offset, and for
-- group commits that dirty few pages.
--
-- `events` is appended to in commit order: its AUTOINCREMENT `position` is
-- the global offset of the read side, and is never reused, even after
-- deletes. A persistence id is a small integer here, its stream: the slot of
-- a 31-bit hash of the id (the next free one when two ids hash alike), so
-- that finding an id's events never depends on one row alone. The unique
-- index (stream, sequence) is the single-writer fence and the way a replay
-- reads one id's events; `streams` holds each id's bookkeeping (its highest
-- sequence and how far its events were deleted, checksummed), `event_tags`
-- the events of each tag.
--
-- `SqliteStorage::open` fills the new tables from the old ones in Rust
-- (`storage/sqlite/v3.rs`), keeping every checksum as it was (they cover the
-- persistence id's text, not its stream), and then drops the old tables.
-- Events moved from version 2 have no write time (0) and take positions in
-- (persistence id, sequence) order.

CREATE TABLE streams (
    id             INTEGER NOT NULL PRIMARY KEY,
    persistence_id TEXT    NOT NULL,
    entity_type    TEXT    NOT NULL,
    highest        INTEGER NOT NULL,
    deleted_to     INTEGER NOT NULL,
    -- CRC-32 of the persistence id, highest and deleted_to.
    checksum       INTEGER NOT NULL
);

-- Persistence ids in byte order, all of them or by entity type (the
-- persistence-ids query).
CREATE INDEX streams_by_id ON streams (persistence_id);
CREATE INDEX streams_by_entity ON streams (entity_type, persistence_id);

CREATE TABLE events (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    stream     INTEGER NOT NULL,
    sequence   INTEGER NOT NULL CHECK (sequence >= 1),
    event_type TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    -- Microseconds since the Unix epoch (0: not known).
    written_at INTEGER NOT NULL,
    -- NULL when the event has none.
    tags       BLOB,
    metadata   BLOB,
    -- CRC-32 of the persistence id, sequence, type, payload, tags, metadata.
    checksum   INTEGER NOT NULL
);

CREATE UNIQUE INDEX events_by_stream ON events (stream, sequence);

CREATE TABLE event_tags (
    tag      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;

-- Durable states get their place in the order of saves, for the changes
-- query: a counter that never goes back, even after deletes.
ALTER TABLE states ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE states ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0;
UPDATE states SET position = rowid;
CREATE INDEX states_by_position ON states (position);

CREATE TABLE counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) SELECT 'state_position', coalesce(max(position), 0) FROM states;
