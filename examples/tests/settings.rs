//! The `settings` example's preferences, tested on the behaviour test kit:
//! given a state, when a message, then the reply and the saved state.

use dactor_persist::testkit::DurableStateTestKit;
use dactor_persist_examples::settings::{Bigger, Prefs, SetTheme, Show};

fn prefs() -> Prefs {
    Prefs {
        user: "ada".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_state_is_saved_every_five_changes() {
    let mut kit = DurableStateTestKit::new(prefs);
    for i in 1..=4 {
        let out = kit.run(Bigger).await.unwrap();
        assert!(out.saved.is_none(), "change {i}: not saved yet");
    }
    let out = kit.run(SetTheme("dark")).await.unwrap();
    let saved = out.saved.expect("the fifth change saves");
    assert_eq!(
        (saved.theme.as_str(), saved.font_size, saved.changes),
        ("dark", 13, 5)
    );
}

#[tokio::test]
async fn given_a_state_the_actor_continues_from_it() {
    let mut kit = DurableStateTestKit::new(prefs);
    kit.given_state(Prefs {
        user: "ada".into(),
        theme: "light".into(),
        font_size: 20,
        changes: 7,
        session_hits: 99,
    })
    .await
    .unwrap();
    let out = kit.run(Bigger).await.unwrap();
    assert_eq!(out.reply, 21);
    // The skipped field was not stored: a fresh count.
    let shown = kit.run(Show).await.unwrap().reply;
    assert!(
        shown.contains("8 changes") && shown.contains("1 reads"),
        "{shown}"
    );
}

#[tokio::test]
async fn stopping_saves_what_the_count_has_not() {
    let mut kit = DurableStateTestKit::new(prefs);
    kit.run(SetTheme("dark")).await.unwrap();
    assert_eq!(kit.stored().await.unwrap().theme, "", "not saved yet");
    kit.restart().await.unwrap();
    assert_eq!(kit.stored().await.unwrap().theme, "dark");
    assert_eq!(kit.state(|p| p.changes).await.unwrap(), 1);
}
