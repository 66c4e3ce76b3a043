//! Embed-session test support: a room app upstream (an HTML page that uses
//! `embed.js`, a JSON echo that also sends `X-Frame-Options`, a failing path), the
//! config the embed tests share, and management API calls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::Reply;

/// The page the iframe shows: it takes the token from the host page and calls the API.
pub const APP_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>room app</title>
<script src="/.roomgate/embed.js"></script></head>
<body><pre id="out">waiting</pre>
<script>
RoomgateEmbed.onToken(function (token) {
  fetch('/api/data', {method: 'POST', headers: {'X-Roomgate-Embed-Token': token, 'Content-Type': 'application/json'}, body: '{"n":1}'})
    .then(function (r) { return r.text().then(function (t) { return {status: r.status, body: t}; }); })
    .then(function (r) { document.getElementById('out').textContent = JSON.stringify(r); });
}, function (e) { document.getElementById('out').textContent = 'error: ' + e; });
</script></body></html>"#;

/// The app service: `/app` (HTML), `/fail` (500), anything else echoes JSON.
pub struct App {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn serve(
    req: Request<Incoming>,
    hits: Arc<AtomicUsize>,
) -> Result<Response<Body>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut resp = match parts.uri.path() {
        "/app" => {
            let mut r = Response::new(Full::new(Bytes::from(APP_PAGE)).boxed());
            r.headers_mut().insert(
                "content-type",
                "text/html; charset=utf-8".parse().expect("static"),
            );
            r
        }
        "/fail" => {
            let mut r = Response::new(Full::new(Bytes::from("down")).boxed());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
        _ => {
            let headers: serde_json::Map<String, serde_json::Value> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let out = serde_json::json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut r = Response::new(Full::new(Bytes::from(out.to_string())).boxed());
            r.headers_mut()
                .insert("content-type", "application/json".parse().expect("static"));
            r
        }
    };
    // A service that forbids framing: embed mode must remove it.
    resp.headers_mut()
        .insert("x-frame-options", "DENY".parse().expect("static"));
    Ok(resp)
}

impl App {
    pub async fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let h = Arc::clone(&h);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| serve(req, Arc::clone(&h)));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        App { addr, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A P-256 key (PKCS#8 PEM) for the identity assertion, written to `dir/name`.
pub fn assertion_key(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let path = dir.join(name);
    std::fs::write(&path, key.serialize_pem()).expect("write key");
    path
}

/// What a config needs beyond its listeners and Redis.
pub struct Setup<'a> {
    pub listen: &'a str,
    pub redis: Option<&'a str>,
    pub app: u16,
    pub other: u16,
    pub keys_file: &'a Path,
    pub assertion_key: &'a Path,
}

/// Room `acme` (embed port, with a rate-limited and a quota endpoint) on
/// `app.acme.test`; room `other` on `other.test`; participant tokens; the assertion.
pub fn yaml(s: &Setup<'_>) -> String {
    let redis = s
        .redis
        .map(|u| format!("redis:\n  url: {{value: \"{u}\"}}\n"))
        .unwrap_or_default();
    format!(
        r#"version: v1
listen:
{listen}
{redis}{tokens}embed:
  session_ttl: 1h
  token_ttl: 15m
  launch_ttl: 60s
  keys_file: {keys}
identity_assertion:
  keys: [{{kid: k1, private_key: {{file: {akey}}}}}]
  ttl: 60s
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: {app}
            published: true
            annotations: {{roomgate.embed: "true"}}
            endpoints:
              - path: /limited
                annotations: {{roomgate.rate_limit: "3/m"}}
              - path: /quota
                annotations: {{roomgate.quota.daily: "2"}}
              - path: /fail
                annotations: {{roomgate.quota.daily: "2"}}
  - name: other
    services:
      - name: web
        ports:
          - num: {other}
            published: true
            annotations: {{roomgate.embed: "true"}}
routes:
  - {{domain: app.acme.test, room: acme, port: {app}}}
  - {{domain: other.test, room: other, port: {other}}}
"#,
        listen = s.listen,
        tokens = super::tokens_block(),
        keys = s.keys_file.display(),
        akey = s.assertion_key.display(),
        app = s.app,
        other = s.other,
    )
}

/// POST a mint with `key` (a JSON body as given).
pub async fn mint_raw(addr: SocketAddr, key: &str, body: &str) -> Reply {
    super::send(
        addr,
        "POST",
        "app.acme.test",
        "/.roomgate/api/v1/embed/sessions",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

/// A session for user `cust-42` framed by `https://host.test:8443`: its mint answer.
pub async fn mint(addr: SocketAddr, key: &str) -> serde_json::Value {
    let body = serde_json::json!({
        "room": "acme",
        "domain": "app.acme.test",
        "path": "/app",
        "user": "cust-42",
        "api": {"queues": {}},
        "allowed_origins": ["https://host.test:8443"],
        "ttl": "30m",
    });
    let r = mint_raw(addr, key, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The `c` of a launch URL, and its path and query.
pub fn launch_target(launch_url: &str) -> String {
    let at = launch_url.find("/.roomgate/").expect("launch path");
    launch_url[at..].to_owned()
}
