//! How much code the derives save, counted in non-blank, non-comment lines
//! between the `BEGIN ACTOR` / `END ACTOR` markers of the source files.
//!
//! Both versions of an actor contain the same domain code (the event enum,
//! the state fields, the event handler). What the derive replaces is the rest:
//! the persistence code, counted here as the lines of one version that the
//! other does not have (a multiset difference of trimmed lines).

use std::collections::HashMap;

fn actor_lines(source: &str) -> Vec<&str> {
    let start = source.find("// BEGIN ACTOR").expect("BEGIN marker");
    let end = source.find("// END ACTOR").expect("END marker");
    source[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .collect()
}

/// Lines of `a` that `b` does not have, counting repeats.
fn only_in<'a>(a: &[&'a str], b: &[&'a str]) -> usize {
    let mut left: HashMap<&str, i64> = HashMap::new();
    for l in b {
        *left.entry(l).or_default() += 1;
    }
    a.iter()
        .filter(|l| {
            let n = left.entry(l).or_default();
            *n -= 1;
            *n < 0
        })
        .count()
}

fn check(hand_src: &str, derived_src: &str) {
    let hand = actor_lines(hand_src);
    let derived = actor_lines(derived_src);
    let hand_persistence = only_in(&hand, &derived);
    let derived_persistence = only_in(&derived, &hand);
    println!(
        "whole actor: hand-written {} lines, derived {}; persistence code: hand-written {hand_persistence}, derived {derived_persistence}",
        hand.len(),
        derived.len()
    );
    assert!(
        derived_persistence * 4 <= hand_persistence,
        "persistence code: derived {derived_persistence} lines vs hand-written {hand_persistence}"
    );
    assert!(
        derived.len() * 3 <= hand.len(),
        "whole actor: derived {} lines vs hand-written {}",
        derived.len(),
        hand.len()
    );
}

#[test]
fn the_derived_account_needs_a_quarter_of_the_persistence_code() {
    check(
        include_str!("hand_account.rs"),
        include_str!("derived_account.rs"),
    );
}

#[test]
fn the_derived_counter_needs_a_quarter_of_the_persistence_code() {
    check(
        include_str!("hand_counter.rs"),
        include_str!("derived_counter.rs"),
    );
}
