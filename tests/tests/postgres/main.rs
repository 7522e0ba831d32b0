//! The PostgreSQL store against a real server.
//!
//! The server is the one named by `DACTOR_PERSIST_PG_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`); every test works in a schema of
//! its own, with a random name, dropped afterwards. Without the variable every
//! test is listed as ignored and a message says how to run them; with the
//! variable set and the server unreachable, every test fails.
//!
//! This target has its own `main` (`harness = false`, with libtest-mimic) so
//! that it can say so where the README's `cargo test --workspace` prints it.

mod conformance;
mod errors;
mod group_commit;
mod injection;
mod integrity;
mod json;
mod late_commit;
mod nodes;
mod outage;
mod projections;
mod proxy;
mod schema;
mod support;

use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(conformance::trials());
    trials.extend(injection::trials());
    trials.extend(integrity::trials());
    trials.extend(late_commit::trials());
    trials.extend(schema::trials());
    trials.extend(errors::trials());
    trials.extend(group_commit::trials());
    trials.extend(nodes::trials());
    trials.extend(outage::trials());
    trials.extend(projections::trials());
    trials.extend(json::trials());

    let trials: Vec<Trial> = match support::url() {
        Some(_) => trials,
        None => {
            let count = trials.len();
            eprintln!(
                "\n=== skipped {count} PostgreSQL tests: {var} is not set. To run them, point it at a \
                 database, e.g.\n===   {var}=postgres://postgres@127.0.0.1:5432/test cargo test -p \
                 dactor-persist-tests --test postgres\n",
                var = support::URL_VAR
            );
            trials
                .into_iter()
                .map(|trial| trial.with_ignored_flag(true))
                .collect()
        }
    };
    libtest_mimic::run(&args, trials).exit();
}
