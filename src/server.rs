//! Listeners and connections.
//!
//! Owns sockets: the accept loops (a semaphore bounds connections; accept errors back
//! off), the per-connection task (TLS handshake under a timeout, HTTP/1.1 and HTTP/2 with
//! the configured limits, idle and head deadlines, upgrades), the plain listener's
//! redirect to HTTPS, and graceful shutdown (stop accepting, let in-flight requests finish
//! until a deadline, then close what remains). Every connection starts in [`direct`],
//! roomgate's own HTTP/1.1 serving of requests whose body (if any) came with the head,
//! and goes to hyper at the first head that is anything else. It hands every request to
//! [`crate::proxy::handle`] and makes no routing or security decision itself; the one
//! refusal it renders is a connection whose HTTP/1 framing was ambiguous (see
//! [`framing`]), because only the connection layer sees the raw bytes.
//!
//! WebSockets come as HTTP/1.1 upgrades or, from h2 clients, as RFC 8441 extended CONNECT
//! (SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised; [`crate::websocket`] bridges them to
//! the service's HTTP/1.1 upgrade). An HTTP/1 upgrade request that is not answered 101
//! closes its connection: the framing watch stops at an upgrade head. A connection's slot
//! under `max_connections` (and its count in the open-connections gauge) is shared with
//! the tunnels opened on it ([`crate::forward::TunnelScope`]) and given back when the last
//! of them ends; shutdown waits for those tunnels too.
//!
//! Deadlines are kept by one watcher per connection, from atomics the request path
//! updates (no timer per request): `header_read_timeout` from the first byte of a request
//! head (the framing watch notes when a read leaves a head incomplete) or, before the
//! first request, from the accept; `idle_timeout` from the end of the last response.

mod bare_errors;
mod direct;
mod framing;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures_util::future::Either;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::{Config, Limits, Listen};
use crate::error::{Body, BodyError, ProxyError};
use crate::forward::TunnelScope;
use crate::proxy::{self, ConnInfo};
use crate::route::{canonical_host, canonical_path};
use crate::state::Shared;
use crate::tls::{TlsAcceptor, TlsError};

use bare_errors::JsonErrors;
pub use framing::{FramingGuard, HeadClock, Refusal};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Start(#[from] crate::state::StartError),
    #[error(
        "redis.url is a Redis Cluster node, which roomgate does not support: point it at a \
         single Redis primary"
    )]
    RedisCluster,
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
        let acceptor = match (&self.bound.https, &config.file.tls) {
            (Some(_), Some(_)) => Some(Arc::new(TlsAcceptor::from_config(&config)?)),
            _ => None,
        };
        {
            let current = self.shared.state.load();
            let old = &current.config.file;
            if !same_listeners(&old.listen, &config.file.listen) {
                tracing::warn!("listen addresses changed: they take effect on restart");
            }
            if old.limits.max_connections != config.file.limits.max_connections {
                tracing::warn!("limits.max_connections changed: it takes effect on restart");
            }
            // The queue, secret store and session store are built once at start.
            let stores_changed = current.config.redis_url != config.redis_url
                || current.config.secrets_key != config.secrets_key
                || old.secrets.backend != config.file.secrets.backend
                || old.secrets.file != config.file.secrets.file;
            if stores_changed {
                tracing::warn!("redis or secrets settings changed: they take effect on restart");
            }
        }
        self.shared.replace(config);
        if let Some(acceptor) = acceptor {
            self.tls.store(Some(acceptor));
        }
        Ok(())
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
    // Keys on other nodes would answer MOVED: some queues would work and others never.
    if shared.queue.on_cluster().await == Some(true) {
        return Err(ServerError::RedisCluster);
    }
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut bound = Bound::default();
    let bind = |addr: SocketAddr| async move {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = l
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok::<_, ServerError>((l, local))
    };
    // Bind everything first: the plain listener's redirect needs the HTTPS port.
    let http = match listen.http {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let https = match listen.https {
        Some(addr) if tls.load().is_some() => Some(bind(addr).await?),
        _ => None,
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
    if let Some(addr) = listen.admin {
        let (l, a) = bind(addr).await?;
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
        // The connection's watcher keeps the head deadline (see `wait_until_done`):
        // hyper's own would arm and cancel a timer for every request.
        .header_read_timeout(None)
        // A head that does not fit the read buffer is answered 431.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(50))
        // RFC 8441: WebSockets over h2.
        .enable_connect_protocol()
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    b
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
        let slot = Arc::new(Slot::take(permit, &this.shared.metrics.connections));
        conns.spawn(async move {
            serve_connection(stream, peer, &this, stop, slot).await;
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

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    this: &Listener,
    stop: watch::Receiver<bool>,
    slot: Arc<Slot>,
) {
    let limits = this.shared.state.load().config.limits().clone();
    let tunnels = TunnelScope {
        hold: slot,
        idle: limits.idle_timeout.0,
        stop: stop.clone(),
        grace: limits.shutdown_grace.0,
    };
    let Some(tls) = &this.tls else {
        let info = ConnInfo {
            peer,
            peer_value: crate::headers::peer_value(peer.ip()),
            tls: false,
            sni: None,
            tls_acceptor: None,
        };
        serve_http(stream, info, this, stop, tunnels, &limits).await;
        return;
    };
    // Boxed: the handshake and a TLS stream's state (several KiB) would otherwise size
    // every connection's future, plain ones included.
    Box::pin(serve_tls(stream, peer, this, stop, tunnels, &limits, tls)).await;
}

/// The TLS handshake, then HTTP over the TLS stream.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    this: &Listener,
    stop: watch::Receiver<bool>,
    tunnels: TunnelScope,
    limits: &Limits,
    tls: &SharedAcceptor,
) {
    let Some(acceptor) = tls.load_full() else {
        return;
    };
    let accepted = tokio::time::timeout(limits.tls_handshake_timeout.0, acceptor.accept(stream));
    let (io, sni) = match accepted.await {
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
        peer_value: crate::headers::peer_value(peer.ip()),
        tls: true,
        sni,
        tls_acceptor: Some(acceptor),
    };
    serve_http(io, info, this, stop, tunnels, limits).await;
}

/// Serve HTTP/1.1 or HTTP/2 on one connection until it ends, is idle too long, has served
/// its request budget, or shutdown asks it to finish. Requests that may switch protocols
/// carry `tunnels`, so that a tunnel keeps the connection's slot.
async fn serve_http<I>(
    io: I,
    info: ConnInfo,
    this: &Listener,
    stop: watch::Receiver<bool>,
    tunnels: TunnelScope,
    limits: &Limits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(limits.max_requests_per_connection));
    let info = Arc::new(info);
    // The watcher is a task of its own: polled beside the connection, its timer and the
    // shutdown signal would be polled (a lock each) on every wake-up of every request.
    let (closing_tx, mut closing) = oneshot::channel();
    tokio::spawn(watch_connection(
        Arc::clone(&activity),
        stop,
        (limits.header_read_timeout.0, limits.idle_timeout.0),
        closing_tx,
    ));
    let front = direct::Front {
        shared: &this.shared,
        info: &info,
        https_port: this.https_port,
        activity: &activity,
        limits,
    };
    let (read, io) = match direct::serve(io, front, &mut closing).await {
        direct::Ended::Done => return,
        direct::Ended::Elsewhere { read, io } => (read, io),
    };
    // Boxed: hyper's connection state is several KiB, which every connection served
    // directly would otherwise carry inline, idle or not.
    let rest = Hyper {
        read,
        info,
        activity,
        closing,
        tunnels,
    };
    Box::pin(serve_with_hyper(io, rest, this, limits)).await;
}

/// What a connection handed to hyper carries over from direct serving.
struct Hyper {
    /// The bytes already read, to be read first.
    read: Bytes,
    info: Arc<ConnInfo>,
    activity: Arc<Activity>,
    closing: oneshot::Receiver<&'static str>,
    tunnels: TunnelScope,
}

/// Serve the rest of a connection with hyper, from the head direct serving left to it.
async fn serve_with_hyper<I>(io: I, rest: Hyper, this: &Listener, limits: &Limits)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Hyper {
        read,
        info,
        activity,
        mut closing,
        tunnels,
    } = rest;
    let refusal = Arc::new(OnceLock::new());
    let io = FramingGuard::new(
        read,
        io,
        Arc::clone(&refusal),
        limits.max_header_bytes,
        Arc::clone(&activity.head),
    );
    let activity_head = Arc::clone(&activity.head);
    let max_requests = limits.max_requests_per_connection;
    let shared = Arc::clone(&this.shared);
    let https_port = this.https_port;
    let service = service_fn(move |mut req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        let info = Arc::clone(&info);
        let refused = refusal.get().copied();
        let may_switch =
            req.method() == http::Method::CONNECT || req.headers().contains_key(header::UPGRADE);
        // The framing watch stopped at this head; unless it switches protocols, the
        // connection ends with its answer.
        let h1_upgrade = req.version() < http::Version::HTTP_2 && may_switch;
        if may_switch {
            req.extensions_mut().insert(tunnels.clone());
        }
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        let served = activity.served.fetch_add(1, Ordering::AcqRel) + 1;
        let guard = InFlight(Arc::clone(&activity));
        // Boxed: hyper keeps the service future inline in the connection (several KiB,
        // held by every idle keep-alive connection) and moves it once per request; a box
        // is allocated only while a request is in flight, and moved as a pointer.
        Box::pin(async move {
            let mut resp = if let Some(why) = refused {
                refuse(why, &req, &info)
            } else {
                let req = req.map(|b| b.map_err(BodyError::new).boxed());
                answer(shared, info, https_port, req).await
            };
            let failed_upgrade = h1_upgrade && resp.status() != StatusCode::SWITCHING_PROTOCOLS;
            if refused.is_some() || served >= max_requests || failed_upgrade {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(resp.map(|body| Tracked {
                body,
                _guard: guard,
            }))
        })
    });
    let builder = http_builder(limits);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(JsonErrors::new(io)), service);
    tokio::pin!(conn);
    let why = tokio::select! {
        biased;
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        why = &mut closing => why.unwrap_or("shutdown"),
    };
    tracing::debug!(reason = why, "closing connection");
    if activity_head.started().is_some() {
        // A head is half read and no response is owed for it: hyper would wait for the
        // rest of it before honouring a graceful shutdown, so the connection is dropped.
        return;
    }
    // HTTP/1: finish the response in progress, then close; idle: close now.
    // HTTP/2: GOAWAY, finish open streams, close.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The answer to one request: the plain listener's redirect to HTTPS when that is
/// configured, the request pipeline's otherwise.
// Not an `async fn`: it would hold its arguments (the request among them) beside the
// pipeline's future, in every connection's state.
fn answer(
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
    https_port: Option<u16>,
    req: Request<Body>,
) -> impl Future<Output = Response<Body>> + Send {
    if info.tls_acceptor.is_none() && redirects(&shared) {
        Either::Left(std::future::ready(redirect_to_https(&req, https_port)))
    } else {
        Either::Right(proxy::handle(shared, info, req))
    }
}

fn redirects(shared: &Shared) -> bool {
    shared
        .state
        .load()
        .config
        .file
        .listen
        .redirect_http_to_https
}

/// What a connection is doing, for its deadlines. Plain atomics: a request costs two
/// atomic updates, not a wake-up of the watcher or a new timer.
#[derive(Debug)]
struct Activity {
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    served: AtomicU64,
    /// When the connection last had nothing in flight, in ms since `epoch`.
    idle_since_ms: AtomicU64,
    epoch: tokio::time::Instant,
    max_requests: u64,
    /// Signalled when the request budget is spent and the last response is done.
    retired: tokio::sync::Notify,
    /// When the HTTP/1 request head being read began, if one is incomplete.
    head: Arc<HeadClock>,
}

impl Activity {
    fn new(max_requests: u64) -> Activity {
        let epoch = tokio::time::Instant::now();
        Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch,
            max_requests,
            retired: tokio::sync::Notify::new(),
            head: Arc::new(HeadClock::new(epoch)),
        }
    }

    fn retiring(&self) -> bool {
        self.served.load(Ordering::Acquire) >= self.max_requests
    }
}

/// Marks one request in flight until its response body is dropped (fully sent, or the
/// client went away).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = a.epoch.elapsed().as_millis() as u64;
            a.idle_since_ms.store(ms, Ordering::Release);
            if a.retiring() {
                a.retired.notify_one();
            }
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Resolve when the connection should be closed: no request started within the head
/// deadline (this also covers a client stalling before hyper knows HTTP/1 from HTTP/2),
/// an HTTP/1 head still incomplete `head` after both its first byte and the end of the
/// last response (slowloris; hyper reads no head while a response is in flight), nothing
/// in flight for `idle`, or the request budget spent and nothing in flight. hyper has no
/// idle timer of its own for keep-alive connections, and its head timer is off. The timer
/// here is re-armed only when it fires (at least every min(head, idle)), from the atomics
/// above, so requests never touch it; a head that begins after a look is found before its
/// deadline and waited for exactly.
/// Until the connection ends (its end of `closing` is dropped), wait for shutdown or for
/// one of its deadlines, and send why it should close.
async fn watch_connection(
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
    (head, idle): (Duration, Duration),
    mut closing: oneshot::Sender<&'static str>,
) {
    let why = tokio::select! {
        _ = closing.closed() => return,
        _ = stop.changed() => "shutdown",
        why = wait_until_done(activity, head, idle) => why,
    };
    // The connection may have ended meanwhile; then nobody needs the reason.
    let _ = closing.send(why);
}

async fn wait_until_done(activity: Arc<Activity>, head: Duration, idle: Duration) -> &'static str {
    loop {
        let busy = activity.in_flight.load(Ordering::Acquire) > 0;
        if !busy && activity.retiring() {
            return "request limit";
        }
        let now = tokio::time::Instant::now();
        let idle_from =
            activity.epoch + Duration::from_millis(activity.idle_since_ms.load(Ordering::Acquire));
        let (deadline, why) = if busy {
            (now + idle, "idle")
        } else if activity.served.load(Ordering::Acquire) == 0 {
            (activity.epoch + head, "no request head in time")
        } else {
            match activity.head.started() {
                Some(began) => (
                    (began.max(idle_from) + head).min(idle_from + idle),
                    "request head not complete in time",
                ),
                None => (idle_from + idle, "idle"),
            }
        };
        if !busy && now >= deadline {
            return why;
        }
        let wake = deadline.min(now + head.min(idle));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = activity.retired.notified() => {}
        }
    }
}

/// 400 for a request on a connection whose raw bytes showed ambiguous framing or a
/// fragment; the connection is closed after it and nothing is forwarded.
fn refuse(why: Refusal, req: &Request<Incoming>, info: &ConnInfo) -> Response<Body> {
    let e = match why {
        Refusal::AmbiguousFraming => ProxyError::InvalidHeader("ambiguous message framing"),
        Refusal::Fragment => ProxyError::InvalidPath(crate::route::PathError::Ambiguous),
    };
    let (status, code, _) = e.status_code();
    tracing::event!(
        target: "roomgate::access",
        tracing::Level::INFO,
        http.method = %req.method(),
        http.status = status.as_u16(),
        client.ip = %info.peer.ip(),
        error.code = code,
        error.detail = %e,
        "request"
    );
    e.to_response()
}

/// The plain listener's answer when `listen.redirect_http_to_https` is set: 308 to the
/// same host (on the HTTPS port), path and query.
fn redirect_to_https<B>(req: &Request<B>, https_port: Option<u16>) -> Response<Body> {
    let raw_host = crate::route::request_authority(req.uri(), req.headers()).unwrap_or("");
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = https_location(raw_host, path_and_query, https_port);
    let status = if target.is_some() {
        StatusCode::PERMANENT_REDIRECT
    } else {
        StatusCode::BAD_REQUEST
    };
    tracing::event!(
        target: "roomgate::access",
        tracing::Level::INFO,
        http.method = %req.method(),
        http.host = %canonical_host(raw_host).unwrap_or_default(),
        http.path = %canonical_path(req.uri().path()).unwrap_or_default(),
        http.status = status.as_u16(),
        auth.result = "redirect",
        "request"
    );
    let Some(location) = target.and_then(|t| HeaderValue::from_str(&t).ok()) else {
        return ProxyError::InvalidHeader("missing or malformed Host").to_response();
    };
    let mut resp = Response::new(crate::error::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// `https://host[:port]/path?query` for a plain-HTTP request, or `None` when the Host is
/// not a plausible host name. The port is omitted when it is 443.
pub fn https_location(
    raw_host: &str,
    path_and_query: &str,
    https_port: Option<u16>,
) -> Option<String> {
    let host = canonical_host(raw_host)?;
    let port = match https_port {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let pq = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    Some(format!("https://{host}{port}{pq}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_location_keeps_path_and_query_and_names_the_https_port() {
        assert_eq!(
            https_location("App.Test:8080", "/a/b?x=1", Some(8443)).as_deref(),
            Some("https://app.test:8443/a/b?x=1")
        );
        assert_eq!(
            https_location("app.test", "/", Some(443)).as_deref(),
            Some("https://app.test/")
        );
    }

    #[test]
    fn https_location_refuses_a_malformed_host() {
        assert_eq!(https_location("evil.test/x", "/", Some(443)), None);
        assert_eq!(https_location("", "/", Some(443)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_closed_after_the_head_deadline() {
        let a = Arc::new(Activity::new(100));
        let started = tokio::time::Instant::now();
        let why = wait_until_done(a, Duration::from_secs(1), Duration::from_secs(60)).await;
        assert_eq!(why, "no request head in time");
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_incomplete_head_is_cut_off_a_head_deadline_after_its_first_byte() {
        let a = Arc::new(Activity::new(100));
        a.served.fetch_add(1, Ordering::AcqRel);
        let wait = wait_until_done(
            Arc::clone(&a),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        tokio::pin!(wait);
        // Idle between requests: held to idle_timeout, not to the head deadline.
        tokio::select! {
            _ = &mut wait => panic!("closed an idle connection at the head deadline"),
            _ = tokio::time::sleep(Duration::from_millis(10_500)) => {}
        }
        let began = tokio::time::Instant::now();
        a.head.set(true);
        assert_eq!(wait.await, "request head not complete in time");
        let waited = began.elapsed();
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(waited <= Duration::from_millis(1_100), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_in_flight_request_is_never_idle() {
        let a = Arc::new(Activity::new(100));
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.served.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(Arc::clone(&a));
        let wait = wait_until_done(
            Arc::clone(&a),
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        tokio::pin!(wait);
        tokio::select! {
            _ = &mut wait => panic!("closed while a request is in flight"),
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        let idle_from = tokio::time::Instant::now();
        drop(guard);
        assert_eq!(wait.await, "idle");
        let waited = idle_from.elapsed();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert!(
            waited <= Duration::from_secs(6),
            "closed about idle_timeout after the last response: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_request_budget_closes_as_soon_as_the_last_response_is_done() {
        let a = Arc::new(Activity::new(1));
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.served.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(Arc::clone(&a));
        let wait = wait_until_done(
            Arc::clone(&a),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        tokio::pin!(wait);
        tokio::select! {
            _ = &mut wait => panic!("closed while a request is in flight"),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let done_at = tokio::time::Instant::now();
        drop(guard);
        assert_eq!(wait.await, "request limit");
        assert_eq!(done_at.elapsed(), Duration::ZERO, "no timer to wait for");
    }
}
