use dactor_persist::prelude::*;

// Variant keys on the enum, enum keys on a variant, variant keys on a
// field, a misspelt variant key, and `format` unquoted: each an error with
// its span, none ignored.
#[derive(PersistentEvent)]
#[persist(name = "Cart", alias = "OldCart", tag = "carts")]
enum Cart {
    #[persist(nmae = "Added", tags = tags_of, format = "json")]
    Added {
        #[persist(alias = "a", tag = "t")]
        sku: String,
    },
}

#[derive(PersistentEvent)]
#[persist(format = json)]
enum Unquoted {
    A,
}

fn main() {}
