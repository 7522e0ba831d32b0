use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "S", recovery_failure = "return_error", persist_failure = retry(max_attempts = 0, initial_delay = "1s"))]
struct S {
    #[persist(id)] id: u32,
}

fn main() {}
