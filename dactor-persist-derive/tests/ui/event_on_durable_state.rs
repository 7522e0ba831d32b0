use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev { A }

#[derive(DurableState)]
#[persist(entity = "Settings", event = Ev)]
struct Settings {
    #[persist(id)] id: u32,
}

fn main() {}
