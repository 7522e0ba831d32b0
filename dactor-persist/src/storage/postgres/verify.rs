//! [`PostgresStorage::verify`](super::PostgresStorage::verify): `amcheck`'s
//! index check where the extension is installed, then every row of the
//! schema, in one read-only snapshot.

use futures_util::TryStreamExt;
use tokio_postgres::Row;

use super::{PostgresStorage, checksum, errors, sql};
use crate::PersistError;
use crate::storage::verify::{Bookkeeping, EngineCheck, JournalWalk, MetaRead, VerifyReport};

impl PostgresStorage {
    /// Checks the whole schema and repairs nothing: PostgreSQL's `amcheck`
    /// on every index of the store's tables (when that extension is
    /// installed in the database; the report says so when it is not), the
    /// checksum of every event, snapshot, state and journal bookkeeping row,
    /// and that every journal holds exactly the events its bookkeeping
    /// promises (`deleted_to + 1 ..= highest`). It reads in one
    /// `REPEATABLE READ READ ONLY` transaction, so writes go on meanwhile; it
    /// is not bounded by the operation timeout.
    ///
    /// From the command line: `dactor-persist verify --postgres <url>
    /// [--schema <name>]` (the `cli` feature's binary, built with `postgres`).
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`] when no connection can be had or
    /// the transaction cannot start; damage found is in the report, and a
    /// server error midway is its [`stopped`](crate::storage::VerifyReport::stopped).
    pub async fn verify(&self) -> Result<VerifyReport, PersistError> {
        self.check_open()?;
        let shared = &self.shared;
        let deadline = tokio::time::Instant::now() + shared.op_timeout;
        let mut conn = shared.connection("verify", deadline).await?;
        let mut report = VerifyReport::new(format!("PostgreSQL {}", shared.target));
        let mut tx = conn
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| shared.unavailable("verify: cannot start a transaction", &e, false))?;
        report.engine_check = engine_check(&mut tx, &shared.schema).await;
        let walked = walk(&tx, &shared.quoted_schema, &mut report).await;
        let _ = tx.rollback().await;
        if let Err(e) = walked {
            report.stopped = Some(errors::describe(&e));
        }
        Ok(report)
    }
}

async fn engine_check(tx: &mut deadpool_postgres::Transaction<'_>, schema: &str) -> EngineCheck {
    // A failed statement would abort the transaction: run it in a savepoint.
    let installed = match tx.query_opt(sql::amcheck_installed!(), &[]).await {
        Ok(row) => row.is_some(),
        Err(e) => return EngineCheck::NotRun(errors::describe(&e)),
    };
    if !installed {
        return EngineCheck::NotRun(
            "the amcheck extension is not installed in this database (CREATE EXTENSION \
             amcheck adds it)"
                .into(),
        );
    }
    let Ok(savepoint) = tx.savepoint("amcheck").await else {
        return EngineCheck::NotRun("cannot open a savepoint".into());
    };
    let outcome = match savepoint.query(sql::amcheck_indexes!(), &[&schema]).await {
        Ok(_) => EngineCheck::Passed,
        Err(e) => EngineCheck::Failed(vec![errors::describe(&e)]),
    };
    let _ = savepoint.rollback().await;
    outcome
}

async fn walk(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    report: &mut VerifyReport,
) -> Result<(), tokio_postgres::Error> {
    let q = |text: &str| sql::in_schema(text, schema);
    let no_params: [&(dyn tokio_postgres::types::ToSql + Sync); 0] = [];

    let mut journals = JournalWalk::new(Bookkeeping::RemovalsOnly);
    let walked = async {
        let rows = tx.query_raw(&q(sql::verify_journal!()), no_params).await?;
        futures_util::pin_mut!(rows);
        while let Some(row) = rows.try_next().await? {
            let pid: String = row.try_get(0)?;
            let has_meta: bool = row.try_get(1)?;
            let meta = has_meta.then(|| meta(&row));
            let event = row
                .try_get::<_, Option<i64>>(5)?
                .map(|seq| (seq, event(&row, &pid, seq)));
            journals.row(&pid, meta, event);
        }
        Ok::<(), tokio_postgres::Error>(())
    }
    .await;
    journals.finish(report);
    walked?;

    let rows = tx
        .query_raw(&q(sql::verify_snapshots!()), no_params)
        .await?;
    futures_util::pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        report.snapshots_checked += 1;
        let pid: String = row.try_get(0)?;
        let seq: i64 = row.try_get(1)?;
        let payload: &[u8] = row.try_get(2)?;
        let stored: i64 = row.try_get(3)?;
        if let Err(detail) = matches(stored, checksum::snapshot(&pid, seq, payload)) {
            report.damaged(false, &pid, seq, detail);
        }
    }

    let rows = tx.query_raw(&q(sql::verify_states!()), no_params).await?;
    futures_util::pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        report.states_checked += 1;
        let pid: String = row.try_get(0)?;
        let payload: &[u8] = row.try_get(1)?;
        let stored: i64 = row.try_get(2)?;
        if let Err(detail) = matches(stored, checksum::state(&pid, payload)) {
            report.damaged(true, &pid, 0, detail);
        }
    }
    Ok(())
}

fn meta(row: &Row) -> MetaRead {
    let values = (
        row.try_get::<_, Option<i64>>(2),
        row.try_get::<_, Option<i64>>(3),
        row.try_get::<_, Option<bool>>(4),
    );
    match values {
        (Ok(Some(highest)), Ok(Some(deleted_to)), Ok(Some(true))) => Ok((highest, deleted_to)),
        (Ok(highest), Ok(deleted_to), Ok(_)) => Err(format!(
            "fails its checksum (highest {highest:?}, deleted to {deleted_to:?})"
        )),
        _ => Err("cannot be read".into()),
    }
}

fn event(row: &Row, pid: &str, seq: i64) -> Result<(), String> {
    let event_type: &str = row.try_get(6).map_err(|e| e.to_string())?;
    let payload: &[u8] = row.try_get(7).map_err(|e| e.to_string())?;
    let stored: i64 = row.try_get(8).map_err(|e| e.to_string())?;
    matches(stored, checksum::event(pid, seq, event_type, payload))
}

fn matches(stored: i64, expected: u32) -> Result<(), String> {
    if stored == i64::from(expected) {
        Ok(())
    } else {
        Err(format!(
            "fails its checksum (stored {stored}, computed {expected})"
        ))
    }
}
