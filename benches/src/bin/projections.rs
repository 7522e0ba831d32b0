//! The projection benchmark: an exactly-once projection catching up over
//! the journal into a simple table (a count per id), batches of 1,000,
//! against a raw loop doing the same reads and writes plus one offset update
//! per batch, in the same run; on SQLite, and on PostgreSQL when
//! `DACTOR_PERSIST_PG_URL` is set.
//!
//! ```sh
//! cargo run --release -p dactor-persist-benches --bin projections -- --runs 3
//! DACTOR_PERSIST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p dactor-persist-benches --bin projections
//! cargo run -p dactor-persist-benches --bin projections -- --quick   # small, checks it runs
//! ```

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dactor_persist::projection::{HandlerError, PostgresHandler, Projection};
use dactor_persist::query::{EventEnvelope, EventQueries};
use dactor_persist::{PostgresStorage, SqliteStorage};
use dactor_persist_benches::fill;
use dactor_persist_benches::stats::{Table, median, per_second, thousands};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const BATCH: usize = 1000;

#[derive(Clone, Copy)]
struct Sizes {
    events: usize,
    ids: usize,
}

const FULL: Sizes = Sizes {
    events: 1_000_000,
    ids: 1000,
};

const QUICK: Sizes = Sizes {
    events: 5_000,
    ids: 50,
};

fn main() -> Result<()> {
    let mut runs = 3usize;
    let mut sizes = FULL;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--quick" => {
                sizes = QUICK;
                runs = 1;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let runs = runs.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("dactor-projections-")
        .tempdir_in(std::env::current_dir()?)?;
    let mut table = Table::default();
    runtime.block_on(sqlite(&dir.path().join("p.db"), sizes, runs, &mut table))?;
    match std::env::var("DACTOR_PERSIST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => runtime.block_on(postgres(&url, sizes, runs, &mut table))?,
        None => eprintln!("DACTOR_PERSIST_PG_URL is not set: PostgreSQL is not measured"),
    }
    table.print(runs);
    Ok(())
}

// ---------------------------------------------------------------------------
// SQLite.
// ---------------------------------------------------------------------------

const SQLITE_UPSERT: &str = "INSERT INTO {t} (id, n) VALUES (?1, 1) \
     ON CONFLICT (id) DO UPDATE SET n = n + 1";

async fn sqlite(path: &Path, sizes: Sizes, runs: usize, table: &mut Table) -> Result<()> {
    eprintln!("SQLite: {} events over {} ids ...", sizes.events, sizes.ids);
    let store = Arc::new(SqliteStorage::open(path).await?);
    fill(&*store, sizes.events, sizes.ids).await?;
    let expected = sizes.events / sizes.ids * sizes.ids;
    let (mut raw, mut ours, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("SQLite: run {run}: raw loop, then the projection ...");
        let r = raw_sqlite(path, &format!("raw_{run}"), expected)?;
        let o = project_sqlite(&store, run, expected).await?;
        raw.push(r);
        ours.push(o);
        ratio.push(o / r);
    }
    store.close().await;
    table.row(
        &format!(
            "SQLite: raw loop, pages of {BATCH} in position order, one transaction per page (an upsert per event, the offset row), synchronous=FULL"
        ),
        format!("{} events/s", thousands(median(raw))),
        "",
        String::new(),
    );
    table.row(
        &format!(
            "SQLite: exactly-once projection catching up over {expected} events (run_in_sqlite, batches of {BATCH})"
        ),
        format!("{} events/s", thousands(median(ours))),
        "raw loop, paired runs",
        format!("{:.2}x", median(ratio)),
    );
    Ok(())
}

/// The raw engine doing what the projection does: read a page of events
/// after the last position, upsert a count per id and move the offset in
/// one transaction; events/s.
fn raw_sqlite(path: &Path, table: &str, expected: usize) -> Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(&format!(
        "CREATE TABLE {table} (id TEXT PRIMARY KEY, n INTEGER NOT NULL);
         CREATE TABLE {table}_offset (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
         INSERT INTO {table}_offset VALUES ('raw', 0);"
    ))?;
    let upsert = SQLITE_UPSERT.replace("{t}", table);
    let save = format!("UPDATE {table}_offset SET position = ?1 WHERE name = 'raw'");
    let started = Instant::now();
    let mut after = 0i64;
    let mut n = 0usize;
    loop {
        let page: Vec<(i64, String)> = {
            let mut read = conn.prepare_cached(
                "SELECT e.position, s.persistence_id, e.event_type, e.payload FROM events e
                 JOIN streams s ON s.id = e.stream WHERE e.position > ?1
                 ORDER BY e.position LIMIT ?2",
            )?;
            read.query_map(rusqlite::params![after, BATCH as i64], |row| {
                let _payload = row.get_ref(3)?.as_blob()?.len();
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let Some(last) = page.last().map(|(p, _)| *p) else {
            break;
        };
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut write = conn.prepare_cached(&upsert)?;
            for (_, id) in &page {
                write.execute([id])?;
            }
            conn.prepare_cached(&save)?.execute([last])?;
        }
        conn.execute_batch("COMMIT")?;
        n += page.len();
        after = last;
    }
    if n != expected {
        return Err(format!("the raw loop read {n} events, not {expected}").into());
    }
    Ok(per_second(n, started.elapsed()))
}

/// The projection, from the start to the head; events/s.
async fn project_sqlite(store: &Arc<SqliteStorage>, run: usize, expected: usize) -> Result<f64> {
    let table = format!("ours_{run}");
    let upsert = SQLITE_UPSERT.replace("{t}", &table);
    let create =
        format!("CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, n INTEGER NOT NULL)");
    let head = store.event_head().await?;
    let started = Instant::now();
    let handle = Projection::all(format!("bench-{run}"))
        .batch(BATCH, Duration::from_millis(5))
        .run_in_sqlite(
            store.clone(),
            move |conn: &rusqlite::Connection,
                  events: &[EventEnvelope]|
                  -> Result<(), HandlerError> {
                conn.execute_batch(&create)?;
                let mut write = conn.prepare_cached(&upsert)?;
                for event in events {
                    write.execute([event.persistence_id.as_str()])?;
                }
                Ok(())
            },
        )?;
    handle.wait_for(head).await?;
    let elapsed = started.elapsed();
    let status = handle.stop().await;
    if status.events_handled as usize != expected {
        return Err(format!(
            "the projection handled {}, not {expected}",
            status.events_handled
        )
        .into());
    }
    Ok(per_second(expected, elapsed))
}

// ---------------------------------------------------------------------------
// PostgreSQL.
// ---------------------------------------------------------------------------

/// One multi-row upsert per batch: the ids, counted.
const PG_UPSERT: &str = "INSERT INTO {t} (id, n) SELECT id, count(*) FROM unnest($1::TEXT[]) AS id \
     GROUP BY id ON CONFLICT (id) DO UPDATE SET n = {t}.n + excluded.n";

struct Counts {
    upsert: String,
}

#[dactor_persist::async_trait]
impl PostgresHandler for Counts {
    async fn handle(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        let ids: Vec<&str> = events.iter().map(|e| e.persistence_id.as_str()).collect();
        tx.execute(&self.upsert, &[&ids]).await?;
        Ok(())
    }
}

async fn postgres(url: &str, sizes: Sizes, runs: usize, table: &mut Table) -> Result<()> {
    let schema = format!("dactor_bench_projections_{}", std::process::id());
    eprintln!(
        "PostgreSQL: {} events over {} ids ...",
        sizes.events, sizes.ids
    );
    let store = Arc::new(
        PostgresStorage::builder(url)
            .schema(&schema)
            .connect()
            .await?,
    );
    fill(&*store, sizes.events, sizes.ids).await?;
    let expected = sizes.events / sizes.ids * sizes.ids;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("VACUUM ANALYZE \"{schema}\".journal"))
        .await?;
    let (mut raw, mut ours, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("PostgreSQL: run {run}: raw loop, then the projection ...");
        let r = raw_postgres(url, &schema, run, expected).await?;
        let o = project_postgres(&store, &schema, run, expected).await?;
        raw.push(r);
        ours.push(o);
        ratio.push(o / r);
    }
    store.close().await;
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await?;
    table.row(
        &format!(
            "PostgreSQL: raw loop, pages of {BATCH} in (tx_id, position) order, one transaction per page (one multi-row upsert, the offset row)"
        ),
        format!("{} events/s", thousands(median(raw))),
        "",
        String::new(),
    );
    table.row(
        &format!(
            "PostgreSQL: exactly-once projection catching up over {expected} events (run_in_postgres, batches of {BATCH})"
        ),
        format!("{} events/s", thousands(median(ours))),
        "raw loop, paired runs",
        format!("{:.2}x", median(ratio)),
    );
    Ok(())
}

async fn raw_postgres(url: &str, schema: &str, run: usize, expected: usize) -> Result<f64> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let t = format!("\"{schema}\".raw_{run}");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id TEXT PRIMARY KEY, n BIGINT NOT NULL);
             CREATE TABLE {t}_offset (name TEXT PRIMARY KEY, tx BIGINT, position BIGINT);
             INSERT INTO {t}_offset VALUES ('raw', 0, 0);"
        ))
        .await?;
    let read = client
        .prepare(&format!(
            "SELECT tx_id, position, persistence_id, event_type, payload FROM \"{schema}\".journal
             WHERE (tx_id, position) > ($1, $2) ORDER BY tx_id, position LIMIT {BATCH}"
        ))
        .await?;
    let upsert = PG_UPSERT.replace("{t}", &t);
    let save = format!("UPDATE {t}_offset SET tx = $1, position = $2 WHERE name = 'raw'");
    let started = Instant::now();
    let (mut tx_id, mut position) = (0i64, 0i64);
    let mut n = 0;
    loop {
        let rows = client.query(&read, &[&tx_id, &position]).await?;
        let Some(last) = rows.last() else { break };
        let (last_tx, last_pos): (i64, i64) = (last.get(0), last.get(1));
        let ids: Vec<&str> = rows.iter().map(|r| r.get::<_, &str>(2)).collect();
        let tx = client.transaction().await?;
        tx.execute(&upsert, &[&ids]).await?;
        tx.execute(&save, &[&last_tx, &last_pos]).await?;
        tx.commit().await?;
        n += rows.len();
        (tx_id, position) = (last_tx, last_pos);
    }
    if n != expected {
        return Err(format!("the raw loop read {n} events, not {expected}").into());
    }
    Ok(per_second(n, started.elapsed()))
}

async fn project_postgres(
    store: &Arc<PostgresStorage>,
    schema: &str,
    run: usize,
    expected: usize,
) -> Result<f64> {
    let t = format!("\"{schema}\".ours_{run}");
    let (client, connection) = tokio_postgres::connect(
        &std::env::var("DACTOR_PERSIST_PG_URL")?,
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"
        ))
        .await?;
    let head = store.event_head().await?;
    let started = Instant::now();
    let handle = Projection::all(format!("bench-{run}"))
        .batch(BATCH, Duration::from_millis(5))
        .run_in_postgres(
            store.clone(),
            Counts {
                upsert: PG_UPSERT.replace("{t}", &t),
            },
        )?;
    handle.wait_for(head).await?;
    let elapsed = started.elapsed();
    let status = handle.stop().await;
    if status.events_handled as usize != expected {
        return Err(format!(
            "the projection handled {}, not {expected}",
            status.events_handled
        )
        .into());
    }
    Ok(per_second(expected, elapsed))
}
