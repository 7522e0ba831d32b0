use dactor_persist::prelude::*;

struct NotAnEvent;

// `upcast` from a type that is not a legacy event enum, and a misspelt
// setting of `upcast`.
#[derive(PersistentEvent)]
#[persist(upcast(from = NotAnEvent, with = Ev::from_old))]
enum Ev {
    A,
}

impl Ev {
    fn from_old(_: NotAnEvent) -> Self {
        Ev::A
    }
}

#[derive(PersistentEvent)]
enum Legacy {
    Old,
}

#[derive(PersistentEvent)]
#[persist(upcast(from = Legacy, wiht = Other::from_legacy))]
enum Other {
    B,
}

fn main() {}
