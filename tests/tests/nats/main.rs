//! The NATS JetStream store against real servers.
//!
//! Two sets of tests, each run when its variable is set:
//!
//! - `DACTOR_PERSIST_NATS_URL` (for example `nats://127.0.0.1:4222`): a
//!   JetStream server for the store's own tests and the conformance suite;
//! - `DACTOR_PERSIST_NATS_CLUSTER`: the state directory of the three-node
//!   cluster that `tests/nats-cluster/cluster.sh start DIR` started, for the
//!   conformance suite on three replicas, the fence races and the fault
//!   tests (which kill, stop and restart its nodes).
//!
//! Without a variable its tests are listed as ignored and a message says how
//! to run them; with it set and the server unreachable, they fail.

mod conformance;
mod faults;
mod fence;
/// The TCP proxy of the PostgreSQL tests: it drops the server's answers.
#[allow(dead_code)]
#[path = "../postgres/proxy.rs"]
mod proxy;
mod store;
mod support;

use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut single = conformance::single();
    single.extend(fence::single());
    single.extend(store::single());
    let mut clustered = conformance::cluster();
    clustered.extend(fence::cluster());
    clustered.extend(faults::cluster_trials());
    single.sort_by(|a, b| a.name().cmp(b.name()));
    clustered.sort_by(|a, b| a.name().cmp(b.name()));

    let mut trials: Vec<Trial> = Vec::new();
    trials.extend(skip_unless(
        single,
        support::url().is_some(),
        &format!(
            "{var} is not set. To run them, point it at a JetStream server, e.g.\n===   \
             {var}=nats://127.0.0.1:4222 cargo test -p dactor-persist-tests --test nats",
            var = support::URL_VAR
        ),
    ));
    trials.extend(skip_unless(
        clustered,
        support::cluster_dir().is_some(),
        &format!(
            "{var} is not set. To run them, start the three-node cluster and name its \
             directory, e.g.\n===   tests/nats-cluster/cluster.sh start /tmp/nats-cluster && \
             {var}=/tmp/nats-cluster cargo test -p dactor-persist-tests --test nats",
            var = support::CLUSTER_VAR
        ),
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// `trials` as they are when `run`, else marked ignored with a message.
fn skip_unless(trials: Vec<Trial>, run: bool, why: &str) -> Vec<Trial> {
    if run {
        return trials;
    }
    eprintln!("\n=== skipped {} NATS tests: {why}\n", trials.len());
    trials
        .into_iter()
        .map(|trial| trial.with_ignored_flag(true))
        .collect()
}
