use dactor_persist::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Theme(u8);

// `#[persist(default)]` needs `Default`: the error points at the attribute.
#[derive(DurableState)]
#[persist(entity = "Settings")]
struct Settings {
    #[persist(id)]
    id: String,
    #[persist(default)]
    theme: Theme,
}

fn main() {}
