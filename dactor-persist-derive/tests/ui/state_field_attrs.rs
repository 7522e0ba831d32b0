use dactor_persist::prelude::*;

// `default` and `name` apply to stored fields only; stored names are unique;
// unknown keys get a did-you-mean.
#[derive(DurableState)]
#[persist(entity = "Profile")]
struct Profile {
    #[persist(id, default)]
    id: String,
    #[persist(name = "email")]
    mail: String,
    email: String,
    #[persist(defalt)]
    logins: u32,
    #[persist(skip, name = "x")]
    cache: u8,
}

fn main() {}
