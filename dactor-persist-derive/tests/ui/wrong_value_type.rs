use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev { A }

#[derive(EventSourced)]
#[persist(entity = 5, event = Ev, apply = Self::on, snapshot_every = "10", snapshot_interval = "soon")]
struct Counter {
    #[persist(id)] id: u32,
    #[persist(sequence)] seq: SequenceId,
}

impl Counter { fn on(&mut self, _: &Ev) {} }

fn main() {}
