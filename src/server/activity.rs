//! What a client connection is doing, and when it should close for it.
//!
//! hyper keeps a connection's request heads to `header_read_timeout` (see
//! [`super::head_timer`]); everything else that ends a connection is decided here, by one
//! watcher per connection, from atomics the requests update (a request costs two atomic
//! updates, no wake-up and no timer): no request at all within `header_read_timeout` of
//! the accept (this also covers a client stalling before HTTP/1 is told from HTTP/2),
//! nothing in flight for `idle_timeout` (HTTP/2 connections without streams; hyper has no
//! idle timer), the request budget spent, or shutdown.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::body::Watcher;

/// What a connection is doing, for its deadlines.
#[derive(Debug)]
pub struct Activity {
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    served: AtomicU64,
    /// When the connection last had nothing in flight, in ms since `epoch`.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    max_requests: u64,
    /// Signalled when the request budget is spent and the last response is done.
    retired: tokio::sync::Notify,
}

impl Activity {
    pub fn new(max_requests: u64) -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            max_requests,
            retired: tokio::sync::Notify::new(),
        }
    }

    /// Count a request in flight until the returned guard is dropped (with its response
    /// body); true when it spends the connection's request budget.
    pub fn begin(self: &Arc<Self>) -> (InFlight, bool) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let served = self.served.fetch_add(1, Ordering::AcqRel) + 1;
        (InFlight(Arc::clone(self)), served >= self.max_requests)
    }

    fn retiring(&self) -> bool {
        self.served.load(Ordering::Acquire) >= self.max_requests
    }
}

/// Marks one request in flight until dropped: it rides in the response body
/// ([`crate::body::Watched`]), so it lasts until the body is fully sent or the client
/// went away.
pub struct InFlight(Arc<Activity>);

impl Watcher for InFlight {}

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

/// Until the connection ends (its end of `closing` is dropped), wait for shutdown or for
/// one of its deadlines, and send why it should close.
pub async fn watch_connection(
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

/// Resolve when the connection should close for its own sake. The timer is re-armed only
/// when it fires (at least every min(head, idle)), from the atomics, so requests never
/// touch it.
async fn wait_until_done(activity: Arc<Activity>, head: Duration, idle: Duration) -> &'static str {
    loop {
        let busy = activity.in_flight.load(Ordering::Acquire) > 0;
        if !busy && activity.retiring() {
            return "request limit";
        }
        let now = Instant::now();
        let idle_from =
            activity.epoch + Duration::from_millis(activity.idle_since_ms.load(Ordering::Acquire));
        let (deadline, why) = if busy {
            (now + idle, "idle")
        } else if activity.served.load(Ordering::Acquire) == 0 {
            (activity.epoch + head, "no request in time")
        } else {
            (idle_from + idle, "idle")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_closed_after_the_head_deadline() {
        let a = Arc::new(Activity::new(100));
        let started = Instant::now();
        let why = wait_until_done(a, Duration::from_secs(1), Duration::from_secs(60)).await;
        assert_eq!(why, "no request in time");
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_in_flight_request_is_never_idle() {
        let a = Arc::new(Activity::new(100));
        let (guard, _) = a.begin();
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
        let idle_from = Instant::now();
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
        let (guard, last) = a.begin();
        assert!(last, "the one request allowed spends the budget");
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
        let done_at = Instant::now();
        drop(guard);
        assert_eq!(wait.await, "request limit");
        assert_eq!(done_at.elapsed(), Duration::ZERO, "no timer to wait for");
    }
}
