-- dactor-persist PostgreSQL schema, version 2 (PostgreSQL only): events
-- removed from the journal behind the store's back leave a trace.
--
-- Recovery proves a journal complete up to its highest sequence: the larger
-- of its largest stored sequence and the `highest` of its bookkeeping row.
-- These triggers raise that `highest` whenever rows leave the journal, by
-- any statement (the store's own `delete_events_to` included): a `DELETE`,
-- an `UPDATE` moving a row to another id or sequence, a `TRUNCATE`. Events
-- removed from the end of a journal then show as missing instead of the
-- journal silently ending earlier. They cost nothing on the write path: no
-- trigger fires on `INSERT`.
--
-- One removal is not a removal: a group commit undoing, before its commit,
-- the rows of a batch that was refused in part. The store marks that
-- transaction with the setting `dactor_persist.undoing_batch`, and the
-- trigger leaves it alone.

CREATE OR REPLACE FUNCTION {schema}.dactor_persist_journal_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dactor_persist.undoing_batch', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO {schema}.journal_meta AS m (persistence_id, highest, deleted_to, checksum)
    SELECT persistence_id, max(sequence), 0,
           md5(persistence_id || ':' || max(sequence)::TEXT || ':0')
    FROM removed GROUP BY persistence_id ORDER BY persistence_id
    ON CONFLICT (persistence_id) DO UPDATE SET
        highest = GREATEST(m.highest, EXCLUDED.highest),
        checksum = md5(m.persistence_id || ':' || GREATEST(m.highest, EXCLUDED.highest)::TEXT
                       || ':' || m.deleted_to::TEXT)
    WHERE EXCLUDED.highest > m.highest;
    RETURN NULL;
END
$$;

-- An UPDATE may move rows to other keys: the old keys that are gone count as
-- removed. (The store itself never updates the journal.)
CREATE OR REPLACE FUNCTION {schema}.dactor_persist_journal_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.journal_meta AS m (persistence_id, highest, deleted_to, checksum)
    SELECT o.persistence_id, max(o.sequence), 0,
           md5(o.persistence_id || ':' || max(o.sequence)::TEXT || ':0')
    FROM before_update o
    WHERE NOT EXISTS (
        SELECT 1 FROM after_update n
        WHERE n.persistence_id = o.persistence_id AND n.sequence = o.sequence)
    GROUP BY o.persistence_id ORDER BY o.persistence_id
    ON CONFLICT (persistence_id) DO UPDATE SET
        highest = GREATEST(m.highest, EXCLUDED.highest),
        checksum = md5(m.persistence_id || ':' || GREATEST(m.highest, EXCLUDED.highest)::TEXT
                       || ':' || m.deleted_to::TEXT)
    WHERE EXCLUDED.highest > m.highest;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION {schema}.dactor_persist_journal_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.journal_meta AS m (persistence_id, highest, deleted_to, checksum)
    SELECT persistence_id, max(sequence), 0,
           md5(persistence_id || ':' || max(sequence)::TEXT || ':0')
    FROM {schema}.journal GROUP BY persistence_id ORDER BY persistence_id
    ON CONFLICT (persistence_id) DO UPDATE SET
        highest = GREATEST(m.highest, EXCLUDED.highest),
        checksum = md5(m.persistence_id || ':' || GREATEST(m.highest, EXCLUDED.highest)::TEXT
                       || ':' || m.deleted_to::TEXT)
    WHERE EXCLUDED.highest > m.highest;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS journal_rows_deleted ON {schema}.journal;
CREATE TRIGGER journal_rows_deleted AFTER DELETE ON {schema}.journal
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.dactor_persist_journal_removed();

DROP TRIGGER IF EXISTS journal_rows_moved ON {schema}.journal;
CREATE TRIGGER journal_rows_moved AFTER UPDATE ON {schema}.journal
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.dactor_persist_journal_moved();

DROP TRIGGER IF EXISTS journal_truncated ON {schema}.journal;
CREATE TRIGGER journal_truncated BEFORE TRUNCATE ON {schema}.journal
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.dactor_persist_journal_truncated();
