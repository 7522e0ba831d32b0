use dactor_persist::prelude::*;

// Attributes on an event's fields are parsed: unknown and misplaced keys are
// errors, not silently ignored.
#[derive(PersistentEvent)]
enum Cart {
    ItemAdded {
        sku: String,
        #[persist(total_nonsense = 3)]
        qty: u32,
        #[persist(defualt)]
        note: String,
        #[persist(name = "old")]
        price: u64,
    },
    #[persist(default)]
    Cleared,
}

fn main() {}
