//! Support shared by the integration tests: real servers on free ports.
#![allow(dead_code)]

pub mod deploy;
pub mod embed;
pub mod fleet;
pub mod iap;
pub mod ingest;
pub mod node;
pub mod redis;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use roomgate::config::{Config, LoadContext};
use roomgate::server::{self, Running};

pub const TOKEN_SECRET: &str = "integration-test-token-secret-0123456789abcdef";

/// Parse a config from YAML with the given variables (no process environment).
pub fn config(yaml: &str, vars: &[(&str, &str)]) -> Config {
    let ctx = LoadContext {
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        base_dir: std::env::temp_dir(),
    };
    match Config::from_yaml_str(yaml, &ctx) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}"),
    }
}

/// Start roomgate in-process on 127.0.0.1:0.
pub async fn start(yaml: &str) -> Running {
    server::start(config(yaml, &[]))
        .await
        .expect("roomgate starts")
}

/// Start roomgate on a port its config must name before it starts (sign-in URLs carry
/// it). The port is found free and released first; if something else binds it before
/// roomgate does, another is chosen. Returns the server and the port.
pub async fn start_on_free_port(yaml: impl Fn(u16) -> String) -> (Running, u16) {
    for _ in 0..5 {
        let port = upstream::free_port();
        match server::start(config(&yaml(port), &[])).await {
            Ok(running) => return (running, port),
            Err(server::ServerError::Bind { error, .. })
                if error.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => panic!("roomgate starts: {e:?}"),
        }
    }
    panic!("every port chosen was taken before roomgate could bind it");
}

/// A participant token minted with the test key.
pub fn token(room: &str, name: &str, api: Option<serde_json::Value>) -> String {
    roomgate::auth::token::mint(
        "test",
        &roomgate::sensitive::Secret::new(TOKEN_SECRET),
        room,
        name,
        api,
        None,
        roomgate::state::system_clock(),
    )
    .expect("mint")
}

/// A token with exactly these claims, signed with the test key: for claims `mint`
/// refuses to write (a name with a line break, say).
pub fn signed_token(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(TOKEN_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// The `tokens` block matching [`token`].
pub fn tokens_block() -> String {
    format!("tokens:\n  keys:\n    - kid: test\n      secret: {{value: \"{TOKEN_SECRET}\"}}\n")
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A response read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The upstream echo's view of a request header (lowercase name).
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_owned)
    }

    pub fn error_code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// Send a request to `addr` with the given Host and headers.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    read(client().request(req).await.expect("response")).await
}

pub async fn read(resp: Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, "GET", host, path, headers, b"").await
}

/// An HTTP/2-only hyper client speaking h2c with prior knowledge.
pub async fn h2c(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(conn);
    send
}

/// Path of the built `roomgate` binary (cargo builds it for integration tests).
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_roomgate")
}
pub mod grpc;
pub mod process;
pub mod raw;
pub mod tls;
pub mod ws;
