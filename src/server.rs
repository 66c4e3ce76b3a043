//! Listeners and connections.
//!
//! Owns sockets: the accept loops (a semaphore bounds connections; accept errors back
//! off), the per-connection task ([`connection`]: the TLS handshake under a timeout, then
//! hyper from the connection's first byte to its last, HTTP/1.1 or HTTP/2), the
//! connection deadlines ([`activity`], [`head_timer`]), the plain listener's redirect to
//! HTTPS, and graceful shutdown (stop accepting, let in-flight requests finish until a
//! deadline, then close what remains). It hands every request to
//! [`crate::proxy::handle`] and makes no routing or security decision itself.
//!
//! WebSockets come as HTTP/1.1 upgrades or, from h2 clients, as RFC 8441 extended CONNECT
//! (SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised; [`crate::websocket`] bridges them to
//! the service's HTTP/1.1 upgrade). A connection's slot under `max_connections` (and its
//! count in the open-connections gauge) is shared with the tunnels opened on it
//! ([`crate::forward::TunnelScope`]) and given back when the last of them ends; shutdown
//! waits for those tunnels too.

mod activity;
mod bare_errors;
mod connection;
mod head_timer;
mod redirect;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::{Config, Listen};
use crate::forward::TunnelScope;
use crate::state::Shared;
use crate::tls::{TlsAcceptor, TlsError};

pub use redirect::https_location;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `key` is the listener's config key (`listen.http`, ...).
    #[error("{key}: cannot listen on {addr}: {error}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Start(#[from] crate::state::StartError),
}

/// The addresses actually bound (a config may ask for port 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bound {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

/// The TLS acceptor new connections use; swapped whole on reload. A connection keeps the
/// acceptor it was accepted with, so its Host checks use the certificate it was served.
pub type SharedAcceptor = Arc<ArcSwapOption<TlsAcceptor>>;

/// A running roomgate: its addresses, its shared state, and the means to stop it.
pub struct Running {
    pub bound: Bound,
    pub shared: Arc<Shared>,
    pub tls: SharedAcceptor,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stop accepting, let in-flight requests finish up to the grace period, close the
    /// rest, then return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// A handle that can ask for shutdown from elsewhere.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Swap in a validated config: build everything it needs first (the certificates),
    /// then replace the state and the acceptor. On error nothing changes. Listener
    /// addresses, `limits.max_connections`, `redis` and `secrets` take effect on restart
    /// only (a warning says so).
    pub fn reload(&self, config: Config) -> Result<(), TlsError> {
        let prepared = Prepared::build(config, self.bound.https.is_some())?;
        self.install(prepared);
        Ok(())
    }

    /// Swap in a config built by [`Prepared::build`]; returns the state it replaced, for
    /// the caller to drop where freeing it does not hold up requests.
    pub fn install(&self, prepared: Prepared) -> Arc<crate::state::State> {
        let Prepared { state, acceptor } = prepared;
        {
            let config = &state.config;
            let current = self.shared.state.load();
            let old = &current.config.file;
            if !same_listeners(&old.listen, &config.file.listen) {
                tracing::warn!("listen addresses changed: they take effect on restart");
            }
            if old.limits.max_connections != config.file.limits.max_connections {
                tracing::warn!("limits.max_connections changed: it takes effect on restart");
            }
            // The queue, secret store and session store are built once at start.
            let stores_changed = current.config.redis != config.redis
                || current.config.secrets_key != config.secrets_key
                || old.secrets.backend != config.file.secrets.backend
                || old.secrets.file != config.file.secrets.file;
            if stores_changed {
                tracing::warn!("redis or secrets settings changed: they take effect on restart");
            }
        }
        let previous = self.shared.install(state);
        if let Some(acceptor) = acceptor {
            self.tls.store(Some(acceptor));
        }
        previous
    }
}

/// A validated config with its request state (route table, token keys) and its TLS
/// acceptor built: the expensive part of a reload, done before anything is swapped and
/// safe to do on a blocking thread.
pub struct Prepared {
    state: crate::state::State,
    acceptor: Option<Arc<TlsAcceptor>>,
}

impl Prepared {
    /// `https`: whether the server has an HTTPS listener (the acceptor is built only then).
    pub fn build(config: Config, https: bool) -> Result<Prepared, TlsError> {
        let acceptor = match (https, &config.file.tls) {
            (true, Some(_)) => Some(Arc::new(TlsAcceptor::from_config(&config)?)),
            _ => None,
        };
        Ok(Prepared {
            state: crate::state::State::build(config),
            acceptor,
        })
    }
}

fn same_listeners(a: &Listen, b: &Listen) -> bool {
    a.http == b.http && a.https == b.https && a.admin == b.admin
}

/// Bind every configured listener and start serving.
pub async fn start(config: Config) -> Result<Running, ServerError> {
    let tls: SharedAcceptor = Arc::new(ArcSwapOption::empty());
    if config.file.tls.is_some() && config.file.listen.https.is_some() {
        tls.store(Some(Arc::new(TlsAcceptor::from_config(&config)?)));
    }
    let listen = config.file.listen.clone();
    let shared = Shared::new(config)?;
    if let Some(kv) = shared.kv.clone() {
        // Serve regardless: Redis-backed requests get 503 with Retry-After (and /readyz
        // says not ready) until it answers, rather than refused connections.
        tokio::spawn(async move {
            if let Err(e) = kv.ping().await {
                tracing::warn!(
                    redis.topology = kv.kind(),
                    error = %e,
                    "redis is unreachable at start; serving anyway: queues, sessions and redis secrets answer 503 until it is back"
                );
            }
        });
    }
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut bound = Bound::default();
    let bind = |key: &'static str, addr: SocketAddr| async move {
        let failed = |error| ServerError::Bind { key, addr, error };
        let l = TcpListener::bind(addr).await.map_err(failed)?;
        let local = l.local_addr().map_err(failed)?;
        Ok::<_, ServerError>((l, local))
    };
    // Bind everything before any listener serves or says "listening": a port that is
    // taken stops the start with nothing announced (and the plain listener's redirect
    // needs the HTTPS port).
    let http = match listen.http {
        Some(addr) => Some(bind("listen.http", addr).await?),
        None => None,
    };
    let https = match listen.https {
        Some(addr) if tls.load().is_some() => Some(bind("listen.https", addr).await?),
        _ => None,
    };
    let admin = match listen.admin {
        Some(addr) => Some(bind("listen.admin", addr).await?),
        None => None,
    };
    bound.https = https.as_ref().map(|(_, a)| *a);
    if let Some((l, a)) = http {
        bound.http = Some(a);
        tracing::info!(listener = "http", addr = %a, "listening");
        let listener = Listener {
            shared: Arc::clone(&shared),
            tls: None,
            https_port: bound.https.map(|a| a.port()),
        };
        tasks.spawn(accept_loop(l, listener, stop_rx.clone()));
    }
    if let Some((l, a)) = https {
        tracing::info!(listener = "https", addr = %a, "listening");
        let listener = Listener {
            shared: Arc::clone(&shared),
            tls: Some(Arc::clone(&tls)),
            https_port: None,
        };
        tasks.spawn(accept_loop(l, listener, stop_rx.clone()));
    }
    if let Some((l, a)) = admin {
        bound.admin = Some(a);
        tracing::info!(listener = "admin", addr = %a, "listening");
        tasks.spawn(crate::admin::serve(l, Arc::clone(&shared), stop_rx.clone()));
    }
    Ok(Running {
        bound,
        shared,
        tls,
        stop,
        tasks,
    })
}

/// What one accept loop serves.
#[derive(Clone)]
struct Listener {
    shared: Arc<Shared>,
    /// `Some` for the HTTPS listener.
    tls: Option<SharedAcceptor>,
    /// For the plain listener: the HTTPS port redirects point to.
    https_port: Option<u16>,
}

/// A connection's place under `limits.max_connections` and its count in the open
/// connections gauge, shared by the connection and the tunnels opened on it: given back
/// when the last of them ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Slot {
    fn take(permit: OwnedSemaphorePermit, open: &Gauge) -> Slot {
        open.inc();
        Slot {
            _permit: permit,
            open: open.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

async fn accept_loop(listener: TcpListener, this: Listener, mut stop: watch::Receiver<bool>) {
    let max = this.shared.state.load().config.limits().max_connections;
    // Every slot, for the drain to take back.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    // Over the limit, new connections wait in the kernel's backlog until a slot frees.
    let slots = Arc::new(Semaphore::new(all as usize));
    let mut conns = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => { backoff = Duration::from_millis(5); break Some(x) }
                    Err(e) => {
                        // EMFILE and friends: wait, then try again; never spin or crash.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                _ = stop.changed() => break None,
            }
        }
        .map_or((None, None), |(s, p)| (Some(s), Some(p)));
        let (Some(stream), Some(peer)) = (stream, peer) else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let this = this.clone();
        let stop = stop.clone();
        let limits = this.shared.state.load().config.limits().clone();
        let tunnels = TunnelScope {
            hold: Arc::new(Slot::take(permit, &this.shared.metrics.connections)),
            idle: limits.idle_timeout.0,
            stop: stop.clone(),
            grace: limits.shutdown_grace.0,
        };
        conns.spawn(async move {
            connection::serve_connection(stream, peer, &this, stop, tunnels, limits).await;
        });
    }
    drop(listener);
    // Drain: connections were asked to finish (stop); give them the grace period. Every
    // slot coming back means the tunnels opened on them have ended too.
    let grace = this.shared.state.load().config.limits().shutdown_grace.0;
    let drained = tokio::time::timeout(grace, async {
        while conns.join_next().await.is_some() {}
        drop(slots.acquire_many(all).await);
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = conns.len(),
            "shutdown grace period over; closing remaining connections"
        );
        conns.shutdown().await;
        // Tunnels close themselves once the grace period after the stop is over.
        let closed = tokio::time::timeout(grace, slots.acquire_many(all)).await;
        if closed.is_err() {
            tracing::warn!("tunnels still open after the shutdown grace period");
        }
    }
}
