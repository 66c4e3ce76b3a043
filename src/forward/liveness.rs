//! Cold starts: one liveness poll per service address, shared by every request waiting
//! for that service to come up, and what the admin listener says of a port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Request, Uri};
use tokio::sync::watch;

use super::{lock_poisoned, ForwardLimits, Upstreams};
use crate::body::empty;
use crate::config::PortSpec;
use crate::pool::Pool;

impl Upstreams {
    /// Join (or start) the one liveness poll for this port's upstream.
    pub(super) fn watch_ready(
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
        let path = path.to_owned();
        let pool = Arc::clone(&self.pool);
        let waits = Arc::clone(&self.waits);
        let not_ready = Arc::clone(&self.not_ready);
        tokio::spawn(async move {
            let ready = poll_until_live(&pool, &authority, &path, limits).await;
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

/// `GET {path}` on `authority` every `interval` until a 2xx or `liveness_wait` has passed.
async fn poll_until_live(pool: &Pool, authority: &str, path: &str, limits: ForwardLimits) -> bool {
    let (Ok(uri), Ok(host)) = (path.parse::<Uri>(), HeaderValue::from_str(authority)) else {
        return false;
    };
    let deadline = Instant::now() + limits.liveness_wait;
    loop {
        let mut req = Request::new(empty());
        *req.uri_mut() = uri.clone();
        let h = req.headers_mut();
        h.insert(header::HOST, host.clone());
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static("roomgate-liveness"),
        );
        let per_try = deadline
            .saturating_duration_since(Instant::now())
            .min(limits.liveness_interval.max(Duration::from_secs(1)));
        if let Ok(resp) = pool.send(authority, req, &[], per_try).await {
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
