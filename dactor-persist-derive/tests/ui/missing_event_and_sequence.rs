use dactor_persist::prelude::*;

#[derive(EventSourced)]
#[persist(entity = "Counter")]
struct Counter {
    #[persist(id)] id: u32,
    value: i64,
}

fn main() {}
