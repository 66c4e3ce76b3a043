//! HTTP/2 from clients on both listeners (h2 by ALPN over TLS, h2c prior knowledge on the
//! plain listener), forwarded to HTTP/1.1 services, and gRPC to an h2c service with its
//! trailers passed through.

mod common;

use bytes::Bytes;
use common::grpc::{grpc_frame, GrpcUpstream};
use common::tls::{self, TestCerts};
use common::upstream::Upstream;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

fn yaml(certs: &TestCerts, web: u16, grpc: u16) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
tls:
  certificates:
    - {{cert: "{ac}", key: "{ak}"}}
limits:
  max_concurrent_streams: 7
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - {{num: {web}, published: true, public: true}}
      - name: rpc
        ports:
          - {{num: {grpc}, published: true, public: true, h2c: true}}
routes:
  - {{domain: a.test, room: acme, port: {web}}}
  - {{domain: rpc.apps.test, room: acme, port: {grpc}}}
"#,
        ac = certs.a.cert.display(),
        ak = certs.a.key.display(),
    )
}

struct Setup {
    rg: roomgate::server::Running,
    web: Upstream,
    grpc: GrpcUpstream,
    certs: TestCerts,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = tls::issue(dir.path());
    let web = Upstream::start().await;
    let grpc = GrpcUpstream::start().await;
    let rg = start(&yaml(&certs, web.addr.port(), grpc.addr.port())).await;
    Setup {
        rg,
        web,
        grpc,
        certs,
        _dir: dir,
    }
}

/// An HTTP/2-only hyper client over TLS, negotiated by ALPN.
async fn h2_over_tls(s: &Setup, sni: &str) -> SendRequest<Full<Bytes>> {
    let config = tls::client_config(&s.certs.ca, &[b"h2"], &tls::all_versions());
    let stream = tls::connect(s.rg.bound.https.expect("https"), sni, config)
        .await
        .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

async fn h2_get(send: &mut SendRequest<Full<Bytes>>, uri: &str) -> Reply {
    let req = Request::get(uri)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    read(resp).await
}

/// h2 through ALPN on the TLS listener, forwarded to an HTTP/1.1 service; several streams
/// share the one connection.
#[tokio::test]
async fn h2_over_tls_is_forwarded_to_an_http11_service() {
    let s = setup().await;
    let mut send = h2_over_tls(&s, "a.test").await;
    let mut second = send.clone();
    let (r1, r2) = tokio::join!(
        h2_get(&mut second, "https://a.test/one?x=1"),
        h2_get(&mut send, "https://a.test/two"),
    );
    for (r, path) in [(r1, "/one?x=1"), (r2, "/two")] {
        assert_eq!(r.status, StatusCode::OK);
        let echo = r.json();
        assert_eq!(echo["path"], path);
        assert_eq!(echo["headers"]["host"], "a.test");
        assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    }
    assert_eq!(s.web.requests(), 2);
}

/// h2c prior knowledge on the plain listener.
#[tokio::test]
async fn h2c_prior_knowledge_is_served_on_the_plain_listener() {
    let s = setup().await;
    let mut send = h2c(s.rg.bound.http.expect("http")).await;
    let r = h2_get(&mut send, "http://a.test/plain").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["path"], "/plain");
    assert_eq!(
        r.echoed_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
}

/// The configured stream limit is what roomgate advertises in its SETTINGS.
#[tokio::test]
async fn the_stream_limit_is_advertised() {
    let s = setup().await;
    let tcp = TcpStream::connect(s.rg.bound.http.expect("http"))
        .await
        .expect("connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.expect("ready");
    let req = Request::get("http://a.test/").body(()).expect("request");
    let (resp, _) = send.send_request(req, true).expect("send");
    let resp = resp.await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(send.current_max_send_streams(), 7);
}

/// gRPC over h2 (TLS and h2c): the call reaches the h2c service with `te: trailers`, and
/// the service's trailers (`grpc-status: 0`) reach the client.
#[tokio::test]
async fn grpc_over_h2_passes_trailers_through() {
    let s = setup().await;
    let tls_client = h2_over_tls(&s, "rpc.apps.test").await;
    let h2c_client = h2c(s.rg.bound.http.expect("http")).await;
    for (mut send, scheme) in [(tls_client, "https"), (h2c_client, "http")] {
        let req = Request::post(format!("{scheme}://rpc.apps.test/echo.Echo/Ping"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(grpc_frame(b"ping")))
            .expect("request");
        let resp = send.send_request(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        let collected = resp.into_body().collect().await.expect("body");
        let trailers = collected
            .trailers()
            .cloned()
            .expect("trailers reach the client");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["grpc-message"], "ok");
        assert_eq!(collected.to_bytes(), grpc_frame(b"pong"));
        let seen = s
            .grpc
            .last_headers
            .lock()
            .expect("lock")
            .clone()
            .expect("call seen");
        assert_eq!(seen["te"], "trailers");
        assert_eq!(seen["content-type"], "application/grpc");
        // The h2c service is told of the hop as an HTTP/1.1 one is, once each.
        let once = |name: &str| {
            let all: Vec<_> = seen.get_all(name).iter().collect();
            assert_eq!(all.len(), 1, "{name} over {scheme}: {all:?}");
            all[0].to_str().expect("ascii").to_owned()
        };
        assert_eq!(once("x-forwarded-for"), "127.0.0.1");
        assert_eq!(once("x-forwarded-proto"), scheme);
        assert_eq!(once("x-forwarded-host"), "rpc.apps.test");
    }
}
