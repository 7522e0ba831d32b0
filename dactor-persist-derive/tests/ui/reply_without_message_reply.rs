use dactor_persist::runtime::Message;

struct Receipt {
    accepted: bool,
}

struct Pay;

// A reply type must say whether it is a failure (for dead letters).
impl Message for Pay {
    type Reply = Receipt;
}

fn main() {
    let _ = Receipt { accepted: true }.accepted;
}
