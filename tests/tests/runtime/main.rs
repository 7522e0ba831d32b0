//! The runtime: one module per numbered point of its issue, on tokio's paused
//! clock wherever time matters.

mod actors;

mod dead_letters;
mod entities;
mod handles;
mod lifecycle;
mod observability;
mod persist_policy;
mod recovery_first;
mod saves;
mod snapshots;
mod supervision;
