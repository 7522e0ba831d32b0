use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev { A }

#[derive(EventSourced)]
#[persist(entity = "Counter:x", event = Ev, apply = Self::on, keep_snapshots = 0, colour = "red")]
struct Counter {
    #[persist(id)] id: u32,
    #[persist(sequence)] seq: SequenceId,
}

impl Counter { fn on(&mut self, _: &Ev) {} }

fn main() {
    // No cascade: the impls exist beside the errors, so this use is not an error.
    let c = Counter { id: 1, seq: SequenceId(0) };
    let _ = c.persistence_id();
}
