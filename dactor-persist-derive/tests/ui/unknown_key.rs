use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev { A }

#[derive(EventSourced)]
#[persist(entity = "Counter", event = Ev, apply = Self::on, snapshot_evry = 100)]
struct Counter {
    #[persist(id)] id: u32,
    #[persist(sequence)] seq: SequenceId,
}

impl Counter { fn on(&mut self, _: &Ev) {} }

fn main() {}
