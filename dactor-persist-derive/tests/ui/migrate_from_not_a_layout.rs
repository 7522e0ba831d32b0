use dactor_persist::prelude::*;

struct NotALayout {
    name: String,
}

// `from` must be a #[derive(StoredState)] struct.
#[derive(DurableState)]
#[persist(entity = "Profile", migrate(from = NotALayout, with = Self::from_old))]
struct Profile {
    #[persist(id)]
    id: String,
    name: String,
}

impl Profile {
    fn from_old(&mut self, old: NotALayout) {
        self.name = old.name;
    }
}

fn main() {}
