//! `#[persist(format = "json")]` on PostgreSQL: the payloads read as JSON
//! in `psql` (`convert_from(payload, 'UTF8')`, or cast to `jsonb`).

use dactor_persist::prelude::*;
use libtest_mimic::Trial;

use crate::support::{fresh, raw, trial};

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "json::json_payloads_read_as_json_in_psql",
        json_in_psql,
    )]
}

#[derive(Debug, PartialEq, PersistentEvent)]
#[persist(format = "json")]
enum Event {
    Added { sku: String, qty: u32 },
}

#[derive(Default, EventSourced)]
#[persist(entity = "JsonCart", event = Event, apply = Self::on, format = "json")]
struct Cart {
    #[persist(id)]
    id: u8,
    qty: u32,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Cart {
    fn on(&mut self, Event::Added { qty, .. }: &Event) {
        self.qty += qty;
    }
}

async fn json_in_psql() {
    let (store, schema) = fresh().await;
    let mut cart = Cart {
        id: 1,
        ..Default::default()
    };
    cart.persist(
        Event::Added {
            sku: "a".into(),
            qty: 2,
        },
        &*store,
    )
    .await
    .unwrap();
    store
        .save_snapshot(
            &cart.persistence_id(),
            cart.seq,
            &cart.snapshot_payload().unwrap(),
        )
        .await
        .unwrap();
    let client = raw().await;
    let q = schema.quoted();
    let row = client
        .query_one(
            &format!(
                "SELECT convert_from(payload, 'UTF8'), convert_from(payload, 'UTF8')::jsonb -> 'Added' ->> 'sku' FROM {q}.journal"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), r#"{"Added":{"qty":2,"sku":"a"}}"#);
    assert_eq!(row.get::<_, String>(1), "a");
    let snap: String = client
        .query_one(
            &format!("SELECT convert_from(payload, 'UTF8') FROM {q}.snapshots"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(snap, r#"{"qty":2}"#);

    let mut again = Cart {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut again, &*store, &*store)
        .await
        .unwrap();
    assert_eq!((again.qty, again.seq), (2, SequenceId(1)));
    store.close().await;
}
