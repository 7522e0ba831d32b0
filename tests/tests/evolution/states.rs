//! State rows of the guide: add a state field, rename one, restructure a
//! state; the fingerprint guard for undeclared changes; `SkipAndStart` on a
//! durable state that does not restore.

use dactor_persist::prelude::*;
use dactor_persist::set_aside_id;

fn pid(id: &str) -> PersistenceId {
    PersistenceId::new("Profile", id)
}

/// The profile as today's derive wrote it, before any change.
mod v1 {
    use dactor_persist::prelude::*;
    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile")]
    pub struct Profile {
        #[persist(id)]
        pub id: String,
        pub name: String,
        pub logins: u32,
    }
}

/// Fields added with defaults, one of them between the old ones.
mod v2 {
    use dactor_persist::prelude::*;
    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile")]
    pub struct Profile {
        #[persist(id)]
        pub id: String,
        pub name: String,
        #[persist(default)]
        pub email: String,
        pub logins: u32,
        #[persist(default = dark)]
        pub theme: String,
    }
    fn dark() -> String {
        "dark".into()
    }
}

/// The same change, undeclared.
mod undeclared {
    use dactor_persist::prelude::*;
    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile")]
    pub struct Profile {
        #[persist(id)]
        pub id: String,
        pub name: String,
        pub email: String,
        pub logins: u32,
    }
}

async fn store_v1(store: &InMemoryStorage, id: &str) {
    let old = v1::Profile {
        id: id.into(),
        name: "Ada".into(),
        logins: 3,
    };
    DurableState::save_state(&old, store).await.unwrap();
}

#[tokio::test]
async fn a_state_written_by_todays_derive_reads_after_gaining_fields() {
    let store = InMemoryStorage::new();
    store_v1(&store, "u1").await;
    let mut p = v2::Profile {
        id: "u1".into(),
        ..Default::default()
    };
    recover_durable_state(&mut p, &store).await.unwrap();
    assert_eq!(
        (
            p.name.as_str(),
            p.email.as_str(),
            p.logins,
            p.theme.as_str()
        ),
        ("Ada", "", 3, "dark")
    );

    // Saved again, it is a v2 state, and reads back with its values.
    p.email = "ada@example.com".into();
    p.theme = "light".into();
    DurableState::save_state(&p, &store).await.unwrap();
    let mut again = v2::Profile {
        id: "u1".into(),
        ..Default::default()
    };
    recover_durable_state(&mut again, &store).await.unwrap();
    assert_eq!(
        (again.email.as_str(), again.theme.as_str(), again.logins),
        ("ada@example.com", "light", 3)
    );
}

/// The v1 payload is exactly what the derive wrote before this change:
/// FNV-1a of the stored fields, then postcard. Pinned, so that the layout
/// of states already stored cannot drift.
#[test]
fn todays_state_layout_is_pinned() {
    fn fnv1a(text: &str) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    }
    let p = v1::Profile {
        id: "u1".into(),
        name: "Ada".into(),
        logins: 3,
    };
    let mut expected = fnv1a("v0;name:String;logins:u32;").to_le_bytes().to_vec();
    expected.extend(postcard::to_allocvec(&("Ada", 3u32)).unwrap());
    assert_eq!(p.serialize_state().unwrap(), expected);
}

#[tokio::test]
async fn an_undeclared_change_names_the_state_and_the_remedy() {
    let store = InMemoryStorage::new();
    store_v1(&store, "u2").await;
    let mut p = undeclared::Profile {
        id: "u2".into(),
        ..Default::default()
    };
    let err = recover_durable_state(&mut p, &store).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PersistError::SnapshotIncompatible(_)),
        "{err:?}"
    );
    assert!(text.contains("the stored state of `Profile:u2`"), "{text}");
    assert!(
        !text.contains("snapshot"),
        "says state, not snapshot: {text}"
    );
    assert!(text.contains("#[persist(default)]"), "{text}");
    assert!(text.contains("migrate(from"), "{text}");
    // Nothing stored was touched.
    let stored = store.load_state(&pid("u2")).await.unwrap().unwrap();
    assert_eq!(stored.len(), 8 + 5);
}

mod renamed {
    use dactor_persist::prelude::*;
    /// `logins` is now `visits`; the layout keeps recording the old name.
    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile")]
    pub struct Profile {
        #[persist(id)]
        pub id: String,
        pub name: String,
        #[persist(name = "logins")]
        pub visits: u32,
    }
}

#[tokio::test]
async fn a_renamed_state_field_keeps_its_stored_name() {
    let store = InMemoryStorage::new();
    store_v1(&store, "u3").await;
    let mut p = renamed::Profile {
        id: "u3".into(),
        ..Default::default()
    };
    recover_durable_state(&mut p, &store).await.unwrap();
    assert_eq!((p.name.as_str(), p.visits), ("Ada", 3));
}

/// A restructured state: v1 (name, logins: u32) -> v2 layout (first, last,
/// logins: u32, schema 2) -> current (full name split, logins widened to
/// u64 and renamed, a settings struct). Each step declared once.
mod restructured {
    use dactor_persist::prelude::*;
    use serde::{Deserialize, Serialize};

    /// What v1 stored.
    #[derive(StoredState)]
    pub struct ProfileV1 {
        pub name: String,
        pub logins: u32,
    }

    /// What an intermediate release stored; it read v1 itself.
    #[derive(StoredState)]
    #[persist(schema_version = 2, migrate(from = ProfileV1, with = ProfileV2::from_v1))]
    pub struct ProfileV2 {
        pub first: String,
        pub last: String,
        pub logins: u32,
    }

    impl ProfileV2 {
        fn from_v1(old: ProfileV1) -> Self {
            let (first, last) = old.name.split_once(' ').unwrap_or((&old.name, ""));
            ProfileV2 {
                first: first.into(),
                last: last.into(),
                logins: old.logins,
            }
        }
    }

    #[derive(Default, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Names {
        pub first: String,
        pub last: String,
    }

    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile", schema_version = 3,
              migrate(from = ProfileV2, with = Self::migrate_v2))]
    pub struct Profile {
        #[persist(id)]
        pub id: String,
        pub names: Names,
        pub sessions: u64,
    }

    impl Profile {
        fn migrate_v2(&mut self, old: ProfileV2) {
            self.names = Names {
                first: old.first,
                last: old.last,
            };
            self.sessions = u64::from(old.logins);
        }
    }
}

#[tokio::test]
async fn a_restructured_state_migrates_along_the_chain() {
    use restructured::*;
    let store = InMemoryStorage::new();
    // A state written by v1 (today's derive), one by the v2 release.
    store_v1(&store, "a").await;
    let v2_state = ProfileV2 {
        first: "Grace".into(),
        last: "Hopper".into(),
        logins: 9,
    };
    store
        .save_state(&pid("b"), &v2_state.encode_layout().unwrap())
        .await
        .unwrap();

    for (id, first, last, sessions) in [("a", "Ada", "", 3), ("b", "Grace", "Hopper", 9)] {
        let mut p = Profile {
            id: id.into(),
            ..Default::default()
        };
        recover_durable_state(&mut p, &store).await.unwrap();
        assert_eq!(
            (p.names.first.as_str(), p.names.last.as_str(), p.sessions),
            (first, last, sessions),
            "{id}"
        );
        // Saved, it is a current state.
        DurableState::save_state(&p, &store).await.unwrap();
        let mut again = Profile {
            id: id.into(),
            ..Default::default()
        };
        recover_durable_state(&mut again, &store).await.unwrap();
        assert_eq!(again.sessions, sessions);
    }

    // The v1 layout declared here is byte for byte what v1's derive wrote.
    let v1_bytes = ProfileV1 {
        name: "Ada".into(),
        logins: 3,
    }
    .encode_layout()
    .unwrap();
    let v1_actor = v1::Profile {
        id: "x".into(),
        name: "Ada".into(),
        logins: 3,
    };
    assert_eq!(v1_bytes, v1_actor.serialize_state().unwrap());
}

/// Snapshots: the same declarations keep old snapshots usable, so recovery
/// does not fall back to replaying the whole journal.
mod snapshots {
    use dactor_persist::prelude::*;

    #[derive(Debug, PersistentEvent)]
    pub enum Tick {
        Tick,
    }

    pub mod v1 {
        use super::Tick;
        use dactor_persist::prelude::*;
        #[derive(Default, EventSourced)]
        #[persist(entity = "Clock", event = Tick, apply = Self::on)]
        pub struct Clock {
            #[persist(id)]
            pub id: u8,
            pub ticks: u64,
            #[persist(sequence)]
            pub seq: SequenceId,
        }
        impl Clock {
            fn on(&mut self, _: &Tick) {
                self.ticks += 1;
            }
        }
    }

    pub mod v2 {
        use super::Tick;
        use dactor_persist::prelude::*;
        #[derive(Default, EventSourced)]
        #[persist(entity = "Clock", event = Tick, apply = Self::on)]
        pub struct Clock {
            #[persist(id)]
            pub id: u8,
            pub ticks: u64,
            #[persist(default = Self::hourly)]
            pub chime_every: u64,
            #[persist(sequence)]
            pub seq: SequenceId,
            #[persist(skip)]
            pub replayed: u64,
        }
        impl Clock {
            fn on(&mut self, _: &Tick) {
                self.ticks += 1;
                self.replayed += 1;
            }
            fn hourly() -> u64 {
                3600
            }
        }
    }
}

#[tokio::test]
async fn an_old_snapshot_restores_after_a_field_is_added() {
    use snapshots::*;
    let store = InMemoryStorage::new();
    let mut c = v1::Clock {
        id: 1,
        ..Default::default()
    };
    for _ in 0..10 {
        c.persist(Tick::Tick, &store).await.unwrap();
    }
    store
        .save_snapshot(&c.persistence_id(), c.seq, &c.snapshot_payload().unwrap())
        .await
        .unwrap();
    c.persist(Tick::Tick, &store).await.unwrap();

    let mut c2 = v2::Clock {
        id: 1,
        ..Default::default()
    };
    recover_event_sourced(&mut c2, &store, &store)
        .await
        .unwrap();
    assert_eq!(
        (c2.ticks, c2.chime_every, c2.seq),
        (11, 3600, SequenceId(11))
    );
    assert_eq!(c2.replayed, 1, "the snapshot was used: one event replayed");
}

#[test]
fn an_undeclared_snapshot_change_says_snapshot() {
    use snapshots::*;
    // v1 reading a v2 snapshot (a field it does not know).
    let v2 = v2::Clock {
        id: 1,
        ticks: 4,
        chime_every: 60,
        ..Default::default()
    };
    let mut v1 = v1::Clock {
        id: 1,
        ..Default::default()
    };
    let err = v1
        .restore_snapshot(v2.snapshot_payload().unwrap())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the stored snapshot of `Clock:1`"), "{text}");
    assert!(text.contains("replays the journal"), "{text}");
}

mod skip {
    use dactor_persist::prelude::*;
    #[derive(Default, Debug, DurableState)]
    #[persist(entity = "Profile", recovery_failure = "skip_and_start")]
    pub struct Profile {
        #[persist(id)]
        pub id: String,
        pub name: String,
        pub email: String,
        pub logins: u32,
    }
}

#[tokio::test]
async fn skip_and_start_sets_an_unreadable_state_aside_instead_of_losing_it() {
    let store = InMemoryStorage::new();
    store_v1(&store, "s").await;
    let original = store.load_state(&pid("s")).await.unwrap().unwrap();

    let mut p = skip::Profile {
        id: "s".into(),
        ..Default::default()
    };
    recover_durable_state(&mut p, &store).await.unwrap();
    assert_eq!((p.name.as_str(), p.logins), ("", 0), "started fresh");
    let aside = set_aside_id(&pid("s"));
    assert_eq!(aside.as_str(), "Profile:s~unreadable");
    assert_eq!(
        store.load_state(&aside).await.unwrap().as_deref(),
        Some(&original[..]),
        "the old bytes are kept, unchanged"
    );

    // The actor saves over its own id; the set-aside copy stays.
    p.name = "New".into();
    DurableState::save_state(&p, &store).await.unwrap();
    assert_eq!(
        store.load_state(&aside).await.unwrap().as_deref(),
        Some(&original[..])
    );

    // Recovering again (the same unreadable bytes) is idempotent.
    store.save_state(&pid("s"), &original).await.unwrap();
    let mut p = skip::Profile {
        id: "s".into(),
        ..Default::default()
    };
    recover_durable_state(&mut p, &store).await.unwrap();

    // A different unreadable state would overwrite the one set aside: refused.
    let other = v1::Profile {
        id: "s".into(),
        name: "Other".into(),
        logins: 1,
    };
    DurableState::save_state(&other, &store).await.unwrap();
    let mut p = skip::Profile {
        id: "s".into(),
        ..Default::default()
    };
    let err = recover_durable_state(&mut p, &store).await.unwrap_err();
    assert!(err.to_string().contains("already holds"), "{err}");
    assert_eq!(
        store.load_state(&aside).await.unwrap().as_deref(),
        Some(&original[..])
    );
}

#[tokio::test]
async fn skip_and_start_does_not_start_over_a_state_it_could_not_load() {
    use dactor_persist::testkit::{FailingStorage, Op};
    let store = FailingStorage::new(InMemoryStorage::new());
    store_v1(store.inner(), "f").await;
    store.only(&[Op::LoadState]).fail_next(1);
    let mut p = skip::Profile {
        id: "f".into(),
        ..Default::default()
    };
    let err = recover_durable_state(&mut p, &store).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        store
            .inner()
            .load_state(&set_aside_id(&pid("f")))
            .await
            .unwrap()
            .is_none()
    );
}
