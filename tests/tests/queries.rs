//! The read side through the whole stack: tags from the derive, metadata
//! from the runtime's `Context`, typed envelopes, and live queries across
//! two stores on one SQLite file (as two processes would have).

use std::sync::Arc;
use std::time::Duration;

use dactor_persist::prelude::*;
use dactor_persist::query::{Offset, ReadJournal};
use dactor_persist::runtime::{Context, Handler, Message, Runtime};
use dactor_persist::{InMemoryStorage, Metadata, SqliteStorage, SqliteStorageProvider};

fn big_order(order: &CartEvent) -> Vec<String> {
    match order {
        CartEvent::CheckedOut { total } if *total >= 100 => vec!["big-order".into()],
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
#[persist(tags = big_order)]
enum CartEvent {
    #[persist(tag = "cart-activity")]
    ItemAdded { sku: String, price: u64 },
    #[persist(tag = "checkout", tag = "cart-activity")]
    CheckedOut { total: u64 },
}

#[derive(Debug, Default, EventSourced)]
#[persist(entity = "Cart", event = CartEvent)]
struct Cart {
    #[persist(id)]
    id: String,
    total: u64,
    done: bool,
    #[persist(sequence)]
    seq: SequenceId,
}

impl ApplyEvent<CartEvent> for Cart {
    fn apply_event(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded { price, .. } => self.total += price,
            CartEvent::CheckedOut { .. } => self.done = true,
        }
    }
}

struct Add(&'static str, u64);
impl Message for Add {
    type Reply = Result<(), PersistError>;
}

struct Checkout {
    request: &'static str,
}
impl Message for Checkout {
    type Reply = Result<u64, PersistError>;
}

#[async_trait]
impl Handler<Add> for Cart {
    async fn handle(
        &mut self,
        Add(sku, price): Add,
        ctx: &mut Context<Self>,
    ) -> Result<(), PersistError> {
        ctx.persist(
            self,
            CartEvent::ItemAdded {
                sku: sku.into(),
                price,
            },
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Handler<Checkout> for Cart {
    async fn handle(
        &mut self,
        msg: Checkout,
        ctx: &mut Context<Self>,
    ) -> Result<u64, PersistError> {
        ctx.set_metadata(
            Metadata::new()
                .with_correlation_id(msg.request)
                .with_header("channel", "web"),
        );
        ctx.persist(self, CartEvent::CheckedOut { total: self.total })
            .await?;
        Ok(self.total)
    }
}

#[test]
fn derived_tags_are_each_variants_and_the_functions() {
    let added = CartEvent::ItemAdded {
        sku: "x".into(),
        price: 1,
    };
    assert_eq!(added.tags(), ["cart-activity"]);
    let small = CartEvent::CheckedOut { total: 5 };
    assert_eq!(small.tags(), ["checkout", "cart-activity"]);
    let big = CartEvent::CheckedOut { total: 500 };
    assert_eq!(big.tags(), ["checkout", "cart-activity", "big-order"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_metadata_written_by_actors_are_read_back_typed() {
    let dir = tempfile::tempdir().unwrap();
    let provider = SqliteStorageProvider::open(dir.path().join("carts.db"))
        .await
        .unwrap();
    let store = provider.storage().clone();
    let runtime = Runtime::builder().storage(provider).build();
    for (id, price) in [("c1", 30), ("c2", 150), ("c3", 10)] {
        let cart = runtime
            .spawn_event_sourced(Cart {
                id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        cart.ask(Add("sku", price)).await.unwrap().unwrap();
        if id != "c3" {
            cart.ask(Checkout { request: id }).await.unwrap().unwrap();
        }
        // Metadata is per message: an event persisted afterwards has none.
        cart.ask(Add("late", 1)).await.unwrap().unwrap();
    }
    runtime.shutdown().await;

    let journal = ReadJournal::new(store.clone());
    let mut checkouts = journal
        .current_events_by_tag("checkout", Offset::START)
        .typed::<CartEvent>();
    let mut seen = Vec::new();
    while let Some(e) = checkouts.next().await {
        let e = e.unwrap();
        assert_eq!(
            e.metadata.correlation_id.as_deref(),
            Some(e.persistence_id.as_str().trim_start_matches("Cart:"))
        );
        assert_eq!(
            e.metadata.headers.get("channel").map(String::as_str),
            Some("web")
        );
        seen.push((e.persistence_id.0.clone(), e.event));
    }
    assert_eq!(
        seen,
        vec![
            ("Cart:c1".to_owned(), CartEvent::CheckedOut { total: 30 }),
            ("Cart:c2".to_owned(), CartEvent::CheckedOut { total: 150 }),
        ]
    );
    let big: Vec<String> = {
        let mut s = journal.current_events_by_tag("big-order", Offset::START);
        let mut v = Vec::new();
        while let Some(e) = s.next().await {
            v.push(e.unwrap().persistence_id.0);
        }
        v
    };
    assert_eq!(big, ["Cart:c2"]);
    let mut all = journal.current_events_by_entity_type("Cart", Offset::START);
    let mut untagged_metadata = 0;
    while let Some(e) = all.next().await {
        let e = e.unwrap();
        if e.event_type == "ItemAdded" {
            assert!(
                e.metadata.is_empty(),
                "metadata leaked past its message: {e:?}"
            );
            untagged_metadata += 1;
        }
    }
    assert_eq!(untagged_metadata, 6);
    let ids = journal
        .current_persistence_ids(Some("Cart"))
        .collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_sees_commits_of_another_store_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let writer = SqliteStorage::open(&path).await.unwrap();
    let reader = Arc::new(
        SqliteStorage::builder(&path)
            .change_poll_interval(Duration::from_millis(20))
            // Only the change counter can wake it within the 5 s below.
            .poll_interval(Duration::from_secs(60))
            .open()
            .await
            .unwrap(),
    );
    let journal = ReadJournal::new(reader.clone());
    let mut live = journal.all_events(Offset::START);
    // Nothing yet: the stream waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), live.next())
            .await
            .is_err(),
        "a live stream on an empty log delivered something"
    );
    let pid = PersistenceId::new("Other", "1");
    writer
        .write_event(&pid, SequenceId(1), "E", b"x")
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .expect("the other store's commit reached the live query")
        .unwrap()
        .unwrap();
    assert_eq!(event.persistence_id, pid);
    writer.close().await;
    reader.close().await;
}

/// A stream of the global order reads the next page while its consumer
/// works through a full one; a read that fails, ahead or not, surfaces as
/// one error and the stream goes on from the last event delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_read_ahead_lose_and_repeat_nothing_when_reads_fail() {
    use dactor_persist::testkit::{FailingStorage, Op};

    let store = Arc::new(FailingStorage::new(InMemoryStorage::new()));
    for n in 0..40i64 {
        let pid = PersistenceId::new("Acct", &format!("a{}", n % 7));
        let seq = store.inner().read_highest_sequence(&pid).await.unwrap();
        let next = SequenceId(seq.map_or(1, |s| s.0 + 1));
        store
            .inner()
            .write_event(&pid, next, "E", &n.to_le_bytes())
            .await
            .unwrap();
    }
    let journal = ReadJournal::new(store.clone()).page_size(3);
    for fail_at in 0..16u64 {
        // The first `fail_at` reads pass, then every read fails until the
        // consumer has seen two errors.
        store.heal().only(&[Op::Query]);
        let mut stream = journal.current_all_events(Offset::START);
        let mut seen = Vec::new();
        let mut errors = 0;
        let calls_before = store.calls(Op::Query);
        store.fail_after(fail_at);
        loop {
            match stream.next().await {
                Some(Ok(e)) => seen.push(i64::from_le_bytes(e.payload.try_into().unwrap())),
                Some(Err(e)) => {
                    errors += 1;
                    assert!(errors <= 3, "the stream kept failing: {e}");
                    if errors == 2 {
                        store.heal();
                    }
                }
                None => break,
            }
        }
        assert!(store.calls(Op::Query) > calls_before);
        assert_eq!(
            seen,
            (0..40).collect::<Vec<_>>(),
            "failing after {fail_at} query reads: events lost, repeated or reordered"
        );
        if fail_at < 10 {
            assert!(errors >= 2, "no failure reached the consumer at {fail_at}");
        }
    }
}

/// Reads from tasks of a `LocalSet` on a multi-threaded runtime, where tokio
/// does not support `block_in_place`: with inline reads off they go to the
/// blocking pool and work.
#[test]
fn a_store_used_from_a_local_set_reads_without_blocking_in_place() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    runtime.block_on(async {
        let store = SqliteStorage::builder(&path)
            .inline_reads(false)
            .open()
            .await
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                tokio::task::spawn_local(async move {
                    let pid = PersistenceId::new("Local", "1");
                    store
                        .write_event(&pid, SequenceId(1), "E", b"x")
                        .await
                        .unwrap();
                    let events = store.read_events(&pid, SequenceId(1)).await.unwrap();
                    assert_eq!(events.len(), 1);
                    store.close().await;
                })
                .await
                .unwrap();
            })
            .await;
    });
}
