//! The evolution guide (`dactor_persist::codec`), row by row: each kind of
//! change to a stored type, written the way the guide says, reads what the
//! type stored before the change.

mod events;
mod json;
mod states;
