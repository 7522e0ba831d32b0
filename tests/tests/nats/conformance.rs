//! The storage conformance suite (`dactor_persist::testkit`), one test per
//! check, each on streams of its own: on the single server (8 shards, one
//! replica) and on the three-node cluster (2 shards, three replicas).

use libtest_mimic::Trial;

use crate::support::{Use, cluster_trial, cluster_urls, fresh, fresh_with, trial};

macro_rules! checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            trial(concat!("conformance::single::", stringify!($check)), || async {
                let (store, streams) = fresh().await;
                dactor_persist::testkit::conformance::$check(store.clone()).await;
                store.close().await;
                drop(streams);
            }),
        )+]
    };
}

macro_rules! cluster_checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            cluster_trial(concat!("conformance::cluster::", stringify!($check)), Use::Shared, || async {
                let (store, streams) =
                    fresh_with(&cluster_urls(), |b| b.replicas(3).shards(2)).await;
                dactor_persist::testkit::conformance::$check(store.clone()).await;
                store.close().await;
                drop(streams);
            }),
        )+]
    };
}

macro_rules! query_checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            trial(concat!("conformance::single::", stringify!($check)), || async {
                let (store, streams) = fresh_with(&crate::support::server(), |b| b.shards(1)).await;
                dactor_persist::testkit::queries::$check(store.clone()).await;
                store.close().await;
                drop(streams);
            }),
        )+]
    };
}

macro_rules! projection_checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            trial(concat!("conformance::single::", stringify!($check)), || async {
                let (store, streams) = fresh_with(&crate::support::server(), |b| {
                    b.shards(1).lease_ttl(std::time::Duration::from_secs(3))
                })
                .await;
                dactor_persist::testkit::projections::$check(store.clone()).await;
                store.close().await;
                drop(streams);
            }),
        )+]
    };
}

macro_rules! cluster_query_checks {
    ($($check:ident),+ $(,)?) => {
        vec![$(
            cluster_trial(concat!("conformance::cluster::", stringify!($check)), Use::Shared, || async {
                let (store, streams) =
                    fresh_with(&cluster_urls(), |b| b.replicas(3).shards(1)).await;
                dactor_persist::testkit::queries::$check(store.clone()).await;
                store.close().await;
                drop(streams);
            }),
        )+]
    };
}

/// The checks on the single server (the query checks on one shard: queries
/// across ids need its total order).
pub fn single() -> Vec<Trial> {
    let mut trials = dactor_persist::__journal_checks!([checks] []);
    trials.extend(dactor_persist::__snapshot_checks!([checks] []));
    trials.extend(dactor_persist::__state_checks!([checks] []));
    trials.extend(dactor_persist::__query_checks!([query_checks] []));
    trials.extend(dactor_persist::__projection_checks!([projection_checks] []));
    trials
}

/// The checks on the cluster.
pub fn cluster() -> Vec<Trial> {
    let mut trials = dactor_persist::__journal_checks!([cluster_checks] []);
    trials.extend(dactor_persist::__snapshot_checks!([cluster_checks] []));
    trials.extend(dactor_persist::__state_checks!([cluster_checks] []));
    trials.extend(dactor_persist::__query_checks!([cluster_query_checks] []));
    trials
}
