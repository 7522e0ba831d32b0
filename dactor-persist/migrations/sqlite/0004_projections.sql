-- dactor-persist SQLite schema, version 4: projections.
--
-- One row per projection: the offset of the last event it handled (NULL:
-- none yet; the text form of `query::Offset`), whether it is paused, the
-- events it reads (the text form of `query::EventFilter`), when the row
-- last changed (microseconds since the Unix epoch), and a CRC-32 of the
-- name, offset, paused flag and source. Offsets only move by guarded updates
-- (`WHERE resume_after IS ?expected`), in the same transaction as an
-- exactly-once handler's writes.
CREATE TABLE IF NOT EXISTS projections (
    name         TEXT    NOT NULL PRIMARY KEY,
    resume_after TEXT,
    paused       INTEGER NOT NULL DEFAULT 0,
    source       TEXT,
    updated_at   INTEGER NOT NULL,
    checksum     INTEGER NOT NULL
) WITHOUT ROWID;
