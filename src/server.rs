//! Listeners and connections.
//!
//! Owns sockets: the accept loops (a semaphore bounds connections; accept errors back
//! off), the per-connection task (TLS handshake under a timeout, HTTP/1.1 and HTTP/2 with
//! the configured limits, upgrades), and graceful shutdown (stop accepting, let in-flight
//! requests finish until a deadline). It hands every request to [`crate::proxy::handle`]
//! and makes no routing or security decision itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::{Config, Limits};
use crate::proxy::{self, ConnInfo};
use crate::state::Shared;
use crate::tls::TlsAcceptor;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
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

/// A running roomgate: its addresses, its shared state, and the means to stop it.
pub struct Running {
    pub bound: Bound,
    pub shared: Arc<Shared>,
    pub tls: Option<Arc<TlsAcceptor>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stop accepting, let in-flight requests finish up to the grace period, then return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// A handle that can ask for shutdown from elsewhere.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Bind every configured listener and start serving.
pub async fn start(config: Config) -> Result<Running, ServerError> {
    let tls = match &config.file.tls {
        Some(_) if config.file.listen.https.is_some() => {
            Some(Arc::new(TlsAcceptor::from_config(&config)?))
        }
        _ => None,
    };
    let listen = config.file.listen.clone();
    let shared = Shared::new(config)?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut bound = Bound::default();
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })
    };
    if let Some(addr) = listen.http {
        let l = bind(addr).await?;
        let a = l
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        bound.http = Some(a);
        tracing::info!(listener = "http", addr = %a, "listening");
        tasks.spawn(accept_loop(l, Arc::clone(&shared), None, stop_rx.clone()));
    }
    if let (Some(addr), Some(tls)) = (listen.https, &tls) {
        let l = bind(addr).await?;
        let a = l
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        bound.https = Some(a);
        tracing::info!(listener = "https", addr = %a, "listening");
        tasks.spawn(accept_loop(
            l,
            Arc::clone(&shared),
            Some(Arc::clone(tls)),
            stop_rx.clone(),
        ));
    }
    if let Some(addr) = listen.admin {
        let l = bind(addr).await?;
        let a = l
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
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

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.0)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    b
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<TlsAcceptor>>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = shared.state.load().config.limits().clone();
    let max = limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => { backoff = Duration::from_millis(5); x }
                Err(e) => {
                    // EMFILE and friends: wait, then try again; never spin or crash.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        let stop = stop.clone();
        let limits = shared.state.load().config.limits().clone();
        tokio::spawn(async move {
            shared.metrics.connections.inc();
            serve_connection(stream, peer, shared.clone(), tls, stop, limits).await;
            shared.metrics.connections.dec();
            drop(permit);
        });
    }
    // Drain: wait for every connection to give back its slot, up to the grace period.
    let grace = shared.state.load().config.limits().shutdown_grace.0;
    let drained = tokio::time::timeout(grace, slots.acquire_many(max as u32)).await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

/// Run a connection until it ends; on shutdown, ask it to finish in-flight work and close.
macro_rules! drive {
    ($conn:expr, $stop:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        let stopped = tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                false
            }
            _ = $stop.changed() => true,
        };
        if stopped {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }};
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<TlsAcceptor>>,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) {
    let builder = http_builder(&limits);
    let served = Arc::new(AtomicU64::new(0));
    let max_requests = limits.max_requests_per_connection;
    let make_service = |info: ConnInfo| {
        let shared = Arc::clone(&shared);
        let served = Arc::clone(&served);
        service_fn(move |req: Request<Incoming>| {
            let shared = Arc::clone(&shared);
            let info = info.clone();
            let n = served.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                let mut resp = proxy::handle(shared, info, req).await;
                if n >= max_requests {
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(resp)
            }
        })
    };
    match tls {
        None => {
            let info = ConnInfo {
                peer,
                tls: false,
                sni: None,
                tls_acceptor: None,
            };
            let conn =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), make_service(info));
            drive!(conn, stop);
        }
        Some(tls) => {
            let accepted =
                tokio::time::timeout(limits.tls_handshake_timeout.0, tls.accept(stream)).await;
            let (io, sni) = match accepted {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    tracing::debug!(client.ip = %peer.ip(), error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client.ip = %peer.ip(), "TLS handshake timed out");
                    return;
                }
            };
            let info = ConnInfo {
                peer,
                tls: true,
                sni,
                tls_acceptor: Some(Arc::clone(&tls)),
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), make_service(info));
            drive!(conn, stop);
        }
    }
}
