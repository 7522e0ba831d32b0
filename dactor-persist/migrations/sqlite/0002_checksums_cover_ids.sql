-- dactor-persist SQLite schema, version 2: every checksum covers its row's
-- persistence id, and every id that has events has a bookkeeping row in
-- `journal_meta`, kept up to date by every write and checksummed itself.
--
-- Until version 1, `journal_meta` held only ids whose events were deleted,
-- and a row moved to another id by a damaged key, or removed behind the
-- store's back from the end of a journal, could not be noticed. Now the
-- highest sequence of every id is recorded apart from its events, so that
-- recovery can prove it read all of them.
--
-- After this SQL, `SqliteStorage::open` rewrites every checksum (see
-- `storage/sqlite/v2.rs`): each row's version-1 checksum is verified first, and
-- a row that fails it gets a checksum that can never match, so that it keeps
-- reading back as damaged.

ALTER TABLE journal_meta ADD COLUMN checksum INTEGER NOT NULL DEFAULT 0;

-- `WHERE true`: SQLite's upsert after INSERT ... SELECT needs a WHERE clause.
INSERT INTO journal_meta (persistence_id, highest, deleted_to)
    SELECT persistence_id, max(sequence), 0 FROM journal WHERE true GROUP BY persistence_id
    ON CONFLICT (persistence_id) DO UPDATE SET highest = max(highest, excluded.highest);
