//! Event rows of the guide: add a field, rename a field, rename a variant,
//! split a variant, remove a variant, change a field's type.

use dactor_persist::prelude::*;

/// Writes `events` with the old enum, then reads them with the new one.
fn reread<Old: PersistentEvent, New: PersistentEvent>(events: &[Old]) -> Vec<New> {
    events
        .iter()
        .map(|e| {
            let bytes = e.encode().unwrap();
            New::decode_entry(e.event_type(), &bytes).unwrap()
        })
        .collect()
}

mod add_field {
    use super::*;

    pub mod v1 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Cart {
            ItemAdded { sku: String },
            Cleared,
        }
    }

    pub mod v2 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Cart {
            ItemAdded {
                sku: String,
                #[persist(default)]
                qty: u32,
                #[persist(default = one)]
                packs: u32,
            },
            Cleared,
        }
        fn one() -> u32 {
            1
        }
    }

    /// Today's enum with the field added but no default: the failure is a
    /// layout change naming the variant, the field count and the remedy.
    pub mod undeclared {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Cart {
            ItemAdded { sku: String, qty: u32 },
            Cleared,
        }
    }

    #[test]
    fn old_events_read_with_the_defaults_and_new_ones_with_their_values() {
        let old = [v1::Cart::ItemAdded { sku: "a".into() }, v1::Cart::Cleared];
        let read: Vec<v2::Cart> = reread(&old);
        assert_eq!(
            read,
            [
                v2::Cart::ItemAdded {
                    sku: "a".into(),
                    qty: 0,
                    packs: 1
                },
                v2::Cart::Cleared
            ]
        );
        let new = v2::Cart::ItemAdded {
            sku: "b".into(),
            qty: 3,
            packs: 2,
        };
        assert_eq!(v2::Cart::decode(&new.encode().unwrap()).unwrap(), new);
    }

    #[test]
    fn without_a_default_the_error_is_a_layout_change_with_its_remedy() {
        let bytes = v1::Cart::ItemAdded { sku: "a".into() }.encode().unwrap();
        let err = undeclared::Cart::decode(&bytes).unwrap_err();
        let PersistError::IncompatibleEvent { detail, .. } = &err else {
            panic!("expected IncompatibleEvent, got {err:?}");
        };
        assert!(detail.contains("`Cart::ItemAdded`"), "{detail}");
        assert!(detail.contains("ends after 1 of its 2 fields"), "{detail}");
        assert!(detail.contains("`qty` is missing"), "{detail}");
        assert!(detail.contains("#[persist(default)]"), "{detail}");
    }

    #[tokio::test]
    async fn recovery_names_the_sequence_of_the_event_that_no_longer_fits() {
        #[derive(Default, EventSourced)]
        #[persist(entity = "Cart", event = undeclared::Cart, apply = Self::on)]
        struct Cart {
            #[persist(id)]
            id: u8,
            items: u32,
            #[persist(sequence)]
            seq: SequenceId,
        }
        impl Cart {
            fn on(&mut self, _: &undeclared::Cart) {
                self.items += 1;
            }
        }
        let store = InMemoryStorage::new();
        let pid = PersistenceId::new("Cart", "1");
        let bytes = v1::Cart::ItemAdded { sku: "a".into() }.encode().unwrap();
        store
            .write_event(&pid, SequenceId(1), "ItemAdded", &bytes)
            .await
            .unwrap();
        let mut cart = Cart {
            id: 1,
            ..Default::default()
        };
        let err = recover_event_sourced(&mut cart, &store, &store)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PersistError::IncompatibleEvent { sequence_id: SequenceId(1), detail }
                if detail.contains("Cart:1") && detail.contains("ends after 1 of its 2 fields")),
            "{err}"
        );
        assert!(!err.is_transient());
        assert_eq!(cart.items, 0, "nothing applied");
    }
}

mod rename_field {
    use super::*;

    pub mod v1 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Cursor {
            Moved { x: i32, y: i32 },
        }
    }
    pub mod v2 {
        use dactor_persist::prelude::*;
        /// Fields are stored by position: new names need nothing.
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Cursor {
            Moved { dx: i32, dy: i32 },
        }
    }

    #[test]
    fn a_renamed_field_needs_nothing() {
        let read: Vec<v2::Cursor> = reread(&[v1::Cursor::Moved { x: 3, y: -4 }]);
        assert_eq!(read, [v2::Cursor::Moved { dx: 3, dy: -4 }]);
    }
}

mod rename_variant {
    use super::*;

    pub mod v1 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Account {
            Withdrew(u64),
        }
    }
    pub mod v2 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Account {
            #[persist(alias = "Withdrew")]
            Withdrawn(u64),
        }
    }

    /// The other way: the variant renamed in the code only, its stored
    /// name kept.
    pub mod v2_same_stored_name {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Account {
            #[persist(name = "Withdrew")]
            Withdrawn(u64),
        }
    }

    #[test]
    fn a_renamed_variant_reads_its_old_name_through_an_alias() {
        let read: Vec<v2::Account> = reread(&[v1::Account::Withdrew(7)]);
        assert_eq!(read, [v2::Account::Withdrawn(7)]);
        assert_eq!(read[0].event_type(), "Withdrawn");
    }

    #[test]
    fn a_renamed_variant_can_keep_writing_its_stored_name() {
        let read: Vec<v2_same_stored_name::Account> = reread(&[v1::Account::Withdrew(7)]);
        assert_eq!(read, [v2_same_stored_name::Account::Withdrawn(7)]);
        // It still writes the old name, so older readers keep reading it.
        assert_eq!(read[0].event_type(), "Withdrew");
        let back: Vec<v1::Account> = reread(&read);
        assert_eq!(back, [v1::Account::Withdrew(7)]);
    }
}

/// Split, remove, change a type: the old shapes live in a legacy enum that
/// the current one upcasts from; its variants never appear in the current
/// enum's `match`es.
mod upcasts {
    use super::*;

    pub mod v1 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Profile {
            Changed { field: String, value: String },
            Pinged,
            Deposited { amount: String },
            Opened,
        }
    }

    pub mod v2 {
        use dactor_persist::prelude::*;

        /// The shapes v2 no longer writes, under their stored names.
        #[derive(Debug, PersistentEvent)]
        pub enum Legacy {
            Changed { field: String, value: String },
            Pinged,
            Deposited { amount: String },
        }

        #[derive(Debug, PartialEq, PersistentEvent)]
        #[persist(upcast(from = Legacy, with = Profile::from_legacy))]
        pub enum Profile {
            NameChanged(String),
            EmailChanged(String),
            Noted(String),
            /// Cents as a number where v1 wrote a decimal string: a new
            /// stored name, the old one upcast.
            #[persist(name = "Deposited.v2")]
            Deposited {
                cents: u64,
            },
            Opened,
        }

        impl Profile {
            fn from_legacy(old: Legacy) -> Self {
                match old {
                    Legacy::Changed { field, value } if field == "email" => {
                        Profile::EmailChanged(value)
                    }
                    Legacy::Changed { value, .. } => Profile::NameChanged(value),
                    Legacy::Pinged => Profile::Noted("ping".into()),
                    Legacy::Deposited { amount } => {
                        let (units, cents) = amount.split_once('.').unwrap_or((&amount, "0"));
                        Profile::Deposited {
                            cents: units.parse::<u64>().unwrap_or(0) * 100
                                + cents.parse::<u64>().unwrap_or(0),
                        }
                    }
                }
            }
        }
    }

    /// v3 upcasts from v2, which upcasts from v1's shapes: a chain.
    pub mod v3 {
        use super::v2;
        use dactor_persist::prelude::*;

        #[derive(Debug, PartialEq, PersistentEvent)]
        #[persist(upcast(from = v2::Profile, with = Profile::from_v2))]
        pub enum Profile {
            #[persist(name = "Contact.v3")]
            Contact {
                name: Option<String>,
                email: Option<String>,
            },
            #[persist(name = "Deposited.v2")]
            Deposited {
                cents: u64,
            },
            Opened,
        }

        impl Profile {
            fn from_v2(old: v2::Profile) -> Self {
                match old {
                    v2::Profile::NameChanged(n) => Profile::Contact {
                        name: Some(n),
                        email: None,
                    },
                    v2::Profile::EmailChanged(e) => Profile::Contact {
                        name: None,
                        email: Some(e),
                    },
                    v2::Profile::Noted(_) => Profile::Contact {
                        name: None,
                        email: None,
                    },
                    v2::Profile::Deposited { cents } => Profile::Deposited { cents },
                    v2::Profile::Opened => Profile::Opened,
                }
            }
        }
    }

    fn v1_events() -> Vec<v1::Profile> {
        vec![
            v1::Profile::Opened,
            v1::Profile::Changed {
                field: "name".into(),
                value: "Ada".into(),
            },
            v1::Profile::Changed {
                field: "email".into(),
                value: "ada@example.com".into(),
            },
            v1::Profile::Pinged,
            v1::Profile::Deposited {
                amount: "12.34".into(),
            },
        ]
    }

    #[test]
    fn a_split_variant_upcasts_to_each_of_its_parts() {
        let read: Vec<v2::Profile> = reread(&v1_events()[1..3]);
        assert_eq!(
            read,
            [
                v2::Profile::NameChanged("Ada".into()),
                v2::Profile::EmailChanged("ada@example.com".into())
            ]
        );
    }

    #[test]
    fn a_removed_variant_stays_readable_as_another() {
        let read: Vec<v2::Profile> = reread(&[v1::Profile::Pinged]);
        assert_eq!(read, [v2::Profile::Noted("ping".into())]);
    }

    #[test]
    fn a_changed_field_type_reads_through_its_old_name() {
        let read: Vec<v2::Profile> = reread(&[v1::Profile::Deposited {
            amount: "12.34".into(),
        }]);
        assert_eq!(read, [v2::Profile::Deposited { cents: 1234 }]);
        // The new shape is written under its new name and reads back.
        let bytes = read[0].encode().unwrap();
        assert_eq!(read[0].event_type(), "Deposited.v2");
        assert_eq!(v2::Profile::decode(&bytes).unwrap(), read[0]);
    }

    #[test]
    fn upcasts_chain_across_versions() {
        let mut events = v1_events()
            .iter()
            .map(|e| (e.event_type().to_owned(), e.encode().unwrap()))
            .collect::<Vec<_>>();
        let v2_written = v2::Profile::Deposited { cents: 5 };
        events.push(("Deposited.v2".into(), v2_written.encode().unwrap()));
        let read: Vec<v3::Profile> = events
            .iter()
            .map(|(t, b)| v3::Profile::decode_entry(t, b).unwrap())
            .collect();
        assert_eq!(
            read,
            [
                v3::Profile::Opened,
                v3::Profile::Contact {
                    name: Some("Ada".into()),
                    email: None
                },
                v3::Profile::Contact {
                    name: None,
                    email: Some("ada@example.com".into())
                },
                v3::Profile::Contact {
                    name: None,
                    email: None
                },
                v3::Profile::Deposited { cents: 1234 },
                v3::Profile::Deposited { cents: 5 },
            ]
        );
    }

    #[test]
    fn a_name_no_version_knows_is_reported_against_the_current_type() {
        let bytes = {
            let mut b = postcard::to_allocvec("Vanished").unwrap();
            b.push(0);
            b
        };
        let err = v3::Profile::decode(&bytes).unwrap_err();
        assert!(
            matches!(&err, PersistError::IncompatibleEvent { detail, .. }
                if detail.contains("unknown event type `Vanished` for `Profile`")
                    && detail.contains("Contact.v3")),
            "{err}"
        );
    }

    #[test]
    fn a_changed_field_type_without_an_upcaster_names_the_field() {
        pub mod undeclared {
            use dactor_persist::prelude::*;
            #[derive(Debug, PersistentEvent)]
            pub enum Profile {
                Deposited { cents: u64 },
            }
        }
        let bytes = v1::Profile::Deposited {
            amount: "12.34".into(),
        }
        .encode()
        .unwrap();
        let err = undeclared::Profile::decode(&bytes).unwrap_err();
        assert!(
            matches!(&err, PersistError::IncompatibleEvent { detail, .. }
                if detail.contains("`Profile::Deposited`") && detail.contains("upcast")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn recovery_applies_upcast_events() {
        #[derive(Default, EventSourced)]
        #[persist(entity = "Profile", event = v3::Profile, apply = Self::on)]
        struct Profile {
            #[persist(id)]
            id: u8,
            name: String,
            email: String,
            cents: u64,
            #[persist(sequence)]
            seq: SequenceId,
        }
        impl Profile {
            fn on(&mut self, e: &v3::Profile) {
                match e {
                    v3::Profile::Contact { name, email } => {
                        if let Some(n) = name {
                            self.name = n.clone();
                        }
                        if let Some(e) = email {
                            self.email = e.clone();
                        }
                    }
                    v3::Profile::Deposited { cents } => self.cents += cents,
                    v3::Profile::Opened => {}
                }
            }
        }
        let store = InMemoryStorage::new();
        let pid = PersistenceId::new("Profile", "1");
        for (i, e) in v1_events().iter().enumerate() {
            store
                .write_event(
                    &pid,
                    SequenceId(i as i64 + 1),
                    e.event_type(),
                    &e.encode().unwrap(),
                )
                .await
                .unwrap();
        }
        let mut p = Profile {
            id: 1,
            ..Default::default()
        };
        recover_event_sourced(&mut p, &store, &store).await.unwrap();
        assert_eq!(
            (p.name.as_str(), p.email.as_str(), p.cents, p.seq),
            ("Ada", "ada@example.com", 1234, SequenceId(5))
        );
    }
}

/// One old event into several, or into none.
mod upcast_many {
    use dactor_persist::prelude::*;
    use dactor_persist::query::EventQueries;

    pub mod v1 {
        use dactor_persist::prelude::*;
        #[derive(Debug, PartialEq, PersistentEvent)]
        pub enum Order {
            Placed(u32),
            /// Closing and paying in one event; v2 records them apart.
            CheckedOut {
                paid: u64,
            },
            /// A heartbeat that meant nothing.
            Pinged,
        }
    }

    pub mod v2 {
        use dactor_persist::prelude::*;

        #[derive(Debug, PersistentEvent)]
        pub enum Legacy {
            CheckedOut { paid: u64 },
            Pinged,
        }

        #[derive(Debug, PartialEq, PersistentEvent)]
        #[persist(upcast(from = Legacy, with = Order::from_legacy))]
        pub enum Order {
            Placed(u32),
            Closed,
            Paid(u64),
        }

        impl Order {
            fn from_legacy(old: Legacy) -> Vec<Order> {
                match old {
                    Legacy::CheckedOut { paid } => vec![Order::Closed, Order::Paid(paid)],
                    Legacy::Pinged => vec![],
                }
            }
        }
    }

    #[derive(Default, EventSourced)]
    #[persist(entity = "Order", event = v2::Order, apply = Self::on)]
    struct Order {
        #[persist(id)]
        id: u8,
        items: u32,
        closed: bool,
        paid: u64,
        applied: u32,
        #[persist(sequence)]
        seq: SequenceId,
    }

    impl Order {
        fn on(&mut self, e: &v2::Order) {
            self.applied += 1;
            match e {
                v2::Order::Placed(n) => self.items += n,
                v2::Order::Closed => self.closed = true,
                v2::Order::Paid(p) => self.paid += p,
            }
        }
    }

    fn history() -> Vec<v1::Order> {
        vec![
            v1::Order::Placed(2),
            v1::Order::Pinged,
            v1::Order::CheckedOut { paid: 40 },
            v1::Order::Pinged,
        ]
    }

    #[test]
    fn one_old_event_decodes_to_several_or_none() {
        let mut out = Vec::new();
        for e in history() {
            v2::Order::decode_entry_into(e.event_type(), &e.encode().unwrap(), &mut out).unwrap();
        }
        assert_eq!(
            out,
            [v2::Order::Placed(2), v2::Order::Closed, v2::Order::Paid(40)]
        );
        // `decode` promises one event: it says where to look instead.
        let split = v1::Order::CheckedOut { paid: 1 }.encode().unwrap();
        let err = v2::Order::decode(&split).unwrap_err();
        assert!(err.to_string().contains("2 events"), "{err}");
        assert!(err.to_string().contains("decode_entry_into"), "{err}");
    }

    #[tokio::test]
    async fn recovery_applies_each_part_and_ends_at_the_last_sequence() {
        let store = InMemoryStorage::new();
        let pid = PersistenceId::new("Order", "1");
        for (i, e) in history().iter().enumerate() {
            store
                .write_event(
                    &pid,
                    SequenceId(i as i64 + 1),
                    e.event_type(),
                    &e.encode().unwrap(),
                )
                .await
                .unwrap();
        }
        let mut order = Order {
            id: 1,
            ..Default::default()
        };
        recover_event_sourced(&mut order, &store, &store)
            .await
            .unwrap();
        assert_eq!(
            (
                order.items,
                order.closed,
                order.paid,
                order.applied,
                order.seq
            ),
            (2, true, 40, 3, SequenceId(4))
        );
        // The next event goes after the dropped one.
        order.persist(v2::Order::Placed(1), &store).await.unwrap();
        assert_eq!(order.seq, SequenceId(5));
    }

    #[tokio::test]
    async fn the_read_side_gets_every_part_with_the_old_events_sequence() {
        let store = InMemoryStorage::new();
        let pid = PersistenceId::new("Order", "1");
        let e = v1::Order::CheckedOut { paid: 7 };
        store
            .write_event(&pid, SequenceId(1), e.event_type(), &e.encode().unwrap())
            .await
            .unwrap();
        let envelope = store
            .read_envelopes(&pid, SequenceId(1), 10)
            .await
            .unwrap()
            .pop()
            .unwrap();
        let typed = envelope.decode_each::<v2::Order>().unwrap();
        let parts: Vec<_> = typed.iter().map(|t| (&t.event, t.sequence_id)).collect();
        assert_eq!(
            parts,
            [
                (&v2::Order::Closed, SequenceId(1)),
                (&v2::Order::Paid(7), SequenceId(1))
            ]
        );
    }
}
