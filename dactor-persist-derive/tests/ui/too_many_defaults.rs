use dactor_persist::prelude::*;

// At most 8 fields of a state can take defaults.
#[derive(DurableState)]
#[persist(entity = "Wide")]
struct Wide {
    #[persist(id)]
    id: String,
    #[persist(default)]
    a: u8,
    #[persist(default)]
    b: u8,
    #[persist(default)]
    c: u8,
    #[persist(default)]
    d: u8,
    #[persist(default)]
    e: u8,
    #[persist(default)]
    f: u8,
    #[persist(default)]
    g: u8,
    #[persist(default)]
    h: u8,
    #[persist(default)]
    i: u8,
}

fn main() {}
