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

pub fn trials() -> Vec<Trial> {
    checks!(
        journal_reads_in_order_within_bounds,
        journal_reads_pages_in_order,
        journal_unknown_id_is_empty,
        journal_highest_never_goes_down,
        journal_refuses_a_duplicate_without_overwriting,
        journal_conflicting_batch_stores_nothing,
        journal_refuses_deleted_sequences,
        journal_refuses_sequences_below_one,
        journal_empty_batch_stores_nothing,
        journal_payload_extremes,
        journal_tricky_ids_never_mix,
        journal_parallel_writers_on_different_ids,
        journal_racing_writers_win_each_sequence_once,
        journal_reads_see_a_batch_whole_or_not_at_all,
        snapshot_latest_is_the_highest_sequence,
        snapshot_at_the_same_sequence_replaces,
        snapshot_delete_before_removes_only_older,
        snapshot_payload_extremes,
        snapshot_tricky_ids_never_mix,
        state_save_replace_delete_and_unknown,
        state_payload_extremes,
        state_tricky_ids_never_mix,
    )
}
