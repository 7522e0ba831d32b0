//! `#[persist(format = "json")]`: events, snapshots and states as JSON,
//! readable with `sqlite3`, tolerant of added and removed fields, and able
//! to read the postcard rows a type wrote before it switched.

use dactor_persist::SqliteStorage;
use dactor_persist::prelude::*;

mod v1 {
    use dactor_persist::prelude::*;
    /// Postcard, as the type started.
    #[derive(Debug, PartialEq, PersistentEvent)]
    pub enum Cart {
        ItemAdded { sku: String },
        Removed(String),
        Cleared,
    }
}

mod v2 {
    use dactor_persist::prelude::*;
    /// Switched to JSON, and a field added.
    #[derive(Debug, PartialEq, PersistentEvent)]
    #[persist(format = "json")]
    pub enum Cart {
        ItemAdded {
            sku: String,
            #[persist(default)]
            qty: u32,
        },
        Removed(String),
        Cleared,
    }
}

#[test]
fn json_events_are_plain_json_under_their_stored_name() {
    let cases = [
        (
            v2::Cart::ItemAdded {
                sku: "a".into(),
                qty: 2,
            },
            r#"{"ItemAdded":{"qty":2,"sku":"a"}}"#,
        ),
        (v2::Cart::Removed("b".into()), r#"{"Removed":["b"]}"#),
        (v2::Cart::Cleared, r#"{"Cleared":null}"#),
    ];
    for (event, text) in cases {
        let bytes = event.encode().unwrap();
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), text);
        assert_eq!(v2::Cart::decode(&bytes).unwrap(), event);
    }
}

#[test]
fn json_events_tolerate_added_and_removed_fields() {
    // Written before `qty` existed, with a field since removed.
    let old = br#"{"ItemAdded":{"sku":"a","colour":"red"}}"#;
    assert_eq!(
        v2::Cart::decode(old).unwrap(),
        v2::Cart::ItemAdded {
            sku: "a".into(),
            qty: 0
        }
    );
    // A missing field without a default, or a changed type: a layout error.
    let err = v2::Cart::decode(br#"{"ItemAdded":{"qty":1}}"#).unwrap_err();
    assert!(
        matches!(&err, PersistError::IncompatibleEvent { detail, .. } if detail.contains("no field `sku`")),
        "{err}"
    );
    let err = v2::Cart::decode(br#"{"ItemAdded":{"sku":7}}"#).unwrap_err();
    assert!(
        matches!(&err, PersistError::IncompatibleEvent { detail, .. } if detail.contains("field `sku`")),
        "{err}"
    );
}

#[test]
fn a_type_that_switched_to_json_reads_its_postcard_events() {
    for (old, new) in [
        (
            v1::Cart::ItemAdded { sku: "a".into() },
            v2::Cart::ItemAdded {
                sku: "a".into(),
                qty: 0,
            },
        ),
        (v1::Cart::Removed("b".into()), v2::Cart::Removed("b".into())),
        (v1::Cart::Cleared, v2::Cart::Cleared),
    ] {
        let bytes = old.encode().unwrap();
        assert_eq!(
            v2::Cart::decode_entry(old.event_type(), &bytes).unwrap(),
            new
        );
    }
}

#[derive(Default, EventSourced)]
#[persist(entity = "Cart", event = v2::Cart, apply = Self::on, format = "json")]
struct Cart {
    #[persist(id)]
    id: u8,
    items: Vec<String>,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Cart {
    fn on(&mut self, e: &v2::Cart) {
        match e {
            v2::Cart::ItemAdded { sku, .. } => self.items.push(sku.clone()),
            v2::Cart::Removed(sku) => self.items.retain(|s| s != sku),
            v2::Cart::Cleared => self.items.clear(),
        }
    }
}

/// One SQLite journal holding both formats: postcard rows from before the
/// switch, JSON rows after; recovery reads both, and the JSON rows read as
/// text in `sqlite3`.
#[tokio::test]
async fn one_store_holds_both_formats_and_the_json_reads_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.db");
    let store = SqliteStorage::open(&path).await.unwrap();
    let pid = PersistenceId::new("Cart", "1");
    for (seq, e) in [
        v1::Cart::ItemAdded { sku: "a".into() },
        v1::Cart::ItemAdded { sku: "b".into() },
    ]
    .iter()
    .enumerate()
    {
        store
            .write_event(
                &pid,
                SequenceId(seq as i64 + 1),
                e.event_type(),
                &e.encode().unwrap(),
            )
            .await
            .unwrap();
    }
    let mut cart = Cart {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut cart, &store, &store)
        .await
        .unwrap();
    cart.persist(v2::Cart::Removed("a".into()), &store)
        .await
        .unwrap();
    cart.persist(
        v2::Cart::ItemAdded {
            sku: "c".into(),
            qty: 3,
        },
        &store,
    )
    .await
    .unwrap();
    store
        .save_snapshot(&pid, cart.seq, &cart.snapshot_payload().unwrap())
        .await
        .unwrap();
    store.close().await;

    // What sqlite3 shows.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let texts: Vec<String> = conn
        .prepare("SELECT CAST(payload AS TEXT) FROM events ORDER BY sequence")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(texts[2], r#"{"Removed":["a"]}"#);
    assert_eq!(texts[3], r#"{"ItemAdded":{"qty":3,"sku":"c"}}"#);
    let snapshot: String = conn
        .query_row("SELECT CAST(payload AS TEXT) FROM snapshots", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(snapshot, r#"{"items":["b","c"]}"#);
    drop(conn);

    let store = SqliteStorage::open(&path).await.unwrap();
    let mut again = Cart {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut again, &store, &store)
        .await
        .unwrap();
    assert_eq!(
        (again.items.clone(), again.seq),
        (vec!["b".into(), "c".into()], SequenceId(4))
    );
    // Without the snapshot, the journal of both formats replays the same.
    let mut replayed = Cart {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut replayed, &store, &InMemoryStorage::new())
        .await
        .unwrap();
    assert_eq!(replayed.items, again.items);
    store.close().await;
}

mod states {
    use dactor_persist::prelude::*;

    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile")]
    pub struct PostcardProfile {
        #[persist(id)]
        pub id: u8,
        pub name: String,
        pub logins: u32,
    }

    /// The same profile, switched to JSON, a field added.
    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile", format = "json")]
    pub struct Profile {
        #[persist(id)]
        pub id: u8,
        pub name: String,
        pub logins: u32,
        #[persist(default)]
        pub email: String,
    }

    /// A JSON layout of an older release, and a profile restructured from it.
    #[derive(StoredState)]
    #[persist(format = "json")]
    pub struct ProfileV1 {
        pub full_name: String,
    }

    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile", format = "json",
              migrate(from = ProfileV1, with = Self::migrate_v1))]
    pub struct Split {
        #[persist(id)]
        pub id: u8,
        pub first: String,
        pub last: String,
    }

    impl Split {
        fn migrate_v1(&mut self, old: ProfileV1) {
            let (f, l) = old
                .full_name
                .split_once(' ')
                .unwrap_or((&old.full_name, ""));
            (self.first, self.last) = (f.into(), l.into());
        }
    }
}

#[tokio::test]
async fn json_states_read_old_postcard_states_added_fields_and_migrate() {
    use states::*;
    let store = InMemoryStorage::new();
    let old = PostcardProfile {
        id: 1,
        name: "Ada".into(),
        logins: 3,
    };
    DurableState::save_state(&old, &store).await.unwrap();
    let mut p = Profile {
        id: 1,
        ..Default::default()
    };
    recover_durable_state(&mut p, &store).await.unwrap();
    assert_eq!(
        (p.name.as_str(), p.logins, p.email.as_str()),
        ("Ada", 3, "")
    );

    // Saved again: JSON, readable.
    p.email = "ada@example.com".into();
    DurableState::save_state(&p, &store).await.unwrap();
    let pid = PersistenceId::new("Profile", "1");
    let bytes = store.load_state(&pid).await.unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"email":"ada@example.com","logins":3,"name":"Ada"}"#
    );
    // A JSON state without the added field reads with its default.
    store
        .save_state(&pid, br#"{"logins":4,"name":"Bo"}"#)
        .await
        .unwrap();
    let mut p = Profile {
        id: 1,
        ..Default::default()
    };
    recover_durable_state(&mut p, &store).await.unwrap();
    assert_eq!((p.name.as_str(), p.logins, p.email.as_str()), ("Bo", 4, ""));

    // A JSON state that fits neither the struct nor a declared layout: the
    // error names the missing field and says state.
    let err = Profile::default()
        .restore_state(br#"{"logins":4}"#.to_vec())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("JSON state") && text.contains("no field `name`"),
        "{text}"
    );

    // Migrated from a JSON layout.
    store
        .save_state(
            &pid,
            &ProfileV1 {
                full_name: "Grace Hopper".into(),
            }
            .encode_layout()
            .unwrap(),
        )
        .await
        .unwrap();
    let mut s = Split {
        id: 1,
        ..Default::default()
    };
    recover_durable_state(&mut s, &store).await.unwrap();
    assert_eq!((s.first.as_str(), s.last.as_str()), ("Grace", "Hopper"));
}
