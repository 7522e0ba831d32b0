use dactor_persist::prelude::*;

struct Key(u32);

#[derive(DurableState)]
#[persist(entity = "S")]
struct S {
    #[persist(id)] id: Key,
    value: u8,
}

fn main() {}
