use dactor_persist::prelude::*;

// `default = ..` takes the path of a function: not a number, not a string.
#[derive(PersistentEvent)]
enum Ev {
    Added {
        qty: u32,
        #[persist(default = 3)]
        note: u32,
    },
}

#[derive(DurableState)]
#[persist(entity = "Profile")]
struct Profile {
    #[persist(id)]
    id: String,
    #[persist(default = "dark")]
    theme: String,
}

fn main() {}
