use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "Settings")]
struct Settings {
    #[persist(id, skip)] user: u32,
    theme: String,
}

fn main() {}
