//! One client connection, served by hyper from its first byte to its last.
//!
//! hyper-util's auto builder reads the first bytes once to choose the protocol (HTTP/2's
//! preface, else HTTP/1.1) and that choice holds for the connection's life; nothing else
//! reads, watches or buffers the client's bytes. A later HTTP/2 preface on an HTTP/1.1
//! connection is a malformed request, and the connection is closed.
//!
//! Each request goes to [`crate::proxy::handle`] (or the plain listener's redirect), and
//! its response carries an [`InFlight`] guard, so the connection's watcher
//! ([`super::activity`]) knows when it is idle. The TLS handshake runs here, under its
//! timeout. An HTTP/1 request that may switch protocols carries the connection's
//! [`TunnelScope`], so that a tunnel keeps the connection's slot; one that is not answered
//! `101` closes its connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use super::activity::{watch_connection, Activity, InFlight};
use super::bare_errors::JsonErrors;
use super::head_timer::{Counted, HeadTimer};
use super::redirect::redirect_to_https;
use super::{Listener, SharedAcceptor};
use crate::body::{Body, BodyError, Watched};
use crate::config::Limits;
use crate::conn::ConnInfo;
use crate::forward::TunnelScope;
use crate::proxy;
use crate::state::Shared;

/// Serve one accepted connection until it ends.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    this: &Listener,
    stop: watch::Receiver<bool>,
    tunnels: TunnelScope,
    limits: Limits,
) {
    let local_port = stream.local_addr().map_or(0, |a| a.port());
    let Some(tls) = &this.tls else {
        let info = ConnInfo {
            peer,
            peer_value: crate::forwarded::peer_value(peer.ip()),
            tls: false,
            local_port,
            sni: None,
            tls_acceptor: None,
            checked_host: Default::default(),
        };
        serve_http(stream, info, this, stop, tunnels, &limits).await;
        return;
    };
    // Boxed: the handshake and a TLS stream's state (several KiB) would otherwise size
    // every connection's future, plain ones included.
    Box::pin(serve_tls(
        stream, peer, local_port, this, stop, tunnels, &limits, tls,
    ))
    .await;
}

/// The TLS handshake, then HTTP over the TLS stream.
#[allow(clippy::too_many_arguments)]
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    local_port: u16,
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
        peer_value: crate::forwarded::peer_value(peer.ip()),
        tls: true,
        local_port,
        sni,
        tls_acceptor: Some(acceptor),
        checked_host: Default::default(),
    };
    serve_http(io, info, this, stop, tunnels, limits).await;
}

/// Serve HTTP/1.1 or HTTP/2 on one connection until it ends, is idle too long, has served
/// its request budget, or shutdown asks it to finish.
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
    // The watcher is a task of its own: polled beside the connection, its timer and the
    // shutdown signal would be polled (a lock each) on every wake-up of every request.
    let (closing_tx, mut closing) = oneshot::channel();
    tokio::spawn(watch_connection(
        Arc::clone(&activity),
        stop,
        (limits.header_read_timeout.0, limits.idle_timeout.0),
        closing_tx,
    ));
    let (io, reads) = Counted::new(io);
    let builder = http_builder(
        limits,
        HeadTimer::new(reads, limits.header_read_timeout.0, limits.idle_timeout.0),
    );
    let service = Service {
        shared: Arc::clone(&this.shared),
        info: Arc::new(info),
        https_port: this.https_port,
        activity,
        tunnels,
    };
    let service = service_fn(move |req| service.call(req));
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
    // HTTP/1: finish the response in progress, then close; between requests (a head
    // half read included), close now. HTTP/2: GOAWAY, finish open streams, close.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The builder for one connection. `head_timer` keeps HTTP/1 request heads to
/// `header_read_timeout` (see [`super::head_timer`]).
fn http_builder(limits: &Limits, head_timer: HeadTimer) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(head_timer)
        .header_read_timeout(limits.header_read_timeout.0)
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

/// What every request on one connection is served with.
struct Service {
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
    /// For the plain listener: the HTTPS port redirects point to.
    https_port: Option<u16>,
    activity: Arc<Activity>,
    tunnels: TunnelScope,
}

impl Service {
    fn call(
        &self,
        mut req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Watched<InFlight>>, Infallible>> + Send {
        let may_switch =
            req.method() == http::Method::CONNECT || req.headers().contains_key(header::UPGRADE);
        // An HTTP/1 upgrade that is not answered 101 closes its connection: what follows
        // its head on the connection was meant for another protocol.
        let h1_upgrade = req.version() < http::Version::HTTP_2 && may_switch;
        if may_switch {
            req.extensions_mut().insert(self.tunnels.clone());
        }
        let (guard, last) = self.activity.begin();
        // A request without a body gets the empty body, which takes no allocation.
        let req = req.map(|b| {
            if b.is_end_stream() {
                crate::body::empty()
            } else {
                b.map_err(BodyError::new).boxed()
            }
        });
        let answer = answer(
            Arc::clone(&self.shared),
            Arc::clone(&self.info),
            self.https_port,
            req,
        );
        // A `map`, not an `async` block: a block awaiting `answer` would hold it twice
        // (as captured and as awaited), doubling the box.
        let fut = answer.map(move |mut resp| {
            let failed_upgrade = h1_upgrade && resp.status() != StatusCode::SWITCHING_PROTOCOLS;
            if last || failed_upgrade {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(resp.map(|body| Watched::new(body, guard)))
        });
        // Boxed: hyper keeps a connection's service future in one allocation for the
        // connection's life, sized for the largest; this box is allocated only while a
        // request is in flight.
        Box::pin(fut)
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
    let redirects = shared
        .state
        .load()
        .config
        .file
        .listen
        .redirect_http_to_https;
    if info.tls_acceptor.is_none() && redirects {
        Either::Left(std::future::ready(redirect_to_https(&req, https_port)))
    } else {
        Either::Right(proxy::handle(shared, info, req))
    }
}
