-- dactor-persist PostgreSQL schema, version 4: projections.
--
-- One row per projection: the offset of the last event it handled (NULL:
-- none yet; the text form of `query::Offset`), whether it is paused, the
-- events it reads (the text form of `query::EventFilter`), when the row
-- last changed, and a CRC-32 of the name, offset, paused flag and source.
-- Offsets move only in transactions that lock the row and compare it with
-- the offset the projection last saw, together with an exactly-once
-- handler's writes. One instance of a projection runs at a time: it holds
-- a session advisory lock keyed by the schema and the projection's name.
CREATE TABLE IF NOT EXISTS {schema}.projections (
    name         TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    resume_after TEXT,
    paused       BOOLEAN NOT NULL DEFAULT false,
    source       TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    checksum     BIGINT  NOT NULL
);
