-- dactor-persist PostgreSQL schema, version 3: what the read side needs.
--
-- Every event gets its place in a global order, (tx_id, position): the id of
-- the transaction that wrote it and a number drawn from a sequence. A
-- position is drawn when the row is inserted but becomes visible when its
-- transaction commits, so positions alone do not give commit order: a reader
-- that resumed from "the highest position seen" would skip an event whose
-- transaction committed late. Readers therefore read only the events of
-- transactions older than the oldest still running
-- (`pg_snapshot_xmin(pg_current_snapshot())`), in (tx_id, position) order:
-- every such transaction has ended, and every transaction that writes later
-- gets a larger id, so nothing is ever added below what a reader passed.
-- Writers wait for nothing; a long transaction anywhere in the cluster only
-- delays readers (see `PostgresStorage`).
--
-- Events and states written before this version keep tx_id 0 and take
-- positions in (persistence id, sequence) order; their write time is
-- unknown (the epoch). Persistence ids compare byte by byte (COLLATE "C").

ALTER TABLE {schema}.journal ALTER COLUMN persistence_id TYPE TEXT COLLATE "C";
ALTER TABLE {schema}.journal_meta ALTER COLUMN persistence_id TYPE TEXT COLLATE "C";
ALTER TABLE {schema}.snapshots ALTER COLUMN persistence_id TYPE TEXT COLLATE "C";
ALTER TABLE {schema}.states ALTER COLUMN persistence_id TYPE TEXT COLLATE "C";

-- Each connection takes positions a thousand at a time: positions need only
-- grow within one transaction (the order is transaction first), and a
-- cached block costs no lock per event.
CREATE SEQUENCE IF NOT EXISTS {schema}.journal_position AS BIGINT CACHE 1024;
CREATE SEQUENCE IF NOT EXISTS {schema}.state_position AS BIGINT CACHE 64;

ALTER TABLE {schema}.journal
    ADD COLUMN IF NOT EXISTS tx_id BIGINT,
    ADD COLUMN IF NOT EXISTS position BIGINT,
    ADD COLUMN IF NOT EXISTS written_at TIMESTAMPTZ,
    -- The stored form of the event's tags (NULL: none); the tags themselves,
    -- readable, are in event_tags.
    ADD COLUMN IF NOT EXISTS tags BYTEA,
    ADD COLUMN IF NOT EXISTS metadata BYTEA;

UPDATE {schema}.journal j SET tx_id = 0, position = n.position, written_at = 'epoch'
FROM (SELECT persistence_id, sequence,
             row_number() OVER (ORDER BY persistence_id, sequence) AS position
      FROM {schema}.journal) n
WHERE j.persistence_id = n.persistence_id AND j.sequence = n.sequence;

SELECT setval('{schema}.journal_position',
              GREATEST((SELECT max(position) FROM {schema}.journal), 1),
              (SELECT max(position) FROM {schema}.journal) IS NOT NULL);

ALTER TABLE {schema}.journal
    ALTER COLUMN tx_id SET DEFAULT pg_current_xact_id()::TEXT::BIGINT,
    ALTER COLUMN tx_id SET NOT NULL,
    ALTER COLUMN position SET DEFAULT nextval('{schema}.journal_position'),
    ALTER COLUMN position SET NOT NULL,
    ALTER COLUMN written_at SET DEFAULT now(),
    ALTER COLUMN written_at SET NOT NULL;

CREATE INDEX IF NOT EXISTS journal_in_order ON {schema}.journal (tx_id, position);

-- The events of each tag, in the global order.
CREATE TABLE IF NOT EXISTS {schema}.event_tags (
    tag            TEXT   COLLATE "C" NOT NULL,
    tx_id          BIGINT NOT NULL,
    position       BIGINT NOT NULL,
    persistence_id TEXT   COLLATE "C" NOT NULL,
    sequence       BIGINT NOT NULL,
    PRIMARY KEY (tag, tx_id, position)
);
CREATE INDEX IF NOT EXISTS event_tags_of_events ON {schema}.event_tags (persistence_id, sequence);

ALTER TABLE {schema}.states
    ADD COLUMN IF NOT EXISTS tx_id BIGINT,
    ADD COLUMN IF NOT EXISTS position BIGINT,
    ADD COLUMN IF NOT EXISTS written_at TIMESTAMPTZ;

UPDATE {schema}.states s SET tx_id = 0, position = n.position, written_at = 'epoch'
FROM (SELECT persistence_id, row_number() OVER (ORDER BY persistence_id) AS position
      FROM {schema}.states) n
WHERE s.persistence_id = n.persistence_id;

SELECT setval('{schema}.state_position',
              GREATEST((SELECT max(position) FROM {schema}.states), 1),
              (SELECT max(position) FROM {schema}.states) IS NOT NULL);

ALTER TABLE {schema}.states
    ALTER COLUMN tx_id SET DEFAULT pg_current_xact_id()::TEXT::BIGINT,
    ALTER COLUMN tx_id SET NOT NULL,
    ALTER COLUMN position SET DEFAULT nextval('{schema}.state_position'),
    ALTER COLUMN position SET NOT NULL,
    ALTER COLUMN written_at SET DEFAULT now(),
    ALTER COLUMN written_at SET NOT NULL;

CREATE INDEX IF NOT EXISTS states_in_order ON {schema}.states (tx_id, position);
