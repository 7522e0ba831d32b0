//! The schema: checking the database is one this code may use, and applying
//! the versioned migrations of `migrations/postgres/`.

use std::time::Duration;

use deadpool_postgres::Object;

use super::{Shared, errors, sql};
use crate::PersistError;

/// The schema migrations, in order: (version, name, SQL with `{schema}`).
/// Each is applied once, in the same transaction as the row recording it.
/// Migration 2 is followed by a step in Rust, in the same transaction:
/// [`v2::rewrite_checksums`](super::v2::rewrite_checksums).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "checksums_cover_ids",
        include_str!("../../../migrations/postgres/0002_checksums_cover_ids.sql"),
    ),
    (
        3,
        "event_queries",
        include_str!("../../../migrations/postgres/0003_event_queries.sql"),
    ),
    (
        4,
        "projections",
        include_str!("../../../migrations/postgres/0004_projections.sql"),
    ),
];

/// Migration 2's triggers, for PostgreSQL itself (the Postgres-wire
/// databases do not all have statement triggers with transition tables).
const JOURNAL_TRIGGERS: &str =
    include_str!("../../../migrations/postgres/0002_journal_triggers.sql");

/// True when the server is PostgreSQL (or a fork that says so first, as
/// YugabyteDB does), not CockroachDB.
async fn is_postgresql(
    tx: &deadpool_postgres::Transaction<'_>,
) -> Result<bool, tokio_postgres::Error> {
    let version: String = tx.query_one("SELECT version()", &[]).await?.try_get(0)?;
    Ok(version.starts_with("PostgreSQL"))
}

/// The newest schema version this code knows.
pub(super) const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// How many times a migration that raced with another node's is looked at again.
const ATTEMPTS: u32 = 5;

impl Shared {
    /// Creates the schema when missing, refuses one whose version is newer
    /// than this code's, and applies the pending migrations. Several nodes may
    /// run it at once: the version table's primary key lets exactly one
    /// record each migration, and the others look again and find it done.
    pub(super) async fn migrate(&self, conn: &mut Object) -> Result<(), PersistError> {
        let mut attempt = 0;
        loop {
            match self.try_migrate(conn).await {
                Ok(()) => return Ok(()),
                Err(Step::Driver(what, e))
                    if errors::is_migration_race(&e) && attempt < ATTEMPTS =>
                {
                    attempt += 1;
                    tracing::debug!(error = %errors::describe(&e), what, attempt, "migration raced another node; looking again");
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                Err(Step::Driver(what, e)) => return Err(self.unavailable(what, &e, false)),
                Err(Step::Refused(err)) => return Err(err),
            }
        }
    }

    async fn try_migrate(&self, conn: &mut Object) -> Result<(), Step> {
        let driver = |what: &'static str| move |e| Step::Driver(what, e);
        let server = conn
            .query_one(sql::server_version!(), &[])
            .await
            .map_err(driver("cannot read the server version"))?;
        let (version, number): (String, i32) = (
            server
                .try_get(0)
                .map_err(driver("cannot read the server version"))?,
            server
                .try_get(1)
                .map_err(driver("cannot read the server version"))?,
        );
        self.refuse_server(&version, number)?;
        // Read first: a database this code must refuse is left untouched.
        let has_table = conn
            .query_opt(sql::version_table_exists!(), &[&self.schema])
            .await
            .map_err(driver("cannot look for the schema version table"))?
            .is_some();
        if has_table {
            let current = self.version(conn).await?;
            self.refuse_newer(current)?;
            if current == LATEST_VERSION {
                return Ok(());
            }
        } else {
            let has_schema = conn
                .query_opt(sql::schema_exists!(), &[&self.schema])
                .await
                .map_err(driver("cannot look for the schema"))?
                .is_some();
            if !has_schema {
                conn.batch_execute(&self.in_schema(sql::create_schema!()))
                    .await
                    .map_err(driver("cannot create the schema"))?;
            }
            conn.batch_execute(&self.in_schema(sql::create_version_table!()))
                .await
                .map_err(driver("cannot create the schema version table"))?;
        }

        let tx = conn
            .transaction()
            .await
            .map_err(driver("cannot start the migration transaction"))?;
        let current: i64 = tx
            .query_one(&self.in_schema(sql::schema_version!()), &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(driver("cannot read the schema version"))?;
        self.refuse_newer(current)?;
        for (version, name, migration) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
            tx.batch_execute(&self.in_schema(migration))
                .await
                .map_err(driver("a migration failed"))?;
            if *version == 2 {
                super::v2::rewrite_checksums(&tx, &self.quoted_schema)
                    .await
                    .map_err(driver("migration 2 cannot rewrite the checksums"))?;
                if is_postgresql(&tx)
                    .await
                    .map_err(driver("cannot read the server version"))?
                {
                    tx.batch_execute(&self.in_schema(JOURNAL_TRIGGERS))
                        .await
                        .map_err(driver("migration 2 cannot create the journal triggers"))?;
                } else {
                    tracing::warn!(schema = %self.schema, "the server is not PostgreSQL: no journal triggers, so events removed by hand from the end of a journal cannot be noticed");
                }
            }
            tx.execute(&self.in_schema(sql::record_version!()), &[version, name])
                .await
                .map_err(driver("cannot record the schema version"))?;
            tracing::info!(schema = %self.schema, version, name, "applied PostgreSQL migration");
        }
        tx.commit()
            .await
            .map_err(driver("cannot commit the migrations"))?;
        Ok(())
    }

    async fn version(&self, conn: &Object) -> Result<i64, Step> {
        conn.query_one(&self.in_schema(sql::schema_version!()), &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| Step::Driver("cannot read the schema version", e))
    }

    fn refuse_newer(&self, version: i64) -> Result<(), Step> {
        if version > LATEST_VERSION {
            return Err(Step::Refused(PersistError::IncompatibleStore(format!(
                "{} has schema version {version}, newer than the newest this dactor-persist \
                 knows ({LATEST_VERSION}); use a newer dactor-persist. Nothing was changed",
                self.target
            ))));
        }
        Ok(())
    }

    /// Refuses a server [`unusable`] says this store cannot use; nothing
    /// is changed.
    fn refuse_server(&self, version: &str, number: i32) -> Result<(), Step> {
        match unusable(version, number) {
            Some(why) => Err(Step::Refused(PersistError::IncompatibleStore(format!(
                "{} runs `{version}`, which this store cannot use: {why}. The store needs \
                 PostgreSQL 13 or newer. Nothing was changed",
                self.target
            )))),
            None => Ok(()),
        }
    }

    fn in_schema(&self, sql: &str) -> String {
        sql::in_schema(sql, &self.quoted_schema)
    }
}

/// Why a server (by its `version()` and `server_version_num`) lacks what
/// the global order of events stands on (see
/// `migrations/postgres/0003_event_queries.sql`): PostgreSQL's own
/// transaction ids, one order across the whole cluster, and
/// `pg_current_snapshot()` (PostgreSQL 13). CockroachDB and YugabyteDB speak
/// the protocol but have no such ids.
fn unusable(version: &str, number: i32) -> Option<&'static str> {
    if !version.starts_with("PostgreSQL") {
        Some("it is not PostgreSQL (CockroachDB has no transaction ids to order events by)")
    } else if version.contains("-YB-") {
        Some("YugabyteDB has no cluster-wide transaction ids to order events by")
    } else if number < 130_000 {
        Some("it is older than PostgreSQL 13, which brought pg_current_snapshot()")
    } else {
        None
    }
}

/// Why a migration step failed.
enum Step {
    Driver(&'static str, tokio_postgres::Error),
    Refused(PersistError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_without_postgresql_transaction_ids_are_refused() {
        let ok = "PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu";
        assert_eq!(unusable(ok, 150020), None);
        assert_eq!(unusable("PostgreSQL 13.0 on aarch64", 130000), None);
        let refused = [
            ("CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu)", 130000),
            (
                "PostgreSQL 11.2-YB-2.18.0.0-b0 on x86_64-pc-linux-gnu",
                110002,
            ),
            (
                "PostgreSQL 15.2-YB-2.25.0.0-b0 on x86_64-pc-linux-gnu",
                150002,
            ),
            ("PostgreSQL 12.17 on x86_64-pc-linux-gnu", 120017),
        ];
        for (version, number) in refused {
            assert!(
                unusable(version, number).is_some(),
                "{version} was accepted"
            );
        }
    }

    #[test]
    fn migrations_are_numbered_one_up_from_one() {
        for (i, (version, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
            assert!(
                sql.contains("{schema}."),
                "migration {version} names no table"
            );
        }
    }
}
