use dactor_persist::prelude::*;

struct Connection;

#[derive(DurableState)]
#[persist(entity = "Session")]
struct Session {
    #[persist(id)] id: u32,
    conn: Connection,
}

fn main() {}
