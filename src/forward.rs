//! Forwarding to services, and waiting for them through a cold start.
//!
//! Owns the pooled upstream clients, response timeouts, WebSocket tunnels and the
//! liveness poller. It receives requests that the pipeline has already authorized and
//! cleaned; it must not make security decisions or look at credentials.
//!
//! A tunnel outlives the request that opened it (and, for HTTP/1.1, the connection's
//! HTTP task), so it carries the connection's [`TunnelScope`]: it holds the connection's
//! slot under `limits.max_connections` until it ends, closes after `idle_timeout` without
//! a byte either way, and closes once shutdown's grace period is over.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::Either;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::config::PortSpec;
use crate::error::{empty, full, Body, ProxyError};
use crate::moment::AtomicMoment;
use crate::pool::{self, Http1Pool, PoolError};
use crate::telemetry::{LivenessLabels, Metrics};
use crate::websocket::{self, Switch, Verdict};

/// Timeouts the forwarder applies.
#[derive(Clone, Copy, Debug)]
pub struct ForwardLimits {
    pub upstream_timeout: Duration,
    pub liveness_interval: Duration,
    pub liveness_wait: Duration,
    pub max_body_bytes: u64,
}

/// What a tunnel owes the client connection it was opened on. The listener puts one in
/// the extensions of every request that may switch protocols; the forwarder takes it out
/// (it never travels upstream) and gives it to the tunnel.
#[derive(Clone)]
pub struct TunnelScope {
    /// Kept until the tunnel ends: the connection's slot under `limits.max_connections`.
    pub hold: Arc<dyn Send + Sync>,
    /// `limits.idle_timeout`: the tunnel closes after this long without a byte either way.
    pub idle: Duration,
    /// Set when shutdown begins.
    pub stop: watch::Receiver<bool>,
    /// `limits.shutdown_grace`: how long after the stop a tunnel may stay open.
    pub grace: Duration,
}

/// What the admin listener says of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// The last contact succeeded (or none failed yet).
    Ready,
    /// A cold-start wait is in progress, or the last one timed out.
    NotReady,
    /// The port declares no liveness path.
    NotConfigured,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Ready => "ready",
            PortState::NotReady => "not_ready",
            PortState::NotConfigured => "not_configured",
        }
    }
}

/// The upstream side of roomgate: one pooled client per protocol, and the liveness hub.
pub struct Upstreams {
    /// Plain HTTP/1.1 forwarding.
    pool: Http1Pool,
    /// Upgrades (WebSocket tunnels).
    http1: Client<HttpConnector, Body>,
    h2c: Client<HttpConnector, Body>,
    probe: Client<HttpConnector, Body>,
    /// One in-flight liveness poll per upstream authority; waiters share it.
    waits: Arc<Mutex<HashMap<String, watch::Receiver<Option<bool>>>>>,
    /// Authorities currently waiting or whose last wait failed.
    not_ready: Arc<RwLock<HashSet<String>>>,
}

fn connector(connect_timeout: Duration) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    c.enforce_http(true);
    c
}

/// Why one upstream exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendError {
    /// Nothing accepted the connection: the service is not listening (yet).
    Connect,
    Timeout,
    Other,
    /// The client's request body broke (cut short, bad chunk) while it was being sent:
    /// the client's fault, not the service's.
    ClientBody,
}

impl SendError {
    /// The `upstream_errors` kind, or `None` for a failure that is not the service's.
    fn kind(self) -> Option<&'static str> {
        match self {
            SendError::Connect => Some("connect"),
            SendError::Timeout => Some("timeout"),
            SendError::Other => Some("protocol"),
            SendError::ClientBody => None,
        }
    }

    fn into_proxy_error(self) -> ProxyError {
        match self {
            SendError::Connect | SendError::Other => ProxyError::BadGateway,
            SendError::Timeout => ProxyError::UpstreamTimeout,
            SendError::ClientBody => ProxyError::BadRequestBody,
        }
    }

    /// Classify a hyper-util client failure.
    fn of(e: &hyper_util::client::legacy::Error) -> SendError {
        if e.is_connect() {
            SendError::Connect
        } else if pool::caused_by_request_body(e) {
            SendError::ClientBody
        } else {
            tracing::debug!(error = %e, "upstream exchange failed");
            SendError::Other
        }
    }
}

/// A request head kept to be sent again, with its buffered body.
struct Replayable {
    method: http::Method,
    uri: Uri,
    version: http::Version,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Replayable {
    fn request(&self) -> Request<Body> {
        let mut req = Request::new(full(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

fn lock_poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    e.into_inner()
}

impl Upstreams {
    pub fn new(connect_timeout: Duration) -> Upstreams {
        let mut b = Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new());
        let http1 = b.build(connector(connect_timeout));
        let h2c = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector(connect_timeout));
        let probe = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector(connect_timeout));
        Upstreams {
            pool: Http1Pool::new(connect_timeout, 1024),
            http1,
            h2c,
            probe,
            waits: Arc::default(),
            not_ready: Arc::default(),
        }
    }

    /// The state of a port, for the admin listener.
    pub fn port_state(&self, port: &PortSpec) -> PortState {
        if port.liveness.is_none() {
            return PortState::NotConfigured;
        }
        let not_ready = self
            .not_ready
            .read()
            .unwrap_or_else(lock_poisoned)
            .contains(port.authority());
        if not_ready {
            PortState::NotReady
        } else {
            PortState::Ready
        }
    }

    /// Forward an authorized, cleaned request to `port`, waiting through a cold start
    /// when the port declares `liveness`.
    ///
    /// Not an `async fn`: the preparation runs now, and the future returned is the
    /// exchange's own (rare paths boxed), so the request is not kept once more in a
    /// layer of state around it; every request's future is copied into its box whole.
    pub fn forward<'a>(
        &'a self,
        port: &'a PortSpec,
        mut req: Request<Body>,
        limits: ForwardLimits,
        metrics: &'a Metrics,
        route: &'a Arc<String>,
    ) -> impl Future<Output = Result<Response<Body>, ProxyError>> + Send + 'a {
        *req.version_mut() = if port.h2c {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        if port.h2c && is_grpc(&req) {
            // gRPC requires `te: trailers` end to end (it detects proxies that drop
            // trailers); the hop-by-hop strip removed the client's copy.
            req.headers_mut()
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
        let fail = move |e: SendError| count_failure(metrics, route, e);

        // Taken out of every request: it must not ride along to an upstream connection.
        let scope = req.extensions_mut().remove::<TunnelScope>();
        // The tunnel and the cold-start wait are boxed: rare, and their state would
        // otherwise size (and be copied with) the future of every request.
        let rare: Pin<Box<dyn Future<Output = _> + Send + 'a>> = if is_upgrade(&req) {
            Box::pin(async move { self.tunnel(port, req, limits, scope).await.map_err(fail) })
        } else if let Some(liveness) = &port.liveness {
            Box::pin(self.through_cold_start(port, liveness, req, limits, metrics, route))
        } else {
            return Either::Left(self.send(port, req, limits).map(move |r| r.map_err(fail)));
        };
        Either::Right(rare)
    }

    /// Forward to a port that declares `liveness`: a refused connection waits for the
    /// service to come up, then sends the request again when its body could be kept.
    async fn through_cold_start(
        &self,
        port: &PortSpec,
        liveness: &str,
        req: Request<Body>,
        limits: ForwardLimits,
        metrics: &Metrics,
        route: &Arc<String>,
    ) -> Result<Response<Body>, ProxyError> {
        let fail = |e: SendError| count_failure(metrics, route, e);
        let replayable = replayable_size(&req, limits.max_body_bytes);
        if !replayable {
            // Too large (or unbounded) to keep a copy: a refused connection starts the
            // poller for the next request, and this one is told to retry.
            return match self.send(port, req, limits).await {
                Err(SendError::Connect) => {
                    drop(self.watch_ready(port, liveness, limits));
                    fail(SendError::Connect);
                    Err(ProxyError::UpstreamNotReady)
                }
                other => other.map_err(fail),
            };
        }
        let (parts, body) = req.into_parts();
        let body = Limited::new(body, limits.max_body_bytes as usize)
            .collect()
            .await
            .map_err(|_| ProxyError::BadRequestBody)?
            .to_bytes();
        let copy = Replayable {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            body,
        };
        match self.send(port, copy.request(), limits).await {
            Err(SendError::Connect) => {
                fail(SendError::Connect);
                let started = Instant::now();
                let mut rx = self.watch_ready(port, liveness, limits);
                let ready = rx
                    .wait_for(Option::is_some)
                    .await
                    .map(|v| *v == Some(true))
                    .unwrap_or(false);
                metrics
                    .liveness_waits
                    .get_or_create(&LivenessLabels {
                        upstream: port.authority().to_owned(),
                        result: if ready { "ready" } else { "timeout" },
                    })
                    .inc();
                tracing::info!(
                    upstream.authority = %port.authority(),
                    liveness.ready = ready,
                    liveness.waited_ms = started.elapsed().as_millis() as u64,
                    "cold start wait finished"
                );
                if !ready {
                    return Err(ProxyError::UpstreamNotReady);
                }
                self.send(port, copy.request(), limits)
                    .await
                    .map_err(|e| match e {
                        SendError::Connect => {
                            fail(e);
                            ProxyError::UpstreamNotReady
                        }
                        other => fail(other),
                    })
            }
            other => other.map_err(fail),
        }
    }

    /// One exchange with the service (not an `async fn`, as [`Upstreams::forward`]).
    fn send<'a>(
        &'a self,
        port: &'a PortSpec,
        mut req: Request<Body>,
        limits: ForwardLimits,
    ) -> impl Future<Output = Result<Response<Body>, SendError>> + Send + 'a {
        if port.h2c {
            // Boxed: the h2c client's state would otherwise size every request's future.
            return Either::Right(Box::pin(self.send_h2c(port, req, limits)));
        }
        *req.uri_mut() = origin_form(req.uri());
        let sent = self
            .pool
            .send(port.authority(), req, limits.upstream_timeout);
        Either::Left(sent.map(move |sent| match sent {
            Err(PoolError::Timeout) => Err(SendError::Timeout),
            Err(PoolError::Connect) => Err(SendError::Connect),
            Err(PoolError::Exchange) => Err(SendError::Other),
            Err(PoolError::RequestBody) => Err(SendError::ClientBody),
            Ok(resp) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                // Nothing asked to switch: the request was no WebSocket handshake.
                tracing::debug!(upstream.authority = %port.authority(), "service switched protocols unasked");
                Err(SendError::Other)
            }
            // The pool has removed the hop-by-hop fields.
            Ok(resp) => Ok(resp),
        }))
    }

    async fn send_h2c(
        &self,
        port: &PortSpec,
        mut req: Request<Body>,
        limits: ForwardLimits,
    ) -> Result<Response<Body>, SendError> {
        absolute_uri(&mut req, port).map_err(|_| SendError::Other)?;
        match tokio::time::timeout(limits.upstream_timeout, self.h2c.request(req)).await {
            Err(_) => Err(SendError::Timeout),
            Ok(Err(e)) => Err(SendError::of(&e)),
            Ok(Ok(resp)) => Ok(pool::cleaned(resp)),
        }
    }

    /// Forward a WebSocket handshake; once the service answers 101 to `websocket`, tunnel
    /// bytes both ways (see [`bridge`]).
    async fn tunnel(
        &self,
        port: &PortSpec,
        mut req: Request<Body>,
        limits: ForwardLimits,
        scope: Option<TunnelScope>,
    ) -> Result<Response<Body>, SendError> {
        let Some(scope) = scope else {
            // Only a request that came through the listener can be tunnelled: nothing
            // else could keep the tunnel within the connection limits.
            tracing::debug!("upgrade without a tunnel scope refused");
            return Err(SendError::Other);
        };
        let client_side = hyper::upgrade::on(&mut req);
        // Set for an h2 client's extended CONNECT (RFC 8441) bridged to this handshake.
        let bridged = req.extensions_mut().remove::<websocket::Bridged>();
        absolute_uri(&mut req, port).map_err(|_| SendError::Other)?;
        let fut = self.http1.request(req);
        let mut resp = match tokio::time::timeout(limits.upstream_timeout, fut).await {
            Err(_) => return Err(SendError::Timeout),
            Ok(Err(e)) => return Err(SendError::of(&e)),
            Ok(Ok(r)) => r,
        };
        match &bridged {
            None => match websocket::switched(resp.status(), resp.headers()) {
                Switch::Declined => return Ok(pool::cleaned(resp)),
                Switch::WebSocket => {}
                Switch::Other => {
                    // Dropping the answer drops the switched upstream connection.
                    tracing::debug!(upstream.authority = %port.authority(), "service switched to a protocol other than websocket");
                    return Err(SendError::Other);
                }
            },
            Some(b) => match websocket::judge(resp.status(), resp.headers(), b) {
                Verdict::Accepted => {}
                Verdict::Refused => return Ok(pool::cleaned(resp)),
                Verdict::Invalid(why) => {
                    tracing::debug!(upstream.authority = %port.authority(), reason = why, "WebSocket handshake refused");
                    return Err(SendError::Other);
                }
            },
        }
        let upstream_side = hyper::upgrade::on(&mut resp);
        let authority = port.authority().to_owned();
        tokio::spawn(bridge(client_side, upstream_side, scope, authority));
        let (mut parts, _) = pool::cleaned(resp).into_parts();
        if bridged.is_some() {
            websocket::to_h2_answer(&mut parts.status, &mut parts.headers);
        }
        Ok(Response::from_parts(parts, empty()))
    }

    /// Join (or start) the one liveness poll for this port's upstream.
    fn watch_ready(
        &self,
        port: &PortSpec,
        path: &str,
        limits: ForwardLimits,
    ) -> watch::Receiver<Option<bool>> {
        let mut waits = self.waits.lock().unwrap_or_else(lock_poisoned);
        if let Some(rx) = waits.get(port.authority()) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        waits.insert(port.authority().to_owned(), rx.clone());
        drop(waits);
        self.not_ready
            .write()
            .unwrap_or_else(lock_poisoned)
            .insert(port.authority().to_owned());
        let authority = port.authority().to_owned();
        let uri = format!("http://{}{}", port.authority(), path);
        let probe = self.probe.clone();
        let waits = Arc::clone(&self.waits);
        let not_ready = Arc::clone(&self.not_ready);
        tokio::spawn(async move {
            let ready = poll_until_live(&probe, &uri, limits).await;
            if ready {
                not_ready
                    .write()
                    .unwrap_or_else(lock_poisoned)
                    .remove(&authority);
            }
            waits
                .lock()
                .unwrap_or_else(lock_poisoned)
                .remove(&authority);
            let _ = tx.send(Some(ready));
        });
        rx
    }
}

/// Carry bytes both ways between the switched client and service until either side
/// ends its stream, no byte passes either way for `scope.idle` (WebSocket pings are bytes, so a
/// pinged session is not idle), or shutdown's grace period is over. The connection's slot
/// is held until then.
async fn bridge(client: OnUpgrade, upstream: OnUpgrade, scope: TunnelScope, authority: String) {
    let TunnelScope {
        hold,
        idle,
        mut stop,
        grace,
    } = scope;
    let last = AtomicMoment::new(tokio::time::Instant::now());
    last.set(tokio::time::Instant::now());
    let carry = async {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(upstream.authority = %authority, error = %e, "upgrade failed");
                return "upgrade failed";
            }
        };
        let (mut from_client, mut to_client) = tokio::io::split(Noted {
            io: TokioIo::new(client),
            last: &last,
        });
        let (mut from_upstream, mut to_upstream) = tokio::io::split(Noted {
            io: TokioIo::new(upstream),
            last: &last,
        });
        // A WebSocket has no half-close: once either side's stream ends (and what it sent
        // is flushed), the session is over and both connections close, as nginx does.
        let copied = tokio::select! {
            c = tokio::io::copy(&mut from_client, &mut to_upstream) => c,
            c = tokio::io::copy(&mut from_upstream, &mut to_client) => c,
        };
        match copied {
            Ok(_) => "closed",
            Err(e) => {
                tracing::debug!(upstream.authority = %authority, error = %e, "tunnel broke");
                "error"
            }
        }
    };
    let why = tokio::select! {
        why = carry => why,
        () = idle_expiry(&last, idle) => "idle",
        () = grace_over(&mut stop, grace) => "shutdown",
    };
    tracing::debug!(upstream.authority = %authority, reason = why, "tunnel closed");
    drop(hold);
}

/// Resolve once `last` is `idle` in the past; a byte noted meanwhile moves the deadline.
async fn idle_expiry(last: &AtomicMoment, idle: Duration) {
    loop {
        let now = tokio::time::Instant::now();
        let due = last.get().unwrap_or(now) + idle;
        if now >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// Resolve `grace` after shutdown began (or the server went away).
async fn grace_over(stop: &mut watch::Receiver<bool>, grace: Duration) {
    let _ = stop.wait_for(|stopping| *stopping).await;
    tokio::time::sleep(grace).await;
}

/// One side of a tunnel, noting when it last delivered bytes.
struct Noted<'a, T> {
    io: T,
    last: &'a AtomicMoment,
}

impl<T: AsyncRead + Unpin> AsyncRead for Noted<'_, T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.last.set(tokio::time::Instant::now());
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Noted<'_, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The request target as an HTTP/1.1 origin server expects it: path and query only.
fn origin_form(uri: &Uri) -> Uri {
    Uri::from(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    )
}

/// `http://{authority}{path?query}` for hyper-util's client (h2c, tunnels).
fn absolute_uri(req: &mut Request<Body>, port: &PortSpec) -> Result<(), http::Error> {
    let mut uri = std::mem::take(req.uri_mut()).into_parts();
    uri.scheme = Some(http::uri::Scheme::HTTP);
    uri.authority = Some(port.upstream.clone());
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(uri)?;
    Ok(())
}

/// `GET uri` every `interval` until a 2xx or `liveness_wait` has passed.
async fn poll_until_live(
    probe: &Client<HttpConnector, Body>,
    uri: &str,
    limits: ForwardLimits,
) -> bool {
    let Ok(uri) = uri.parse::<Uri>() else {
        return false;
    };
    let deadline = Instant::now() + limits.liveness_wait;
    loop {
        let mut req = Request::new(empty());
        *req.uri_mut() = uri.clone();
        req.headers_mut().insert(
            header::USER_AGENT,
            HeaderValue::from_static("roomgate-liveness"),
        );
        let per_try = deadline
            .saturating_duration_since(Instant::now())
            .min(limits.liveness_interval.max(Duration::from_secs(1)));
        if let Ok(Ok(resp)) = tokio::time::timeout(per_try, probe.request(req)).await {
            if resp.status().is_success() {
                return true;
            }
        }
        if Instant::now() + limits.liveness_interval >= deadline {
            return false;
        }
        tokio::time::sleep(limits.liveness_interval).await;
    }
}

/// True when the body has a known length within the buffer limit.
fn replayable_size(req: &Request<Body>, max: u64) -> bool {
    use http_body::Body as _;
    req.body().size_hint().upper().is_some_and(|n| n <= max)
}

/// True for a WebSocket handshake, the one switch of protocols roomgate tunnels.
pub fn is_upgrade(req: &Request<Body>) -> bool {
    websocket::is_handshake(req.headers())
}

/// True for a gRPC call (`application/grpc`, `application/grpc+proto`, ...).
fn is_grpc(req: &Request<Body>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Count an upstream failure under its route and kind, and say what the client gets.
fn count_failure(metrics: &Metrics, route: &Arc<String>, e: SendError) -> ProxyError {
    if let Some(kind) = e.kind() {
        metrics
            .upstream_errors
            .get_or_create(&crate::telemetry::UpstreamErrorLabels {
                route: Arc::clone(route),
                kind,
            })
            .inc();
    }
    e.into_proxy_error()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_tunnel_with_bytes_flowing_is_never_idle() {
        let last = AtomicMoment::new(Instant::now());
        last.set(Instant::now());
        let expiry = idle_expiry(&last, Duration::from_secs(5));
        tokio::pin!(expiry);
        for _ in 0..10 {
            tokio::select! {
                () = &mut expiry => panic!("closed while bytes flow"),
                () = tokio::time::sleep(Duration::from_secs(4)) => {}
            }
            // A ping (or any byte) either way.
            last.set(Instant::now());
        }
        let quiet_from = Instant::now();
        expiry.await;
        let waited = quiet_from.elapsed();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert!(waited <= Duration::from_millis(5_001), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_read_from_either_side_of_a_tunnel_are_noted() {
        let start = Instant::now();
        let last = AtomicMoment::new(start);
        last.set(start);
        let (near, mut far) = tokio::io::duplex(64);
        let mut side = Noted {
            io: near,
            last: &last,
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        far.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        side.read_exact(&mut buf).await.expect("read");
        assert_eq!(last.get(), Some(start + Duration::from_secs(3)));
        // Writing is not noted on its own: what is written was read from the other side.
        tokio::time::sleep(Duration::from_secs(3)).await;
        side.write_all(b"pong").await.expect("write");
        assert_eq!(last.get(), Some(start + Duration::from_secs(3)));
    }
}
