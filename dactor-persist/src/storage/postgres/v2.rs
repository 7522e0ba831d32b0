//! The Rust part of schema migration 2: every checksum of events, snapshots
//! and states rewritten to cover its row's persistence id, each row's
//! version-1 checksum verified first.
//!
//! Runs in the migration transaction, after
//! `migrations/postgres/0002_checksums_cover_ids.sql`. Each table is walked in
//! key order, a batch at a time, so that memory stays bounded; each batch is
//! rewritten with one `UPDATE ... FROM unnest(...)`. A row that fails its old
//! checksum is not healed: it gets a checksum that can never match, so that it
//! keeps reading back as damaged, and it is counted in a warning.

use deadpool_postgres::Transaction;

use super::{checksum, sql};

/// Rows read and rewritten at a time.
const BATCH: i64 = 4096;

/// Rewrites the checksums of the journal, snapshots and states in `schema`
/// (quoted).
pub(super) async fn rewrite_checksums(
    tx: &Transaction<'_>,
    schema: &str,
) -> Result<(), tokio_postgres::Error> {
    let q = |text: &str| sql::in_schema(text, schema);
    let mut damaged = [0u64; 3];

    // The journal and the snapshots: keyed by (persistence_id, sequence).
    for (i, table, has_type) in [(0, "journal", true), (1, "snapshots", false)] {
        let columns = if has_type { "event_type" } else { "''" };
        let select = q(&format!(
            "SELECT persistence_id, sequence, {columns}, payload, checksum FROM {{schema}}.{table}
             WHERE (persistence_id, sequence) > ($1, $2)
             ORDER BY persistence_id, sequence LIMIT $3"
        ));
        let update = q(&format!(
            "UPDATE {{schema}}.{table} AS t SET checksum = u.checksum
             FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) AS u (persistence_id, sequence, checksum)
             WHERE t.persistence_id = u.persistence_id AND t.sequence = u.sequence"
        ));
        let (mut after_pid, mut after_seq) = (String::new(), i64::MIN);
        loop {
            let rows = tx.query(&select, &[&after_pid, &after_seq, &BATCH]).await?;
            let Some(last) = rows.last() else { break };
            after_pid = last.try_get(0)?;
            after_seq = last.try_get(1)?;
            let (mut pids, mut seqs, mut sums) = (Vec::new(), Vec::new(), Vec::new());
            for row in &rows {
                let pid: &str = row.try_get(0)?;
                let seq: i64 = row.try_get(1)?;
                let event_type: &str = row.try_get(2)?;
                let payload: &[u8] = row.try_get(3)?;
                let stored: i64 = row.try_get(4)?;
                let (old, new) = if has_type {
                    (
                        checksum::v1::event(seq, event_type, payload),
                        checksum::event(pid, seq, event_type, payload),
                    )
                } else {
                    (
                        checksum::v1::snapshot(seq, payload),
                        checksum::snapshot(pid, seq, payload),
                    )
                };
                let sum = if stored == i64::from(old) {
                    new
                } else {
                    damaged[i] += 1;
                    checksum::poisoned(new)
                };
                pids.push(pid.to_owned());
                seqs.push(seq);
                sums.push(i64::from(sum));
            }
            tx.execute(&update, &[&pids, &seqs, &sums]).await?;
        }
    }

    // The states: keyed by persistence_id. The constant makes the first
    // page include the empty id, a valid one: (id, 1) > ('', 0) holds for it.
    let select = q(
        "SELECT persistence_id, payload, checksum FROM {schema}.states
         WHERE (persistence_id, 1) > ($1, $2) ORDER BY persistence_id LIMIT $3",
    );
    let update = q("UPDATE {schema}.states AS t SET checksum = u.checksum
         FROM unnest($1::TEXT[], $2::BIGINT[]) AS u (persistence_id, checksum)
         WHERE t.persistence_id = u.persistence_id");
    let (mut after, mut past) = (String::new(), 0i32);
    loop {
        let rows = tx.query(&select, &[&after, &past, &BATCH]).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0)?;
        past = 1;
        let (mut pids, mut sums) = (Vec::new(), Vec::new());
        for row in &rows {
            let pid: &str = row.try_get(0)?;
            let payload: &[u8] = row.try_get(1)?;
            let stored: i64 = row.try_get(2)?;
            let new = checksum::state(pid, payload);
            let sum = if stored == i64::from(checksum::v1::state(payload)) {
                new
            } else {
                damaged[2] += 1;
                checksum::poisoned(new)
            };
            pids.push(pid.to_owned());
            sums.push(i64::from(sum));
        }
        tx.execute(&update, &[&pids, &sums]).await?;
    }

    if damaged.iter().any(|n| *n > 0) {
        tracing::warn!(
            schema,
            events = damaged[0],
            snapshots = damaged[1],
            states = damaged[2],
            "rows that failed their checksum before the migration to schema 2 still read back as damaged"
        );
    }
    Ok(())
}
