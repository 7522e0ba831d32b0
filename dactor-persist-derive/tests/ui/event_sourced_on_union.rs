use dactor_persist::prelude::*;

#[derive(EventSourced)]
#[persist(entity = "Bits")]
union Bits { a: u32, b: f32 }

fn main() {}
