//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/ports`, and the identity
//! assertion's public keys at `/.well-known/roomgate/jwks.json`.
//!
//! Served on its own address (loopback by default) and never on the public listeners.
//! It reads state and metrics; it must not change anything. `/healthz` says the process
//! serves (liveness only); `/readyz` also asks the shared Redis, when there is one, and
//! answers 503 while it cannot be reached.

use std::convert::Infallible;
use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{full, Body};
use crate::state::Shared;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(respond(&shared, &req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `/readyz`: 200 `{"ready": true}`, or 503 `{"ready": false, "redis": "unreachable"}`
/// while the shared Redis does not answer.
async fn readiness(shared: &Shared) -> Response<Body> {
    let (status, body) = match &shared.kv {
        None => (StatusCode::OK, serde_json::json!({"ready": true})),
        Some(kv) => match kv.ping().await {
            Ok(()) => (
                StatusCode::OK,
                serde_json::json!({"ready": true, "redis": "reachable"}),
            ),
            Err(e) => {
                tracing::warn!(redis.topology = kv.kind(), error = %e, "not ready: redis is unreachable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"ready": false, "redis": "unreachable"}),
                )
            }
        },
    };
    text(status, "application/json", body.to_string())
}

async fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => readiness(shared).await,
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.render(),
        ),
        "/ports" => {
            let state = shared.state.load();
            let ports: Vec<_> = state
                .config
                .ports
                .iter()
                .filter(|p| p.published)
                .map(|p| {
                    serde_json::json!({
                        "room": p.room,
                        "service": p.service,
                        "port": p.num,
                        "state": shared.upstreams.port_state(p).as_str(),
                        "liveness": p.liveness,
                    })
                })
                .collect();
            text(
                StatusCode::OK,
                "application/json",
                serde_json::json!({ "config_hash": state.config.hash, "ports": ports }).to_string(),
            )
        }
        "/.well-known/roomgate/jwks.json" => match &shared.state.load().config.assertion {
            Some(a) => text(StatusCode::OK, "application/json", a.jwks().to_owned()),
            None => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}
