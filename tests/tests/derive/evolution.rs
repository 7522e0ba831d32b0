//! Events written with one definition of the enum read back with a reordered,
//! extended and renamed one.

use dactor_persist::prelude::*;

mod v1 {
    use dactor_persist::prelude::*;

    #[derive(Debug, Clone, PartialEq, PersistentEvent)]
    pub enum Event {
        Opened { owner: String },
        Deposited { amount: u64 },
        Withdrew { amount: u64 },
        Frozen,
    }

    #[derive(Default, Debug, EventSourced)]
    #[persist(entity = "Acct", event = Event, apply = Self::on)]
    pub struct Acct {
        #[persist(id)]
        pub id: String,
        pub owner: String,
        pub balance: u64,
        pub frozen: bool,
        #[persist(sequence)]
        pub seq: SequenceId,
    }

    impl Acct {
        fn on(&mut self, e: &Event) {
            match e {
                Event::Opened { owner } => self.owner = owner.clone(),
                Event::Deposited { amount } => self.balance += amount,
                Event::Withdrew { amount } => self.balance -= amount,
                Event::Frozen => self.frozen = true,
            }
        }
    }
}

mod v2 {
    use dactor_persist::prelude::*;

    /// Reordered, a variant inserted at the front, one renamed with an alias.
    #[derive(Debug, Clone, PartialEq, PersistentEvent)]
    pub enum Event {
        Audited(String, u32),
        Frozen,
        #[persist(alias = "Withdrew")]
        Withdrawn {
            amount: u64,
        },
        Deposited {
            amount: u64,
        },
        Opened {
            owner: String,
        },
    }

    #[derive(Default, Debug, EventSourced)]
    #[persist(entity = "Acct", event = Event, apply = Self::on)]
    pub struct Acct {
        #[persist(id)]
        pub id: String,
        pub owner: String,
        pub balance: u64,
        pub frozen: bool,
        #[persist(sequence)]
        pub seq: SequenceId,
        #[persist(skip)]
        pub audits: u32,
    }

    impl Acct {
        fn on(&mut self, e: &Event) {
            match e {
                Event::Opened { owner } => self.owner = owner.clone(),
                Event::Deposited { amount } => self.balance += amount,
                Event::Withdrawn { amount } => self.balance -= amount,
                Event::Frozen => self.frozen = true,
                Event::Audited(_, _) => self.audits += 1,
            }
        }
    }
}

#[tokio::test]
async fn events_written_by_v1_replay_under_the_reordered_extended_renamed_v2() {
    let store = InMemoryStorage::new();
    let mut old = v1::Acct {
        id: "x".into(),
        ..Default::default()
    };
    old.persist_batch(
        vec![
            v1::Event::Opened {
                owner: "Zoë".into(),
            },
            v1::Event::Deposited { amount: 100 },
            v1::Event::Withdrew { amount: 30 },
            v1::Event::Frozen,
        ],
        &store,
    )
    .await
    .unwrap();

    let mut new = v2::Acct {
        id: "x".into(),
        ..Default::default()
    };
    recover_event_sourced(&mut new, &store, &store)
        .await
        .unwrap();
    assert_eq!(
        (new.owner.as_str(), new.balance, new.frozen),
        ("Zoë", 70, true)
    );
    assert_eq!(new.seq, SequenceId(4));

    // v2 keeps writing after the old events, under its own names.
    new.persist(v2::Event::Audited("q3".into(), 2), &store)
        .await
        .unwrap();
    new.persist(v2::Event::Withdrawn { amount: 5 }, &store)
        .await
        .unwrap();
    let types: Vec<String> = store
        .read_events(&new.persistence_id(), SequenceId(1))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "Opened",
            "Deposited",
            "Withdrew",
            "Frozen",
            "Audited",
            "Withdrawn"
        ]
    );
}

#[tokio::test]
async fn an_event_unknown_to_an_older_reader_is_an_error_naming_its_sequence() {
    let store = InMemoryStorage::new();
    let mut new = v2::Acct {
        id: "y".into(),
        ..Default::default()
    };
    new.persist(v2::Event::Deposited { amount: 1 }, &store)
        .await
        .unwrap();
    new.persist(v2::Event::Audited("a".into(), 1), &store)
        .await
        .unwrap();

    let mut old = v1::Acct {
        id: "y".into(),
        ..Default::default()
    };
    let err = recover_event_sourced(&mut old, &store, &store)
        .await
        .unwrap_err();
    match &err {
        PersistError::IncompatibleEvent {
            sequence_id,
            detail,
        } => {
            assert_eq!(*sequence_id, SequenceId(2));
            assert!(detail.contains("unknown event type `Audited`"), "{detail}");
            assert!(detail.contains("Acct:y"), "{detail}");
            assert!(detail.contains("alias"), "names the remedy: {detail}");
        }
        other => panic!("expected IncompatibleEvent, got {other:?}"),
    }
    assert_eq!(
        (old.balance, old.seq),
        (0, SequenceId(0)),
        "nothing applied"
    );
}

#[test]
fn an_undecodable_payload_is_an_error_not_another_variant() {
    // `Deposited` with a truncated field.
    let mut payload = postcard::to_allocvec("Deposited").unwrap();
    payload.push(0xff);
    let err = v2::Event::decode(&payload).unwrap_err();
    assert!(err.to_string().contains("Event::Deposited"), "{err}");
    // Garbage with no name at all.
    assert!(v2::Event::decode(&[0xff, 0xff, 0xff]).is_err());
    assert!(v2::Event::decode(&[]).is_err());
}

#[test]
fn names_are_listed_in_declaration_order() {
    assert_eq!(
        v2::Event::EVENT_TYPES,
        &["Audited", "Frozen", "Withdrawn", "Deposited", "Opened"]
    );
}
