//! The least an HTTP/1.1 reverse proxy built on hyper does per request, for measuring
//! what roomgate's own work costs on top of it: hyper's server connection in front, a
//! pool of hyper client connections behind (each driven by a task of its own, as roomgate
//! drives them), and nothing else — no routing, no header changes, no timeouts, no logs.
//! Not a proxy to deploy.
//!
//! `cargo run --release --example hyper_floor -- 127.0.0.1:8090 127.0.0.1:8081`
//! (listen address, then the upstream's); one worker thread; stops on Ctrl-C.
//! `benches/load/instructions.sh floor` counts its instructions per request.

use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Body = BoxBody<Bytes, hyper::Error>;
type Pool = Arc<Mutex<Vec<http1::SendRequest<Body>>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: hyper_floor LISTEN_ADDR UPSTREAM_ADDR".into());
    };
    let upstream: Arc<str> = upstream.into();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(&listen).await?;
            let pool = Pool::default();
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => accepted?,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                };
                stream.set_nodelay(true)?;
                let (pool, upstream) = (Arc::clone(&pool), Arc::clone(&upstream));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        forward(Arc::clone(&pool), Arc::clone(&upstream), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}

/// Send `req` on the newest ready pooled connection, or on a new one.
async fn forward(
    pool: Pool,
    upstream: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Box<dyn std::error::Error + Send + Sync>> {
    let ready = {
        let mut idle = pool.lock().unwrap_or_else(PoisonError::into_inner);
        let newest = idle.iter().rposition(|s| s.is_ready());
        newest.map(|i| idle.remove(i))
    };
    let mut sender = match ready {
        Some(sender) => sender,
        None => {
            let stream = TcpStream::connect(&*upstream).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender
        }
    };
    let resp = sender.send_request(req.map(BodyExt::boxed)).await;
    if !sender.is_closed() {
        pool.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sender);
    }
    Ok(resp?.map(BodyExt::boxed))
}
