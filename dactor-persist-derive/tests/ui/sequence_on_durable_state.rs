use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "S")]
struct S {
    #[persist(id)] id: u32,
    #[persist(sequence)] seq: SequenceId,
}

fn main() {}
