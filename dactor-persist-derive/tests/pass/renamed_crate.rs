extern crate dactor_persist as persist;

use persist::{EventSourced as _, PersistentActor as _, SequenceId};

#[derive(persist::PersistentEvent)]
#[persist(crate = "persist")]
enum Ev { Ticked }

#[derive(persist::EventSourced)]
#[persist(crate = "persist", entity = "Clock", event = Ev, apply = Self::on)]
struct Clock {
    #[persist(id)] id: u8,
    ticks: u64,
    #[persist(sequence)] seq: SequenceId,
}

impl Clock { fn on(&mut self, _: &Ev) { self.ticks += 1; } }

fn main() {
    let c = Clock { id: 1, ticks: 0, seq: SequenceId(0) };
    assert_eq!(c.persistence_id().0, "Clock:1");
    assert_eq!(c.last_sequence_id(), SequenceId(0));
}
