//! Generic actors and events: the derives add the bounds they need.

use std::collections::BTreeMap;
use std::fmt::Display;

use dactor_persist::prelude::*;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum Op<K, V> {
    Put(K, V),
    Remove { key: K },
}

#[derive(EventSourced)]
#[persist(entity = "Map", event = Op<K, V>, apply = Self::on)]
pub struct Map<I, K, V>
where
    K: Ord + Clone,
    V: Clone,
{
    #[persist(id)]
    pub id: I,
    pub entries: BTreeMap<K, V>,
    #[persist(sequence)]
    pub seq: SequenceId,
}

impl<I, K: Ord + Clone, V: Clone> Map<I, K, V> {
    fn on(&mut self, op: &Op<K, V>) {
        match op {
            Op::Put(k, v) => {
                self.entries.insert(k.clone(), v.clone());
            }
            Op::Remove { key } => {
                self.entries.remove(key);
            }
        }
    }
}

/// A newtype id with its own `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShardId(u16);

impl Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

async fn round_trip<I, K, V>(id: I, ops: Vec<Op<K, V>>, expected_id: &str)
where
    I: Display + Clone + Send + Sync + 'static,
    K: Ord + Clone + Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug + 'static,
    V: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug + 'static,
{
    let store = InMemoryStorage::new();
    let mut m = Map {
        id: id.clone(),
        entries: BTreeMap::new(),
        seq: SequenceId(0),
    };
    assert_eq!(m.persistence_id().0, expected_id);
    m.persist_batch(ops, &store).await.unwrap();
    m.snapshot(&store).await.unwrap();
    let mut again = Map {
        id,
        entries: BTreeMap::new(),
        seq: SequenceId(0),
    };
    recover_event_sourced(&mut again, &store, &store)
        .await
        .unwrap();
    assert_eq!(again.entries, m.entries);
    assert_eq!(again.seq, m.seq);
}

#[tokio::test]
async fn a_generic_actor_with_a_where_clause_round_trips() {
    round_trip(
        7u32,
        vec![
            Op::Put("a".to_string(), 1i64),
            Op::Put("b".into(), 2),
            Op::Remove { key: "a".into() },
        ],
        "Map:7",
    )
    .await;
    round_trip(
        ShardId(3),
        vec![Op::Put(1u8, vec!["x".to_string()])],
        "Map:shard-3",
    )
    .await;
}
