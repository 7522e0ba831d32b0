use std::fmt;
use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "ByInt")]
struct ByInt { #[persist(id)] id: i128, value: u8 }

struct UserId(u64);
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "u{}", self.0) }
}

#[derive(DurableState)]
#[persist(entity = "ByNewtype")]
struct ByNewtype { #[persist(id)] id: UserId, value: u8 }

fn main() {
    assert_eq!(ByInt { id: -5, value: 0 }.persistence_id().0, "ByInt:-5");
    assert_eq!(ByNewtype { id: UserId(9), value: 0 }.persistence_id().0, "ByNewtype:u9");
}
