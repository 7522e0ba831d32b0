use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "Settings", save_every = 5, save_every = 10)]
struct Settings {
    #[persist(id)] id: u32,
}

fn main() {}
