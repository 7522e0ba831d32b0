use dactor_persist::prelude::*;

#[derive(DurableState)]
#[persist(entity = "Conn", manual_actor)]
struct Conn { #[persist(id)] id: u8, hits: u64 }

impl Actor for Conn {
    type Args = u8;
    type Deps = ();
    fn create(id: u8, _: ()) -> Self { Conn { id, hits: 0 } }
}

fn main() {
    assert_eq!(Conn::create(3, ()).persistence_id().0, "Conn:3");
}
