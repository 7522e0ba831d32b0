-- dactor-persist PostgreSQL schema, version 2: every checksum covers its
-- row's persistence id, and the journal's bookkeeping rows carry a checksum
-- of their own (an MD5 the server computes, since the journal's triggers
-- write them in SQL).
--
-- After this SQL, `PostgresStorage::connect` rewrites the checksums of every
-- event, snapshot and state, in the same transaction (see
-- `storage/postgres/v2.rs`): each row's version-1 checksum is verified first,
-- and a row that fails it gets a checksum that can never match, so that it
-- keeps reading back as damaged. On PostgreSQL (not on the Postgres-wire
-- databases without statement triggers) `0002_journal_triggers.sql` follows.

ALTER TABLE {schema}.journal_meta ADD COLUMN IF NOT EXISTS checksum TEXT NOT NULL DEFAULT '';

UPDATE {schema}.journal_meta
    SET checksum = md5(persistence_id || ':' || highest::TEXT || ':' || deleted_to::TEXT);
