use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev { A }

#[derive(EventSourced)]
#[persist(entity = "Counter", event = Ev)]
struct Counter {
    #[persist(id)] id: u32,
    #[persist(sequence)] seq: SequenceId,
}

fn main() {}
