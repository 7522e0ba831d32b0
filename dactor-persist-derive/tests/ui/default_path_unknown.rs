use dactor_persist::prelude::*;

// `default = path` names a function that must exist.
#[derive(DurableState)]
#[persist(entity = "Profile")]
struct Profile {
    #[persist(id)]
    id: String,
    #[persist(default = no_such_function)]
    font: u32,
}

fn main() {}
