//! The storage conformance suite (`dactor_persist::testkit`), one test per
//! check, each on a fresh store in a schema of its own.

use libtest_mimic::Trial;

use crate::support::{fresh, trial};

macro_rules! checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            trial(concat!("conformance::", stringify!($check)), || async {
                let (store, schema) = fresh().await;
                dactor_persist::testkit::conformance::$check(store.clone()).await;
                store.close().await;
                drop(schema);
            }),
        )+]
    };
}

macro_rules! query_checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            trial(concat!("conformance::", stringify!($check)), || async {
                let (store, schema) = fresh().await;
                dactor_persist::testkit::queries::$check(store.clone()).await;
                store.close().await;
                drop(schema);
            }),
        )+]
    };
}

macro_rules! projection_checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            trial(concat!("conformance::", stringify!($check)), || async {
                let (store, schema) = fresh().await;
                dactor_persist::testkit::projections::$check(store.clone()).await;
                store.close().await;
                drop(schema);
            }),
        )+]
    };
}

pub fn trials() -> Vec<Trial> {
    let mut trials = dactor_persist::__journal_checks!([checks] []);
    trials.extend(dactor_persist::__snapshot_checks!([checks] []));
    trials.extend(dactor_persist::__state_checks!([checks] []));
    trials.extend(dactor_persist::__query_checks!([query_checks] []));
    trials.extend(dactor_persist::__projection_checks!([projection_checks] []));
    trials
}
