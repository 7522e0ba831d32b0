//! The preferences of the `settings` example: a durable-state actor saved
//! whole, every 5 changes and always on graceful stop.

use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message};

/// One user's preferences.
#[derive(Debug, Default, DurableState)]
#[persist(entity = "Prefs", save_every = 5)]
pub struct Prefs {
    /// The user's id.
    #[persist(id)]
    pub user: String,
    /// The theme's name.
    pub theme: String,
    /// The font size.
    pub font_size: u8,
    /// How many changes were made.
    pub changes: u32,
    /// Reads this session: not stored.
    #[persist(skip)]
    pub session_hits: u64,
}

/// Sets the theme.
pub struct SetTheme(pub &'static str);
/// One font size up (at least 10).
pub struct Bigger;
/// Describes the preferences.
pub struct Show;

impl Message for SetTheme {
    type Reply = ();
}
impl Message for Bigger {
    type Reply = u8;
}
impl Message for Show {
    type Reply = String;
}

#[async_trait]
impl Handler<SetTheme> for Prefs {
    async fn handle(&mut self, SetTheme(theme): SetTheme, _ctx: &mut Context<Self>) {
        self.theme = theme.to_owned();
        self.changes += 1;
    }
}

#[async_trait]
impl Handler<Bigger> for Prefs {
    async fn handle(&mut self, _: Bigger, _ctx: &mut Context<Self>) -> u8 {
        self.font_size = self.font_size.saturating_add(1).max(10);
        self.changes += 1;
        self.font_size
    }
}

#[async_trait]
impl Handler<Show> for Prefs {
    async fn handle(&mut self, _: Show, _ctx: &mut Context<Self>) -> String {
        self.session_hits += 1;
        format!(
            "{}: theme {:?}, font {}, {} changes; {} reads this session (not stored)",
            self.user, self.theme, self.font_size, self.changes, self.session_hits
        )
    }
}
