//! A TCP proxy in front of the fake API server that a test can break the way networks and
//! API-server restarts break connections:
//! - [`Proxy::restart`] resets every open connection and refuses new ones until
//!   [`Proxy::restore`] (an API server that is down, then back);
//! - [`Proxy::black_hole`] keeps connections open but lets no byte through, old or new, until
//!   restore (a load balancer that lost its backend: the client sees no error, only silence).
//!
//! Connections opened during a black hole stay dead after restore, like half-open
//! connections do; only new connections work again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Refuse: reset open connections and new ones.
    Down,
    /// Swallow everything; keep sockets open.
    BlackHole,
}

pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<(Mode, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts forwarding a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(watch::channel((Mode::Forward, 0)).0);
        let task = tokio::spawn(accept_loop(listener, upstream, mode.clone()));
        Self { addr, mode, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resets all connections and refuses new ones until [`Self::restore`].
    pub fn restart(&self) {
        self.set(Mode::Down);
    }

    /// Lets nothing through, silently, until [`Self::restore`].
    pub fn black_hole(&self) {
        self.set(Mode::BlackHole);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.set(Mode::Forward);
    }

    fn set(&self, mode: Mode) {
        self.mode.send_modify(|(m, epoch)| {
            *m = mode;
            *epoch += 1;
        });
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: Arc<watch::Sender<(Mode, u64)>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let (current, _) = *mode.borrow();
        match current {
            Mode::Down => reset(client),
            Mode::BlackHole => {
                tokio::spawn(hold_silently(client));
            }
            Mode::Forward => {
                tokio::spawn(forward(client, upstream, mode.subscribe()));
            }
        }
    }
}

/// Closes with RST (linger 0), as a restarting server's kernel does.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Keeps the socket open and reads nothing: the peer's requests vanish.
async fn hold_silently(stream: TcpStream) {
    let _stream = stream;
    std::future::pending::<()>().await;
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<(Mode, u64)>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        reset(client);
        return;
    };
    let broken = {
        let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
        tokio::select! {
            _ = copy => None,
            changed = mode.wait_for(|(m, _)| *m != Mode::Forward) => {
                Some(changed.map(|m| m.0).unwrap_or(Mode::Down))
            }
        }
    };
    match broken {
        None => {
            let _ = client.shutdown().await;
        }
        // Stop copying, keep the socket open: a half-open connection.
        Some(Mode::BlackHole) => hold_silently(client).await,
        Some(_) => reset(client),
    }
}
