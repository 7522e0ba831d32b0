//! A durable-state actor: user preferences saved whole, every 5 changes and
//! always on graceful stop, in a SQLite file.
//!
//! ```sh
//! cargo run -p dactor-persist-examples --bin settings            # ./settings.db
//! ```

use dactor_persist::SqliteStorageProvider;
use dactor_persist::prelude::*;
use dactor_persist::runtime::{Context, Handler, Message, Runtime};

#[derive(Debug, Default, DurableState)]
#[persist(entity = "Prefs", save_every = 5)]
struct Prefs {
    #[persist(id)]
    user: String,
    theme: String,
    font_size: u8,
    changes: u32,
    #[persist(skip)]
    session_hits: u64,
}

struct SetTheme(&'static str);
struct Bigger;
struct Show;

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "settings.db".to_owned());
    let storage = SqliteStorageProvider::open(&path).await?;
    let runtime = Runtime::builder().storage(storage.clone()).build();
    let prefs = runtime
        .spawn_durable_state(Prefs {
            user: "ada".into(),
            ..Default::default()
        })
        .await?;
    println!("recovered  {}", prefs.ask(Show).await?);
    prefs.tell(SetTheme("dark")).await?;
    for _ in 0..3 {
        prefs.ask(Bigger).await?;
    }
    println!("changed    {}", prefs.ask(Show).await?);
    // Stopping saves the state, whatever `save_every` says.
    runtime.shutdown().await;

    let runtime = Runtime::builder().storage(storage.clone()).build();
    let prefs = runtime
        .spawn_durable_state(Prefs {
            user: "ada".into(),
            ..Default::default()
        })
        .await?;
    println!("restarted  {}", prefs.ask(Show).await?);
    runtime.shutdown().await;
    storage.storage().close().await;
    Ok(())
}
