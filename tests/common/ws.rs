//! A WebSocket echo service (tokio-tungstenite) that counts what reached it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

pub struct WsUpstream {
    pub addr: SocketAddr,
    /// TCP connections accepted (anything that reached the service at all).
    pub accepted: Arc<AtomicUsize>,
    /// Sessions that ended.
    pub ended: Arc<AtomicUsize>,
    pub ended_notify: Arc<Notify>,
}

impl WsUpstream {
    /// Echo text and binary messages; `bye` makes the service close the session itself.
    pub async fn start() -> WsUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let ended_notify = Arc::new(Notify::new());
        let (a, e, n) = (
            Arc::clone(&accepted),
            Arc::clone(&ended),
            Arc::clone(&ended_notify),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (e, n) = (Arc::clone(&e), Arc::clone(&n));
                tokio::spawn(async move {
                    if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                        while let Some(Ok(msg)) = ws.next().await {
                            if matches!(&msg, Message::Text(t) if t.as_str() == "bye") {
                                let _ = ws.close(None).await;
                                continue;
                            }
                            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    }
                    e.fetch_add(1, Ordering::SeqCst);
                    n.notify_waiters();
                    n.notify_one();
                });
            }
        });
        WsUpstream {
            addr,
            accepted,
            ended,
            ended_notify,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
