//! What the projection crash test (`tests/tests/projection_crash.rs`) and
//! its child process (`src/bin/projection_child.rs`) agree on: the read
//! model, a table of totals per id, kept exactly once in the store's file.

use dactor_persist::projection::HandlerError;
use dactor_persist::query::EventEnvelope;
use dactor_persist::rusqlite::{Connection, params};

/// The projection's name.
pub const NAME: &str = "totals";

/// The at-least-once projection's name.
pub const SINK: &str = "sink";

/// How often the at-least-once projection saves its offset, in events.
pub const SAVE_EVERY: usize = 10;

/// The entity type the writers persist and the projection reads.
pub const ENTITY: &str = "Meter";

/// Creates the read model's table when missing.
pub fn create_table(conn: &Connection) -> Result<(), HandlerError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS totals (
             id    TEXT    NOT NULL PRIMARY KEY,
             sum   INTEGER NOT NULL,
             count INTEGER NOT NULL,
             last  INTEGER NOT NULL
         )",
    )?;
    Ok(())
}

/// The handler: adds each event's value to its id's total, counts it, and
/// refuses an event out of order for its id (so a double application or a
/// skip would show even before the totals are compared).
pub fn apply(conn: &Connection, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    create_table(conn)?;
    for event in events {
        let value = value_of(&event.payload)?;
        let last: Option<i64> = conn
            .query_row(
                "SELECT last FROM totals WHERE id = ?1",
                params![event.persistence_id.as_str()],
                |row| row.get(0),
            )
            .ok();
        if let Some(last) = last
            && last + 1 != event.sequence_id.0
        {
            return Err(format!(
                "{} event {} after {last}: applied twice or skipped",
                event.persistence_id, event.sequence_id.0
            )
            .into());
        }
        conn.execute(
            "INSERT INTO totals (id, sum, count, last) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (id) DO UPDATE SET sum = sum + excluded.sum, count = count + 1,
                 last = excluded.last",
            params![event.persistence_id.as_str(), value, event.sequence_id.0],
        )?;
    }
    Ok(())
}

/// The value an event carries.
pub fn value_of(payload: &[u8]) -> Result<i64, HandlerError> {
    let bytes: [u8; 8] = payload
        .try_into()
        .map_err(|_| format!("a payload of {} bytes, not 8", payload.len()))?;
    Ok(i64::from_le_bytes(bytes))
}

/// The PostgreSQL read model of the two-process test: one row per event
/// applied, naming the node that applied it (no key: a double application
/// shows as a second row).
pub struct Applied {
    /// The schema's quoted name.
    pub schema: String,
    /// Which node this is.
    pub node: String,
}

/// The entity type of the PostgreSQL projection tests.
pub const PG_ENTITY: &str = "Pj";

/// The PostgreSQL projection's name.
pub const PG_NAME: &str = "applied";

impl Applied {
    /// The table's statement.
    pub fn create_table(schema: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {schema}.applied (pid TEXT NOT NULL, seq BIGINT NOT NULL, node TEXT NOT NULL)"
        )
    }
}

#[dactor_persist::async_trait]
impl dactor_persist::projection::PostgresHandler for Applied {
    async fn handle(
        &mut self,
        tx: &dactor_persist::tokio_postgres::Transaction<'_>,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        let sql = format!(
            "INSERT INTO {}.applied (pid, seq, node) VALUES ($1, $2, $3)",
            self.schema
        );
        for event in events {
            tx.execute(
                &sql,
                &[
                    &event.persistence_id.as_str(),
                    &event.sequence_id.0,
                    &self.node,
                ],
            )
            .await?;
        }
        Ok(())
    }
}
