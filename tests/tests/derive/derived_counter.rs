//! The same counter with the derives.
// BEGIN ACTOR
use dactor_persist::prelude::*;

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum CounterEvent {
    Incremented(i64),
}

#[derive(Default, EventSourced)]
#[persist(entity = "Counter", event = CounterEvent)]
pub struct Counter {
    #[persist(id)]
    pub id: u64,
    pub value: i64,
    #[persist(sequence)]
    pub seq: SequenceId,
}

impl ApplyEvent<CounterEvent> for Counter {
    fn apply_event(&mut self, CounterEvent::Incremented(by): &CounterEvent) {
        self.value += by;
    }
}
// END ACTOR
