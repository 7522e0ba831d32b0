use dactor_persist::prelude::*;

#[derive(PersistentEvent)]
struct Deposited { amount: u64 }

fn main() {}
