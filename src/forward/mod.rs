//! Forwarding to services, and waiting for them through a cold start.
//!
//! Owns what happens between an authorized request and the service's answer: the
//! exchange through the connection [`Pool`], response timeouts and hygiene
//! ([`response`]), WebSocket tunnels ([`tunnel`]) and the liveness poller
//! ([`liveness`]). It receives requests that the pipeline has already authorized and
//! cleaned; it must not make security decisions or look at credentials.

mod liveness;
mod response;
mod tunnel;

pub use tunnel::TunnelScope;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::Either;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use tokio::sync::watch;

use crate::body::{full, Body};
use crate::config::PortSpec;
use crate::error::ProxyError;
use crate::forwarded::Forwarded;
use crate::pool::{Pool, PoolError};
use crate::telemetry::{LivenessLabels, Metrics};
pub(crate) use response::cleaned;

/// Where a request goes, and what goes with it.
#[derive(Clone, Copy, Debug)]
pub struct To<'a> {
    pub port: &'a PortSpec,
    /// The route's domain, which failures are counted under.
    pub route: &'a Arc<String>,
    /// The forwarding fields the service is sent beside the request's own.
    pub forwarded: &'a Forwarded<'a>,
    /// A WebSocket handshake ([`crate::websocket::is_handshake`]): tunnelled once the
    /// service answers `101`.
    pub handshake: bool,
}

/// Timeouts the forwarder applies.
#[derive(Clone, Copy, Debug)]
pub struct ForwardLimits {
    pub upstream_timeout: Duration,
    pub liveness_interval: Duration,
    pub liveness_wait: Duration,
    pub max_body_bytes: u64,
}

/// What the admin listener's `/ports` says of a published port: what roomgate does with
/// a request for it now.
///
/// - `ready`: the port declares `liveness`, and no cold-start wait is in progress or has
///   timed out: requests go straight to the service.
/// - `not_ready`: the port declares `liveness`, and a cold-start wait is in progress or
///   the last one timed out: requests wait for the service (up to `limits.liveness_wait`).
/// - `unchecked`: the port declares no `liveness`: requests go straight to the service,
///   and roomgate does not check whether it is up (a refused connection answers 502).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    Ready,
    NotReady,
    Unchecked,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Ready => "ready",
            PortState::NotReady => "not_ready",
            PortState::Unchecked => "unchecked",
        }
    }
}

/// The upstream side of roomgate: the connection pool every exchange goes through, and
/// the liveness hub.
pub struct Upstreams {
    pool: Arc<Pool>,
    /// One in-flight liveness poll per upstream authority; waiters share it.
    waits: Arc<Mutex<HashMap<String, watch::Receiver<Option<bool>>>>>,
    /// Authorities currently waiting or whose last wait failed.
    not_ready: Arc<RwLock<HashSet<String>>>,
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
}

impl From<PoolError> for SendError {
    fn from(e: PoolError) -> SendError {
        match e {
            PoolError::Connect => SendError::Connect,
            PoolError::Timeout => SendError::Timeout,
            PoolError::Exchange => SendError::Other,
            PoolError::RequestBody => SendError::ClientBody,
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
        Upstreams {
            pool: Arc::new(Pool::new(connect_timeout, 1024)),
            waits: Arc::default(),
            not_ready: Arc::default(),
        }
    }

    /// The state of a port, for the admin listener.
    pub fn port_state(&self, port: &PortSpec) -> PortState {
        if port.liveness.is_none() {
            return PortState::Unchecked;
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
        to: To<'a>,
        mut req: Request<Body>,
        limits: ForwardLimits,
        metrics: &'a Metrics,
    ) -> impl Future<Output = Result<Response<Body>, ProxyError>> + Send + 'a {
        let port = to.port;
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
        let fail = move |e: SendError| count_failure(metrics, to.route, e);

        // Taken out of every request: it must not ride along to an upstream connection.
        let scope = req.extensions_mut().remove::<TunnelScope>();
        // The tunnel and the cold-start wait are boxed: rare, and their state would
        // otherwise size (and be copied with) the future of every request.
        let rare: Pin<Box<dyn Future<Output = _> + Send + 'a>> = if to.handshake {
            Box::pin(async move { self.tunnel(to, req, limits, scope).await.map_err(fail) })
        } else if let Some(liveness) = &port.liveness {
            Box::pin(self.through_cold_start(to, liveness, req, limits, metrics))
        } else {
            return Either::Left(self.send(to, req, limits).map(move |r| r.map_err(fail)));
        };
        Either::Right(rare)
    }

    /// Forward to a port that declares `liveness`: a refused connection waits for the
    /// service to come up, then sends the request again when its body could be kept.
    async fn through_cold_start(
        &self,
        to: To<'_>,
        liveness: &str,
        req: Request<Body>,
        limits: ForwardLimits,
        metrics: &Metrics,
    ) -> Result<Response<Body>, ProxyError> {
        let port = to.port;
        let fail = |e: SendError| count_failure(metrics, to.route, e);
        let replayable = replayable_size(&req, limits.max_body_bytes);
        if !replayable {
            // Too large (or unbounded) to keep a copy: a refused connection starts the
            // poller for the next request, and this one is told to retry.
            return match self.send(to, req, limits).await {
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
        match self.send(to, copy.request(), limits).await {
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
                self.send(to, copy.request(), limits)
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
        to: To<'a>,
        mut req: Request<Body>,
        limits: ForwardLimits,
    ) -> impl Future<Output = Result<Response<Body>, SendError>> + Send + 'a {
        let port = to.port;
        if port.h2c {
            to.forwarded.insert_into(req.headers_mut());
            // Boxed: the h2c exchange's state would otherwise size every request's future.
            return Either::Right(Box::pin(self.send_h2c(port, req, limits)));
        }
        *req.uri_mut() = origin_form(req.uri());
        let sent = self.pool.send(
            port.authority(),
            req,
            to.forwarded.fields(),
            limits.upstream_timeout,
        );
        Either::Left(sent.map(move |sent| match sent {
            Err(e) => Err(SendError::from(e)),
            Ok(resp) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                // Nothing asked to switch: the request was no WebSocket handshake. The
                // switched connection is dropped with the answer.
                tracing::debug!(upstream.authority = %port.authority(), "service switched protocols unasked");
                Err(SendError::Other)
            }
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
        let resp = self
            .pool
            .send_h2c(port.authority(), req, limits.upstream_timeout)
            .await?;
        Ok(cleaned(resp))
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

/// `http://{authority}{path?query}`, the target form hyper's h2c client sends.
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

/// True when the body has a known length within the buffer limit.
fn replayable_size(req: &Request<Body>, max: u64) -> bool {
    use http_body::Body as _;
    req.body().size_hint().upper().is_some_and(|n| n <= max)
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
