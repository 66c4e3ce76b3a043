//! A gRPC-shaped h2c service: answers every call with one message and the trailers
//! `grpc-status: 0`, and records the request headers it saw.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub struct GrpcUpstream {
    pub addr: SocketAddr,
    pub last_headers: Arc<Mutex<Option<HeaderMap>>>,
}

/// A length-prefixed gRPC message frame.
pub fn grpc_frame(payload: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

impl GrpcUpstream {
    pub async fn start() -> GrpcUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let last_headers: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
        let seen = Arc::clone(&last_headers);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let seen = Arc::clone(&seen);
                            async move {
                                *seen.lock().expect("lock") = Some(req.headers().clone());
                                let _ = req.into_body().collect().await;
                                let mut trailers = HeaderMap::new();
                                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                                trailers.insert("grpc-message", HeaderValue::from_static("ok"));
                                let frames = vec![
                                    Ok::<_, Infallible>(Frame::data(grpc_frame(b"pong"))),
                                    Ok(Frame::trailers(trailers)),
                                ];
                                let body = StreamBody::new(futures_util::stream::iter(frames));
                                let mut resp = Response::new(body);
                                resp.headers_mut().insert(
                                    "content-type",
                                    HeaderValue::from_static("application/grpc"),
                                );
                                Ok::<_, Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        GrpcUpstream { addr, last_headers }
    }
}
