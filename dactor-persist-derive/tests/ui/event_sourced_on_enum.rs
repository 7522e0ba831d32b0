use dactor_persist::prelude::*;

#[derive(EventSourced)]
#[persist(entity = "Light")]
enum Light { On, Off }

fn main() {}
