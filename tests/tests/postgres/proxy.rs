//! A TCP proxy between the store and the server, to cut the database away
//! and bring it back in the middle of a test.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes bytes both ways.
    Forward,
    /// Keeps every connection open but passes nothing, and accepts new ones
    /// without answering: a network partition, where only timeouts notice.
    Blackhole,
    /// Closes every connection, and new ones as soon as they are accepted:
    /// a server that went away.
    Refuse,
    /// Passes the client's bytes to the server but drops the answers: the
    /// server does the work (commits) and the client never hears of it.
    /// Connections are closed when the mode changes (bytes were lost).
    Deaf,
}

/// A proxy on a free loopback port, forwarding to `upstream`.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    mode: watch::Sender<Mode>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (mode, watching) = watch::channel(Mode::Forward);
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), watching.clone()));
            }
        });
        Self {
            port,
            mode,
            accepting,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Holds a connection silent until the proxy forwards again (or is
/// dropped), then closes it.
async fn hold(mode: &mut watch::Receiver<Mode>) {
    let _ = mode.wait_for(|m| *m == Mode::Forward).await;
}

async fn relay(client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => return,
        Mode::Blackhole => return hold(&mut mode).await,
        Mode::Forward | Mode::Deaf => {}
    }
    let mut deaf = current == Mode::Deaf;
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut up) => match read {
                Ok(n) if n > 0 => {
                    if server_write.write_all(&up[..n]).await.is_err() {
                        return;
                    }
                }
                _ => return,
            },
            read = server_read.read(&mut down) => match read {
                Ok(n) if n > 0 => {
                    if !deaf && client_write.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
                _ => return,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *mode.borrow_and_update();
                if deaf && now != Mode::Deaf {
                    // Answers were dropped: this connection cannot go on.
                    return;
                }
                match now {
                    Mode::Forward => {}
                    Mode::Refuse => return,
                    Mode::Blackhole => return hold(&mut mode).await,
                    Mode::Deaf => deaf = true,
                }
            }
        }
    }
}
