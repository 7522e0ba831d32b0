use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "Settings")]
struct Settings {
    theme: String,
}

fn main() {}
