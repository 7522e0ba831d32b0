use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
#[persist(format = "jsn")]
enum Ev {
    A,
}

#[derive(DurableState)]
#[persist(entity = "S", format = "yaml")]
struct S {
    #[persist(id)]
    id: u8,
}

fn main() {}
