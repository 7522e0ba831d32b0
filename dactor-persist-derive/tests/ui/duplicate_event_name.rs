use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
enum Ev {
    Opened,
    #[persist(alias = "Opened")]
    Reopened,
    #[persist(name = "")]
    Closed,
}

fn main() {}
