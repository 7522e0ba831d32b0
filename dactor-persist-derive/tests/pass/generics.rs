use std::collections::BTreeMap;
use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Op<K, V> { Put(K, V), Clear }

#[derive(EventSourced)]
#[persist(entity = "Map", event = Op<K, V>, apply = Self::on)]
struct Map<K: Ord, V>
where
    V: Clone,
{
    #[persist(id)] id: String,
    entries: BTreeMap<K, V>,
    #[persist(sequence)] seq: SequenceId,
}

impl<K: Ord, V: Clone> Map<K, V> {
    fn on(&mut self, _op: &Op<K, V>) {}
}

#[derive(DurableState)]
#[persist(entity = "Cell")]
struct Cell<T> {
    #[persist(id)] id: u8,
    value: Option<T>,
}

fn assert_event_sourced<A: EventSourced>() {}
fn assert_durable<A: DurableState>() {}

fn main() {
    assert_event_sourced::<Map<String, u32>>();
    assert_durable::<Cell<Vec<String>>>();
}
