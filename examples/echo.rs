//! An example upstream for the quickstart: answers every request with a JSON echo of what
//! it received (method, path, headers), so you can see what roomgate forwards.
//!
//! `cargo run --example echo -- 127.0.0.1:5002 127.0.0.1:5003`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

async fn echo(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
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
    let out = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": headers,
        "body_bytes": body.len(),
    });
    let mut resp = Response::new(Full::new(Bytes::from(format!("{out:#}\n"))));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    Ok(resp)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addrs: Vec<String> = std::env::args().skip(1).collect();
    let addrs = if addrs.is_empty() {
        vec!["127.0.0.1:5002".to_owned()]
    } else {
        addrs
    };
    let mut tasks = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("echo upstream listening on {addr}");
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(echo))
                        .await;
                });
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
