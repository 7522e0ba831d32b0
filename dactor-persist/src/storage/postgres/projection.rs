//! Projections in the PostgreSQL database: their records (`projections`,
//! schema 4), exactly-once batches in one transaction with the offset, and
//! leases as session advisory locks.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_postgres::Transaction;

use super::{PostgresStorage, discard, errors, live};
use crate::projection::store::{
    LeaseGuard, ProjectionLease, ProjectionRecord, ProjectionStore, check_name, conflict,
    parse_offset, parse_source, record_checksum,
};
use crate::projection::{BatchError, PostgresHandler};
use crate::query::{EventEnvelope, EventFilter, Offset};
use crate::{PersistError, PersistenceId};

/// The statements, with `{schema}` for the schema's quoted name.
const LOAD: &str =
    "SELECT resume_after, paused, source, checksum FROM {schema}.projections WHERE name = $1";
const LOCK: &str = "SELECT resume_after, paused, source, checksum FROM {schema}.projections \
     WHERE name = $1 FOR UPDATE";
const CREATE: &str = "INSERT INTO {schema}.projections (name, checksum) VALUES ($1, $2) \
     ON CONFLICT (name) DO NOTHING";
const SAVE: &str = "UPDATE {schema}.projections SET resume_after = $2, paused = $3, \
     source = $4, updated_at = now(), checksum = $5 WHERE name = $1";
const NAMES: &str = "SELECT name FROM {schema}.projections ORDER BY name";
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";

impl PostgresStorage {
    fn projection_sql(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.shared.quoted_schema)
    }

    /// The record of `name` from a row of [`LOAD`] or [`LOCK`], checked.
    fn record_of(
        &self,
        name: &str,
        row: Option<&tokio_postgres::Row>,
    ) -> Result<ProjectionRecord, PersistError> {
        let Some(row) = row else {
            return Ok(ProjectionRecord::default());
        };
        let damaged = |detail: String| PersistError::CorruptEntry {
            sequence_id: crate::SequenceId::ZERO,
            detail: format!(
                "the record of projection `{name}` in {} {detail}",
                self.shared.target
            ),
        };
        let read =
            || -> Result<(Option<String>, bool, Option<String>, i64), tokio_postgres::Error> {
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            };
        let (offset, paused, source, stored) =
            read().map_err(|e| damaged(format!("cannot be read: {e}")))?;
        let expected = i64::from(record_checksum(
            name,
            offset.as_deref(),
            paused,
            source.as_deref(),
        ));
        if stored != expected {
            return Err(damaged(format!(
                "fails its checksum (stored {stored}, computed {expected}): it was changed \
                 behind the store's back"
            )));
        }
        Ok(ProjectionRecord {
            offset: parse_offset(name, offset.as_deref())?,
            paused,
            source: parse_source(name, source.as_deref())?,
        })
    }

    /// Locks the record of `name` in `tx` (creating it when missing) and
    /// reads it.
    async fn lock_record(
        &self,
        tx: &Transaction<'_>,
        name: &str,
    ) -> Result<Result<ProjectionRecord, PersistError>, tokio_postgres::Error> {
        let fresh = i64::from(record_checksum(name, None, false, None));
        tx.execute(&self.projection_sql(CREATE), &[&name, &fresh])
            .await?;
        let row = tx.query_opt(&self.projection_sql(LOCK), &[&name]).await?;
        Ok(self.record_of(name, row.as_ref()))
    }

    async fn save_record(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        record: &ProjectionRecord,
    ) -> Result<(), tokio_postgres::Error> {
        let offset = record.offset.map(|o| o.to_string());
        let source = record.source.as_ref().map(ToString::to_string);
        let sum = i64::from(record_checksum(
            name,
            offset.as_deref(),
            record.paused,
            source.as_deref(),
        ));
        tx.execute(
            &self.projection_sql(SAVE),
            &[&name, &offset, &record.paused, &source, &sum],
        )
        .await
        .map(drop)
    }

    /// Changes the record of `name` with `change`, in a transaction that
    /// holds its row; `change` may refuse.
    async fn change_record(
        &self,
        name: &str,
        what: &'static str,
        change: impl Fn(&mut ProjectionRecord) -> Result<(), PersistError> + Send + Sync,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        let pid = PersistenceId(format!("projection {name}"));
        let change = &change;
        with_conn!(self, what, &pid, |conn| {
            let tx = conn.transaction().await?;
            let mut record = match self.lock_record(&tx, name).await? {
                Ok(record) => record,
                Err(damaged) => return Ok(Err(damaged)),
            };
            if let Err(refused) = change(&mut record) {
                return Ok(Err(refused));
            }
            self.save_record(&tx, name, &record).await?;
            tx.commit().await?;
            Ok(Ok(()))
        })?
    }

    /// One exactly-once batch: `handler` writes in a transaction that also
    /// moves the offset of `name` from `expected` to the last event's. A
    /// handler error rolls back both.
    pub(crate) async fn project_batch(
        &self,
        name: &str,
        expected: Option<Offset>,
        events: &[EventEnvelope],
        handler: &mut dyn PostgresHandler,
    ) -> Result<(), BatchError> {
        let Some(to) = events.last().map(|e| e.offset) else {
            return Ok(());
        };
        let what = "apply a projection's batch";
        self.check_open().map_err(BatchError::Store)?;
        let deadline = Instant::now() + self.shared.op_timeout;
        let mut conn = self
            .shared
            .connection(what, deadline)
            .await
            .map_err(BatchError::Store)?;
        let pid = PersistenceId(format!("projection {name}"));
        let outcome = tokio::time::timeout_at(deadline, async {
            let tx = conn.transaction().await.map_err(Failure::Driver)?;
            let mut record = self
                .lock_record(&tx, name)
                .await
                .map_err(Failure::Driver)?
                .map_err(Failure::Refused)?;
            if record.offset != expected {
                return Err(Failure::Refused(conflict(name, expected, record.offset)));
            }
            handler
                .handle(&tx, events)
                .await
                .map_err(Failure::Handler)?;
            record.offset = Some(to);
            self.save_record(&tx, name, &record)
                .await
                .map_err(Failure::Driver)?;
            tx.commit().await.map_err(Failure::Driver)
        })
        .await;
        match outcome {
            Ok(Ok(())) => {
                self.shared.committed();
                Ok(())
            }
            Ok(Err(Failure::Handler(e))) => Err(BatchError::Handler(e)),
            Ok(Err(Failure::Refused(e))) => Err(BatchError::Store(e)),
            Ok(Err(Failure::Driver(e))) => {
                Err(BatchError::Store(self.shared.failed(what, &pid, conn, &e)))
            }
            Err(_elapsed) => {
                discard(conn);
                Err(BatchError::Store(self.shared.timed_out(what, true)))
            }
        }
    }
}

/// Why a batch's transaction did not commit.
enum Failure {
    Handler(crate::projection::HandlerError),
    Refused(PersistError),
    Driver(tokio_postgres::Error),
}

/// A session advisory lock, held as long as its connection lives.
struct AdvisoryLease {
    client: tokio_postgres::Client,
}

impl LeaseGuard for AdvisoryLease {
    fn is_held(&self) -> bool {
        !self.client.is_closed()
    }
}

/// The advisory lock key of projection `name` in `schema`: FNV-1a over
/// both (each after its length), as a signed 64-bit key.
fn lock_key(schema: &str, name: &str) -> i64 {
    let (schema_len, name_len) = (
        (schema.len() as u64).to_le_bytes(),
        (name.len() as u64).to_le_bytes(),
    );
    let parts: [&[u8]; 5] = [
        b"dactor_persist projection",
        &schema_len,
        schema.as_bytes(),
        &name_len,
        name.as_bytes(),
    ];
    let hash = parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[async_trait]
impl ProjectionStore for PostgresStorage {
    async fn load_projection(&self, name: &str) -> Result<ProjectionRecord, PersistError> {
        check_name(name)?;
        let pid = PersistenceId(format!("projection {name}"));
        let sql = self.projection_sql(LOAD);
        let row = with_conn!(self, "read a projection's record", &pid, |conn| {
            conn.query_opt(&sql, &[&name]).await
        })?;
        self.record_of(name, row.as_ref())
    }

    async fn advance_projection(
        &self,
        name: &str,
        expected: Option<Offset>,
        to: Offset,
    ) -> Result<(), PersistError> {
        self.change_record(name, "save a projection's offset", |record| {
            if record.offset != expected {
                return Err(conflict(name, expected, record.offset));
            }
            record.offset = Some(to);
            Ok(())
        })
        .await
    }

    async fn set_projection_offset(
        &self,
        name: &str,
        offset: Option<Offset>,
    ) -> Result<(), PersistError> {
        self.change_record(name, "set a projection's offset", |record| {
            record.offset = offset;
            Ok(())
        })
        .await
    }

    async fn set_projection_paused(&self, name: &str, paused: bool) -> Result<(), PersistError> {
        self.change_record(name, "pause or resume a projection", |record| {
            record.paused = paused;
            Ok(())
        })
        .await
    }

    async fn register_projection(
        &self,
        name: &str,
        source: &EventFilter,
    ) -> Result<(), PersistError> {
        self.change_record(name, "register a projection", |record| {
            record.source = Some(source.clone());
            Ok(())
        })
        .await
    }

    async fn projection_names(&self) -> Result<Vec<String>, PersistError> {
        let pid = PersistenceId(String::new());
        let sql = self.projection_sql(NAMES);
        let rows = with_conn!(self, "list the projections", &pid, |conn| {
            conn.query(&sql, &[]).await
        })?;
        Ok(rows
            .iter()
            .filter_map(|row| row.try_get::<_, String>(0).ok())
            .collect())
    }

    async fn try_lease(&self, name: &str) -> Result<Option<ProjectionLease>, PersistError> {
        check_name(name)?;
        self.check_open()?;
        let key = lock_key(&self.shared.schema, name);
        let what = "take a projection's lease";
        let taken = tokio::time::timeout(self.shared.op_timeout, async {
            let client = live::dedicated(&self.shared).await?;
            let held: bool = client.query_one(TRY_LOCK, &[&key]).await?.try_get(0)?;
            Ok::<_, tokio_postgres::Error>(held.then_some(client))
        })
        .await;
        match taken {
            Ok(Ok(Some(client))) => Ok(Some(ProjectionLease::new(AdvisoryLease { client }))),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(self.shared.unavailable(what, &e, false)),
            Err(_elapsed) => Err(self.shared.timed_out(what, false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema_and_name() {
        let a = lock_key("s", "carts");
        assert_eq!(a, lock_key("s", "carts"));
        assert_ne!(a, lock_key("t", "carts"));
        assert_ne!(a, lock_key("s", "cart"));
        assert_ne!(lock_key("s\0x", "y"), lock_key("s", "x\0y"));
    }
}
