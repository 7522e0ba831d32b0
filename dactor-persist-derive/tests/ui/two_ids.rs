use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "Settings")]
struct Settings {
    #[persist(id)] user: u32,
    #[persist(id)] tenant: u32,
}

fn main() {}
