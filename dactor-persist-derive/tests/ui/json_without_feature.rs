use dactor_persist::prelude::*;

// The derive tests build dactor-persist without its `json` feature.
#[derive(PersistentEvent)]
#[persist(format = "json")]
enum Ev {
    A,
}

fn main() {}
