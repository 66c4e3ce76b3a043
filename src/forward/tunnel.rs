//! WebSocket tunnels: a handshake forwarded to the service and, once it switched
//! protocols, bytes carried both ways.
//!
//! A tunnel outlives the request that opened it (and, for HTTP/1.1, the connection's
//! HTTP task), so it carries the connection's [`TunnelScope`]: it holds the connection's
//! slot under `limits.max_connections` until it ends, closes after `idle_timeout` without
//! a byte either way, and closes once shutdown's grace period is over.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::{origin_form, ForwardLimits, SendError, To, Upstreams};
use crate::body::{empty, Body};
use crate::deadline::Deadline;
use crate::pool::{Switched, Upgraded};
use crate::websocket::{self, Switch, Verdict};

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

impl Upstreams {
    /// Forward a WebSocket handshake; once the service answers 101 to `websocket`, tunnel
    /// bytes both ways (see [`bridge`]).
    pub(super) async fn tunnel(
        &self,
        to: To<'_>,
        mut req: Request<Body>,
        limits: ForwardLimits,
        scope: Option<TunnelScope>,
    ) -> Result<Response<Body>, SendError> {
        let port = to.port;
        let Some(scope) = scope else {
            // Only a request that came through the listener can be tunnelled: nothing
            // else could keep the tunnel within the connection limits.
            tracing::debug!("upgrade without a tunnel scope refused");
            return Err(SendError::Other);
        };
        let client_side = hyper::upgrade::on(&mut req);
        // Set for an h2 client's extended CONNECT (RFC 8441) bridged to this handshake.
        let bridged = req.extensions_mut().remove::<websocket::Bridged>();
        *req.uri_mut() = origin_form(req.uri());
        let mut resp = self
            .pool
            .send(
                port.authority(),
                req,
                to.forwarded.fields(),
                limits.upstream_timeout,
            )
            .await?;
        match &bridged {
            None => match websocket::switched(resp.status(), resp.headers()) {
                Switch::Declined => return Ok(resp),
                Switch::WebSocket => {}
                Switch::Other => {
                    // Dropping the answer drops the switched upstream connection.
                    tracing::debug!(upstream.authority = %port.authority(), "service switched to a protocol other than websocket");
                    return Err(SendError::Other);
                }
            },
            Some(b) => match websocket::judge(resp.status(), resp.headers(), b) {
                Verdict::Accepted => {}
                Verdict::Refused => return Ok(resp),
                Verdict::Invalid(why) => {
                    tracing::debug!(upstream.authority = %port.authority(), reason = why, "WebSocket handshake refused");
                    return Err(SendError::Other);
                }
            },
        }
        let Some(upstream_side) = Switched::take(&mut resp) else {
            return Err(SendError::Other);
        };
        let authority = port.authority().to_owned();
        tokio::spawn(bridge(client_side, upstream_side, scope, authority));
        let (mut parts, _) = resp.into_parts();
        if bridged.is_some() {
            websocket::to_h2_answer(&mut parts.status, &mut parts.headers);
        }
        Ok(Response::from_parts(parts, empty()))
    }
}

/// Carry bytes both ways between the switched client and service until either side
/// ends its stream, no byte passes either way for `scope.idle` (WebSocket pings are bytes, so a
/// pinged session is not idle), or shutdown's grace period is over. The connection's slot
/// is held until then.
async fn bridge(client: OnUpgrade, upstream: Upgraded, scope: TunnelScope, authority: String) {
    let TunnelScope {
        hold,
        idle,
        mut stop,
        grace,
    } = scope;
    let last = Deadline::after(idle);
    let carry = async {
        let client = match client.await {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(upstream.authority = %authority, error = %e, "upgrade failed");
                return "upgrade failed";
            }
        };
        let (mut from_client, mut to_client) = tokio::io::split(Noted {
            io: TokioIo::new(client),
            idle: &last,
            after: idle,
        });
        let (mut from_upstream, mut to_upstream) = tokio::io::split(Noted {
            io: upstream.io,
            idle: &last,
            after: idle,
        });
        // What the service sent right after its `101` is the first of its stream.
        if let Err(e) = to_client.write_all(&upstream.read).await {
            tracing::debug!(upstream.authority = %authority, error = %e, "tunnel broke");
            return "error";
        }
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
        () = last.passed() => "idle",
        () = grace_over(&mut stop, grace) => "shutdown",
    };
    tracing::debug!(upstream.authority = %authority, reason = why, "tunnel closed");
    drop(hold);
}

/// Resolve `grace` after shutdown began (or the server went away).
async fn grace_over(stop: &mut watch::Receiver<bool>, grace: Duration) {
    let _ = stop.wait_for(|stopping| *stopping).await;
    tokio::time::sleep(grace).await;
}

/// One side of a tunnel: bytes it delivers move the tunnel's idle deadline ahead.
struct Noted<'a, T> {
    io: T,
    idle: &'a Deadline,
    after: Duration,
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
            this.idle.push(this.after);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn bytes_read_from_either_side_of_a_tunnel_move_its_idle_deadline() {
        let start = Instant::now();
        let idle = Duration::from_secs(5);
        let last = Deadline::after(idle);
        let (near, mut far) = tokio::io::duplex(64);
        let mut side = Noted {
            io: near,
            idle: &last,
            after: idle,
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        far.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        side.read_exact(&mut buf).await.expect("read");
        assert_eq!(last.due(), start + Duration::from_secs(8));
        // Writing is not noted on its own: what is written was read from the other side.
        tokio::time::sleep(Duration::from_secs(3)).await;
        side.write_all(b"pong").await.expect("write");
        assert_eq!(last.due(), start + Duration::from_secs(8));
    }
}
