//! A WebSocket echo service (tokio-tungstenite) that counts what reached it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::Message;

pub struct WsUpstream {
    pub addr: SocketAddr,
    /// TCP connections accepted (anything that reached the service at all).
    pub accepted: Arc<AtomicUsize>,
    /// Sessions that ended.
    pub ended: Arc<AtomicUsize>,
    pub ended_notify: Arc<Notify>,
    /// `X-MESHAGENT-USER` of each accepted handshake (empty when absent).
    pub users: Arc<Mutex<Vec<String>>>,
}

impl WsUpstream {
    /// Echo text and binary messages; `bye` makes the service close the session itself.
    pub async fn start() -> WsUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let ended_notify = Arc::new(Notify::new());
        let users = Arc::new(Mutex::new(Vec::new()));
        let (a, e, n, u) = (
            Arc::clone(&accepted),
            Arc::clone(&ended),
            Arc::clone(&ended_notify),
            Arc::clone(&users),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (e, n, u) = (Arc::clone(&e), Arc::clone(&n), Arc::clone(&u));
                tokio::spawn(async move {
                    // tungstenite checks the handshake (GET, Upgrade, key) and answers
                    // with the key's accept value.
                    let record = RecordUser(u);
                    if let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await {
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
            users,
        }
    }

    pub fn users(&self) -> Vec<String> {
        self.users.lock().expect("users").clone()
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Notes the handshake's `X-MESHAGENT-USER` and lets tungstenite answer it.
struct RecordUser(Arc<Mutex<Vec<String>>>);

impl Callback for RecordUser {
    fn on_request(self, req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
        let user = req
            .headers()
            .get("x-meshagent-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.0.lock().expect("users").push(user);
        Ok(resp)
    }
}
