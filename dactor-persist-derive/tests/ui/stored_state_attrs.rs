use dactor_persist::prelude::*;

// A StoredState struct is an old layout's stored fields: the actor's
// settings and field roles have no place on it.
#[derive(StoredState)]
#[persist(entity = "Profile", save_every = 3)]
struct ProfileV1 {
    #[persist(id)]
    id: String,
    #[persist(skip)]
    cache: u8,
    name: String,
}

fn main() {}
