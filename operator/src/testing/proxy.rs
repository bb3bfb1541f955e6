//! A TCP proxy in front of the fake API server that a test can break the way networks and
//! API-server restarts break connections:
//! - [`Proxy::restart`] resets every open connection and refuses new ones until
//!   [`Proxy::restore`] (an API server that is down, then back);
//! - [`Proxy::black_hole`] keeps connections open but lets no byte through, old or new, until
//!   restore (a load balancer that lost its backend: the client sees no error, only silence).
//!
//! Connections silenced by a black hole stay silent after restore, like half-open
//! connections do: a client that only listens (a watch) hears nothing until it gives up,
//! and one that sends a request on such a connection after restore gets a reset, as from a
//! peer host that no longer knows the connection. Only new connections work again.

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
    /// Connections refused while down.
    refused: Arc<watch::Sender<u64>>,
    /// Connections currently forwarding bytes.
    forwarding: Arc<watch::Sender<usize>>,
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
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(watch::channel((Mode::Forward, 0)).0);
        let refused = Arc::new(watch::channel(0).0);
        let forwarding = Arc::new(watch::channel(0).0);
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            mode.clone(),
            refused.clone(),
            forwarding.clone(),
        ));
        Self {
            addr,
            mode,
            refused,
            forwarding,
            task,
        }
    }

    /// Waits until `n` connection attempts have been refused since the start (the client
    /// has noticed the outage and keeps retrying).
    pub async fn wait_refused(&self, n: u64) {
        let mut refused = self.refused.subscribe();
        let _ = refused.wait_for(|count| *count >= n).await;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resets all connections and refuses new ones until [`Self::restore`]. Returns once
    /// no connection forwards any more.
    pub async fn restart(&self) {
        self.set(Mode::Down);
        self.until_nothing_forwards().await;
    }

    /// Lets nothing through, silently, until [`Self::restore`]. Returns once no connection
    /// forwards any more.
    pub async fn black_hole(&self) {
        self.set(Mode::BlackHole);
        self.until_nothing_forwards().await;
    }

    async fn until_nothing_forwards(&self) {
        let mut forwarding = self.forwarding.subscribe();
        let _ = forwarding.wait_for(|n| *n == 0).await;
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
    refused: Arc<watch::Sender<u64>>,
    forwarding: Arc<watch::Sender<usize>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let (current, _) = *mode.borrow();
        match current {
            Mode::Down => {
                reset(client);
                refused.send_modify(|n| *n += 1);
            }
            Mode::BlackHole => {
                tokio::spawn(hold_silently(client, mode.subscribe()));
            }
            Mode::Forward => {
                forwarding.send_modify(|n| *n += 1);
                tokio::spawn(forward(
                    client,
                    upstream,
                    mode.subscribe(),
                    forwarding.clone(),
                ));
            }
        }
    }
}

/// Closes with RST (linger 0), as a restarting server's kernel does.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Keeps the socket open and answers nothing. What the client sends during the black hole
/// vanishes; what it sends after restore is answered with a reset.
async fn hold_silently(mut stream: TcpStream, mode: watch::Receiver<(Mode, u64)>) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) if mode.borrow().0 == Mode::Forward => return reset(stream),
            Ok(_) => {}
        }
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<(Mode, u64)>,
    forwarding: Arc<watch::Sender<usize>>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        forwarding.send_modify(|n| *n -= 1);
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
    drop(server);
    forwarding.send_modify(|n| *n -= 1);
    match broken {
        None => {
            let _ = client.shutdown().await;
        }
        // Stop copying, keep the socket open: a half-open connection.
        Some(Mode::BlackHole) => hold_silently(client, mode).await,
        Some(_) => reset(client),
    }
}
