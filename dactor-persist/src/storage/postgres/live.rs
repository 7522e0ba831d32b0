//! Waking live queries: commits of this store wake them at once (a watch
//! channel); commits of other processes through PostgreSQL's
//! `LISTEN`/`NOTIFY`, a hint each writer sends after its commit (never
//! inside the writing transaction, where a `NOTIFY` would serialize every
//! commit of the database). Polling stays the floor: a hint may be lost
//! (the listening connection broke), and readers read again every
//! [`PostgresStorageBuilder::poll_interval`](super::PostgresStorageBuilder::poll_interval).

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::{Shared, sql};

/// The channel every store of every schema notifies on; the payload names
/// the schema, so that each listener wakes only for its own.
const CHANNEL: &str = "dactor_persist";

/// Sends one `NOTIFY` per burst of commits: pings coalesce while one is
/// being sent. It has a connection of its own (opened when first needed, and
/// again after a failure), so that it never takes one the writers need.
/// Ends with the store.
pub(super) async fn notifier(shared: Weak<Shared>, ping: Arc<Notify>) {
    let mut client: Option<tokio_postgres::Client> = None;
    loop {
        ping.notified().await;
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let (config, schema, bound) = (
            strong.pg_config.clone(),
            strong.schema.clone(),
            strong.op_timeout,
        );
        #[cfg(feature = "postgres-tls")]
        let tls = strong.tls.clone();
        drop(strong);
        let sent = tokio::time::timeout(bound, async {
            if client
                .as_ref()
                .is_none_or(tokio_postgres::Client::is_closed)
            {
                #[cfg(feature = "postgres-tls")]
                let connected = match tls {
                    Some(tls) => {
                        open(&config, tokio_postgres_rustls::MakeRustlsConnect::new(tls)).await
                    }
                    None => open(&config, tokio_postgres::NoTls).await,
                };
                #[cfg(not(feature = "postgres-tls"))]
                let connected = open(&config, tokio_postgres::NoTls).await;
                client = Some(connected?);
            }
            match &client {
                Some(c) => c.execute(sql::notify!(), &[&schema]).await.map(drop),
                None => Ok(()),
            }
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            // A hint only: readers elsewhere poll. Reconnect next time.
            client = None;
            tracing::debug!("a commit hint could not be sent; readers in other processes poll");
        }
    }
}

/// A connection of the store's own, outside the pool (TLS as configured),
/// driven by a task of its own.
pub(super) async fn dedicated(
    shared: &Shared,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    #[cfg(feature = "postgres-tls")]
    if let Some(tls) = shared.tls.clone() {
        return open(
            &shared.pg_config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        )
        .await;
    }
    open(&shared.pg_config, tokio_postgres::NoTls).await
}

/// A connection of its own, driven by a task of its own.
async fn open<M>(
    config: &tokio_postgres::Config,
    tls: M,
) -> Result<tokio_postgres::Client, tokio_postgres::Error>
where
    M: MakeTlsConnect<Socket>,
    M::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Listens for other processes' commit hints and wakes this store's live
/// queries; reconnects after a failure. Ends with the store.
pub(super) async fn listener(shared: Weak<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let (config, schema) = (strong.pg_config.clone(), strong.schema.clone());
        #[cfg(feature = "postgres-tls")]
        let tls = strong.tls.clone();
        drop(strong);
        #[cfg(feature = "postgres-tls")]
        let result = match tls {
            Some(tls) => {
                listen(
                    &config,
                    tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                    &shared,
                    &schema,
                )
                .await
            }
            None => listen(&config, tokio_postgres::NoTls, &shared, &schema).await,
        };
        #[cfg(not(feature = "postgres-tls"))]
        let result = listen(&config, tokio_postgres::NoTls, &shared, &schema).await;
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(error = %e, "the listener of commit hints lost its connection; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One listening connection, until it fails (`Err`) or the store is gone.
async fn listen<M>(
    config: &tokio_postgres::Config,
    tls: M,
    shared: &Weak<Shared>,
    schema: &str,
) -> Result<(), tokio_postgres::Error>
where
    M: MakeTlsConnect<Socket>,
    M::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listening = false;
    let mut check = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done?;
                listening = true;
                // Commits while no one listened: let readers look.
                wake(shared);
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) if n.payload() == schema => wake(shared),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = check.tick() => {
                if shared.strong_count() == 0 {
                    return Ok(());
                }
            }
        }
    }
}

fn wake(shared: &Weak<Shared>) {
    if let Some(shared) = shared.upgrade() {
        shared.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
}
