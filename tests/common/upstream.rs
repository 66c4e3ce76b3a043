//! Real upstream HTTP servers for the tests: they echo what they received and count it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

type Body = BoxBody<Bytes, Infallible>;

/// What the upstream observed, shared with the test.
#[derive(Default)]
pub struct Seen {
    /// Requests other than liveness probes.
    pub requests: AtomicUsize,
    pub liveness_probes: AtomicUsize,
    /// Headers of the last request (lowercase names, all values).
    pub last_headers: Mutex<Vec<(String, String)>>,
    /// Signalled when `/download` has sent its first chunk... and waits for `proceed`.
    pub proceed: Notify,
    /// Signalled when `/upload` has received its first chunk.
    pub first_chunk: Notify,
    /// Every echoed request: `METHOD target body`.
    pub log: Mutex<Vec<String>>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|n| match n {}).boxed()
}

async fn serve(req: Request<Incoming>, seen: Arc<Seen>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        seen.liveness_probes.fetch_add(1, Ordering::SeqCst);
        return Ok(Response::new(full("ok")));
    }
    seen.requests.fetch_add(1, Ordering::SeqCst);
    *seen.last_headers.lock().expect("lock") = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    match path.as_str() {
        // Never answers: for upstream timeouts.
        "/hang" => std::future::pending().await,
        // 64 KiB chunks: one, then wait until the test saw it, then `n` more.
        "/download" => {
            let n: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("chunks="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(16);
            let seen = Arc::clone(&seen);
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let seen = Arc::clone(&seen);
                async move {
                    if i > n {
                        return None;
                    }
                    if i == 1 {
                        seen.proceed.notified().await;
                    }
                    Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 65536]))),
                        i + 1,
                    ))
                }
            });
            Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))))
        }
        // Count the body, signalling after the first chunk.
        "/upload" => {
            let mut body = req.into_body();
            let mut total = 0usize;
            let mut first = true;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(d) = frame.data_ref() {
                    total += d.len();
                    if first && total > 0 {
                        first = false;
                        seen.first_chunk.notify_one();
                    }
                }
            }
            Ok(Response::new(full(total.to_string())))
        }
        _ => {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let headers: serde_json::Map<String, serde_json::Value> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            seen.log.lock().expect("lock").push(format!(
                "{} {} {}",
                parts.method,
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/"),
                String::from_utf8_lossy(&body)
            ));
            let out = serde_json::json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut resp = Response::new(full(out.to_string()));
            *resp.status_mut() = StatusCode::OK;
            resp.headers_mut()
                .insert("content-type", "application/json".parse().expect("static"));
            Ok(resp)
        }
    }
}

impl Upstream {
    /// Start an echo upstream on a free loopback port.
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve_on(listener)
    }

    /// Serve on an already-bound listener (for cold-start tests).
    pub fn serve_on(listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| serve(req, Arc::clone(&s)));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, seen }
    }

    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    /// Every echoed request so far (`METHOD target body`), leaving the log empty.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.log.lock().expect("lock"))
    }
}

/// A port nothing listens on right now (bound, read, released).
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` distinct free loopback ports, held open together while they are chosen (ports
/// chosen one after another may repeat).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("bound").port())
}
