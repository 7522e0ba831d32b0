use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev { A(u8) }

#[derive(EventSourced)]
#[persist(entity = "Plain", event = Ev, apply = Self::on)]
struct Plain {
    #[persist(id)] id: u8,
    #[persist(sequence)] seq: SequenceId,
}

impl Plain { fn on(&mut self, _: &Ev) {} }

fn main() {
    let p = Plain { id: 0, seq: SequenceId(0) };
    assert!(p.snapshot_config().is_none());
}
