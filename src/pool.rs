//! The HTTP/1.1 keep-alive pool roomgate forwards through.
//!
//! Owns idle upstream connections per authority. A sender goes back to its list as soon as
//! the response head arrives; hyper marks it ready again once that response's body is done,
//! and checkout takes only ready senders. So no task is spawned per response to return a
//! connection. A request that a reused connection closed before taking it is retried on
//! another connection (it never left roomgate). Tunnels (upgrades) and h2c use hyper-util's
//! client; this module makes no security decision.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::Body;

/// Why an exchange through the pool failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Nothing accepted the connection (or it timed out connecting).
    Connect,
    /// The exchange broke after the request was handed to a connection.
    Exchange,
}

/// Idle connections per upstream authority.
pub struct Http1Pool {
    idle: Mutex<HashMap<String, Vec<SendRequest<Body>>, foldhash::fast::RandomState>>,
    connect_timeout: Duration,
    max_idle_per_authority: usize,
}

impl Http1Pool {
    pub fn new(connect_timeout: Duration, max_idle_per_authority: usize) -> Http1Pool {
        Http1Pool {
            idle: Mutex::default(),
            connect_timeout,
            max_idle_per_authority,
        }
    }

    /// Send `req` (origin-form URI, `Host` set) to `authority` over a pooled connection.
    pub async fn send(
        &self,
        authority: &str,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, PoolError> {
        while let Some(mut sender) = self.checkout(authority) {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.checkin(authority, sender);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    // The connection closed before taking the request: try another.
                    Some(back) => req = back,
                    None => return Err(PoolError::Exchange),
                },
            }
        }
        let mut sender = self.connect(authority).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|_| PoolError::Exchange)?;
        self.checkin(authority, sender);
        Ok(resp)
    }

    fn checkout(&self, authority: &str) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.get_mut(authority)?;
        list.retain(|s| !s.is_closed());
        let ready = list.iter().position(SendRequest::is_ready)?;
        Some(list.swap_remove(ready))
    }

    fn checkin(&self, authority: &str, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        match idle.get_mut(authority) {
            Some(list) if list.len() < self.max_idle_per_authority => list.push(sender),
            Some(_) => {}
            None => {
                idle.insert(authority.to_owned(), vec![sender]);
            }
        }
    }

    async fn connect(&self, authority: &str) -> Result<SendRequest<Body>, PoolError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(authority))
            .await
            .map_err(|_| PoolError::Connect)?
            .map_err(|_| PoolError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| PoolError::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}
