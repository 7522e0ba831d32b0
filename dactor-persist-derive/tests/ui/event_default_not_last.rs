use dactor_persist::prelude::*;

// An old event's payload ends where the added fields start: fields with a
// default go after every field without one.
#[derive(PersistentEvent)]
enum Cart {
    ItemAdded {
        sku: String,
        #[persist(default)]
        qty: u32,
        price: u64,
    },
}

fn main() {}
