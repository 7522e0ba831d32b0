use dactor_persist::prelude::*;

#[derive(StoredState)]
struct ProfileV1 {
    name: String,
}

// `migrate` needs both `from` and `with`; `upcast` the same; settings get a
// did-you-mean.
#[derive(DurableState)]
#[persist(entity = "Profile", migrate(from = ProfileV1))]
struct Profile {
    #[persist(id)]
    id: String,
    name: String,
}

#[derive(DurableState)]
#[persist(entity = "Other", migrate(frm = ProfileV1, with = Other::from_v1))]
struct Other {
    #[persist(id)]
    id: String,
    name: String,
}

#[derive(PersistentEvent)]
#[persist(upcast(with = Ev::from_old))]
enum Ev {
    A,
}

fn main() {}
