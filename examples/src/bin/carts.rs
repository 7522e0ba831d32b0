//! A read model kept by a projection: shopping carts persist what happens to
//! them, and the `checked_out_carts` table (in the same SQLite file) lists
//! every checked-out cart with its total, kept exactly once by a projection
//! the runtime hosts. Then the read model is rebuilt from the journal and
//! comes out the same. Run it twice: the second run resumes the projection
//! where the first left it, applying nothing twice.
//!
//! ```sh
//! cargo run -p dactor-persist-examples --bin carts            # ./carts.db
//! cargo run -p dactor-persist-examples --bin carts -- /tmp/x.db
//! ```

use std::process::ExitCode;

use dactor_persist_examples::cli;
use std::sync::Arc;
use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::projection::{HandlerError, Projection, decode_all};
use dactor_persist::query::{EventEnvelope, EventQueries};
use dactor_persist::runtime::{Context, Handler, Message, Runtime};
use dactor_persist::rusqlite::{Connection, params};
use dactor_persist::{SqliteStorage, SqliteStorageProvider};

/// What happens to a cart; a checkout is tagged, so a query by tag (or a
/// projection over it) finds every one.
#[derive(Debug, Clone, PartialEq, PersistentEvent)]
enum CartEvent {
    ItemAdded {
        sku: String,
        price: u64,
    },
    #[persist(tag = "checkout")]
    CheckedOut {
        total: u64,
    },
}

#[derive(Debug, Default, EventSourced)]
#[persist(entity = "Cart", event = CartEvent)]
struct Cart {
    #[persist(id)]
    id: String,
    total: u64,
    checked_out: bool,
    #[persist(sequence)]
    seq: SequenceId,
}

impl ApplyEvent<CartEvent> for Cart {
    fn apply_event(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded { price, .. } => self.total += price,
            CartEvent::CheckedOut { .. } => self.checked_out = true,
        }
    }
}

struct Add(&'static str, u64);
struct CheckOut;
impl Message for Add {
    type Reply = Result<(), String>;
}
impl Message for CheckOut {
    type Reply = Result<u64, String>;
}

#[async_trait]
impl Handler<Add> for Cart {
    async fn handle(
        &mut self,
        Add(sku, price): Add,
        ctx: &mut Context<Self>,
    ) -> Result<(), String> {
        if self.checked_out {
            return Err(format!("cart {} is checked out", self.id));
        }
        let event = CartEvent::ItemAdded {
            sku: sku.to_owned(),
            price,
        };
        ctx.persist(self, event)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Handler<CheckOut> for Cart {
    async fn handle(&mut self, _: CheckOut, ctx: &mut Context<Self>) -> Result<u64, String> {
        if !self.checked_out {
            let total = self.total;
            ctx.persist(self, CartEvent::CheckedOut { total })
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(self.total)
    }
}

/// The projection's handler: it writes the read model through the store's
/// own connection, in the transaction that also saves its offset. So a
/// crash anywhere leaves both or neither: every checkout is listed once.
fn list_checkouts(conn: &Connection, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS checked_out_carts (cart TEXT PRIMARY KEY, total INTEGER NOT NULL)",
    )?;
    for event in decode_all::<CartEvent>(events)? {
        if let CartEvent::CheckedOut { total } = event.event {
            conn.execute(
                "INSERT INTO checked_out_carts (cart, total) VALUES (?1, ?2)",
                params![event.persistence_id.as_str(), total as i64],
            )?;
        }
    }
    Ok(())
}

fn checkouts() -> Projection {
    Projection::by_tag("checked-out-carts", "checkout").batch(1000, Duration::from_millis(20))
}

/// The read model as the file holds it.
fn read_model(path: &str) -> Result<Vec<(String, i64)>, Box<dyn std::error::Error>> {
    let conn = Connection::open(path)?;
    let mut stmt = conn.prepare("SELECT cart, total FROM checked_out_carts ORDER BY cart")?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

const USAGE: &str = "\
usage: carts [DATABASE]

Shopping carts as event-sourced actors in a SQLite file (default ./carts.db),
and a projection that keeps a table of the checked-out carts in the same file,
exactly once. Each run adds three carts; run it again and the projection
applies only what is new.";

#[tokio::main]
async fn main() -> ExitCode {
    cli::main_with_database("carts.db", USAGE, |path| async move { run(&path).await }).await
}

async fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStorage::open(path).await?);
    let runtime = Runtime::builder()
        .storage(SqliteStorageProvider::from_storage(store.clone()))
        .build();
    // Resumes from the offset the file keeps: a second run applies only
    // what is new.
    let projection = checkouts().run_in_sqlite(store.clone(), list_checkouts)?;

    // Three new carts per run, two of them checked out.
    let run = read_model(path).map_or(1, |rows| rows.len() / 2 + 1);
    for (n, items) in [
        (1, vec![("book", 12), ("pen", 3)]),
        (2, vec![("lamp", 40)]),
        (3, vec![("mug", 9)]),
    ] {
        let id = format!("run{run}-cart{n}");
        let cart = runtime
            .spawn_event_sourced(Cart {
                id: id.clone(),
                ..Default::default()
            })
            .await?;
        for (sku, price) in items {
            cart.ask(Add(sku, price)).await??;
        }
        if n != 3 {
            let total = cart.ask(CheckOut).await??;
            println!("{id}: checked out, total {total}");
        } else {
            println!("{id}: left open");
        }
    }
    // Every checkout persisted so far is in the read model once the
    // projection reaches the head.
    projection.wait_for(store.event_head().await?).await?;
    let listed = read_model(path)?;
    println!("checked_out_carts ({} rows):", listed.len());
    for (cart, total) in &listed {
        println!("  {cart:<16} {total:>5}");
    }

    // A rebuild: pause, empty the table, clear the offset, resume. The
    // projection handles every checkout again, from the journal.
    projection.pause().await?;
    Connection::open(path)?.execute_batch("DELETE FROM checked_out_carts")?;
    projection.clear_offset().await?;
    projection.resume().await?;
    projection.wait_for(store.event_head().await?).await?;
    let rebuilt = read_model(path)?;
    assert_eq!(rebuilt, listed, "the rebuilt read model differs");
    println!("rebuilt from the journal: the same {} rows", rebuilt.len());

    runtime.host_projection(projection);
    runtime.shutdown().await;
    store.close().await;
    Ok(())
}
