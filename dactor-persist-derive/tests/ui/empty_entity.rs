use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "")]
struct Settings {
    #[persist(id)] id: u32,
}

fn main() {}
