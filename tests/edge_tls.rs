//! TLS termination: real handshakes against roomgate with certificates issued at test time.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::tls::{self, TestCerts};
use common::upstream::Upstream;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

fn yaml(certs: &TestCerts, upstream: u16, extra_listen: &str, default: &str) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
{extra_listen}
tls:
  certificates:
    - {{cert: "{ac}", key: "{ak}"}}
    - {{cert: "{bc}", key: "{bk}"}}
{default}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - {{num: {upstream}, published: true, public: true}}
routes:
  - {{domain: a.test, room: acme, port: {upstream}}}
  - {{domain: "*.apps.test", room: acme, port: {upstream}}}
  - {{domain: b.test, room: acme, port: {upstream}}}
"#,
        ac = certs.a.cert.display(),
        ak = certs.a.key.display(),
        bc = certs.b.cert.display(),
        bk = certs.b.key.display(),
    )
}

struct Setup {
    rg: roomgate::server::Running,
    upstream: Upstream,
    certs: TestCerts,
    _dir: tempfile::TempDir,
}

async fn setup(extra_listen: &str, default: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = tls::issue(dir.path());
    let upstream = Upstream::start().await;
    let rg = start(&yaml(&certs, upstream.addr.port(), extra_listen, default)).await;
    Setup {
        rg,
        upstream,
        certs,
        _dir: dir,
    }
}

impl Setup {
    fn https(&self) -> SocketAddr {
        self.rg.bound.https.expect("https bound")
    }

    async fn connect(&self, sni: &str) -> std::io::Result<TlsStream<TcpStream>> {
        let config = tls::client_config(&self.certs.ca, &[b"http/1.1"], &tls::all_versions());
        tls::connect(self.https(), sni, config).await
    }
}

/// One HTTP/1.1 request over an established TLS stream.
async fn h1_get(stream: TlsStream<TcpStream>, host: &str, path: &str) -> Reply {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .expect("request");
    read(send.send_request(req).await.expect("response")).await
}

/// SNI picks the certificate by the names inside it (exact and wildcard), ECDSA and RSA
/// alike; the request is forwarded with `X-Forwarded-Proto: https`.
#[tokio::test]
async fn sni_picks_the_certificate_whose_names_match() {
    let s = setup("", "").await;
    for (sni, expected) in [
        ("a.test", &s.certs.a.der),
        ("x.apps.test", &s.certs.a.der),
        ("b.test", &s.certs.b.der),
    ] {
        let stream = s.connect(sni).await.expect("handshake");
        let peer = tls::peer_certificate(&stream);
        assert_eq!(&peer, expected, "certificate for {sni}");
        assert!(
            tls::covers(&peer, sni),
            "SAN of the served cert covers {sni}"
        );
        let r = h1_get(stream, sni, "/hello").await;
        assert_eq!(r.status, StatusCode::OK, "{sni}");
        assert_eq!(
            r.echoed_header("x-forwarded-proto").as_deref(),
            Some("https")
        );
    }
    assert!(!tls::covers(&s.certs.a.der, "b.test"));
    assert_eq!(s.upstream.requests(), 3);
}

/// An unknown server name fails the handshake when no default certificate is configured.
#[tokio::test]
async fn unknown_server_name_fails_the_handshake_without_a_default() {
    let s = setup("", "").await;
    assert!(s.connect("unknown.test").await.is_err());
    assert_eq!(s.upstream.requests(), 0);
}

/// Without SNI, `tls.default_certificate` is served.
#[tokio::test]
async fn a_client_without_sni_gets_the_default_certificate() {
    let s = setup("", "  default_certificate: 1").await;
    let mut config =
        (*tls::client_config(&s.certs.ca, &[b"http/1.1"], &tls::all_versions())).clone();
    config.enable_sni = false;
    let stream = tls::connect(s.https(), "b.test", std::sync::Arc::new(config))
        .await
        .expect("handshake without SNI");
    assert_eq!(tls::peer_certificate(&stream), s.certs.b.der);
    let r = h1_get(stream, "b.test", "/").await;
    assert_eq!(r.status, StatusCode::OK);

    // And without a default, no SNI means no certificate.
    let s = setup("", "").await;
    let mut config =
        (*tls::client_config(&s.certs.ca, &[b"http/1.1"], &tls::all_versions())).clone();
    config.enable_sni = false;
    assert!(
        tls::connect(s.https(), "b.test", std::sync::Arc::new(config))
            .await
            .is_err()
    );
}

/// Security: a Host that the connection's certificate does not cover is refused with 421
/// (connection reuse across names must not reach another site); a Host the same
/// certificate covers is served.
#[tokio::test]
async fn host_outside_the_connection_certificate_is_misdirected() {
    let s = setup("", "").await;
    let stream = s.connect("a.test").await.expect("handshake");
    let r = h1_get(stream, "b.test", "/").await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(r.error_code(), "misdirected_request");
    assert_eq!(s.upstream.requests(), 0);

    let stream = s.connect("a.test").await.expect("handshake");
    let r = h1_get(stream, "x.apps.test", "/").await;
    assert_eq!(r.status, StatusCode::OK);
}

/// On one kept-alive connection, each request's Host is judged on its own: a host the
/// certificate covers is served however often it comes, one it does not cover is refused
/// every time, in any order.
#[tokio::test]
async fn every_request_on_a_connection_is_judged_by_its_own_host() {
    let s = setup("", "").await;
    let stream = s.connect("a.test").await.expect("handshake");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let mut served = 0;
    for (host, expected) in [
        ("x.apps.test", StatusCode::OK),
        ("b.test", StatusCode::MISDIRECTED_REQUEST),
        ("x.apps.test", StatusCode::OK),
        ("b.test", StatusCode::MISDIRECTED_REQUEST),
        ("a.test", StatusCode::OK),
    ] {
        let req = Request::builder()
            .uri("/")
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = send.send_request(req).await.expect("response");
        assert_eq!(resp.status(), expected, "{host}");
        served += usize::from(expected == StatusCode::OK);
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body");
    }
    assert_eq!(s.upstream.requests(), served);
}

/// TLS 1.2 and 1.3 both negotiate; ALPN prefers h2 and falls back to http/1.1.
#[tokio::test]
async fn tls12_and_tls13_negotiate_and_alpn_offers_h2_and_http11() {
    let s = setup("", "").await;
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = tls::client_config(&s.certs.ca, &[b"h2", b"http/1.1"], &[version]);
        let stream = tls::connect(s.https(), "a.test", config)
            .await
            .expect("handshake");
        let conn = stream.get_ref().1;
        assert_eq!(conn.protocol_version(), Some(expected));
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    }
    let stream = s.connect("a.test").await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// The server's order of cipher suites wins: a client that lists AES-256-GCM first (as
/// OpenSSL's clients do) gets AES-128-GCM, over TLS 1.3 and 1.2; a client that lists
/// ChaCha20-Poly1305 first keeps it; a client offering only AES-256-GCM still connects.
#[tokio::test]
async fn the_server_prefers_aes_128_gcm_unless_the_client_prefers_chacha20() {
    use rustls::crypto::aws_lc_rs::cipher_suite as suite;
    use rustls::CipherSuite;
    let s = setup("", "").await;
    let cases = [
        (
            &rustls::version::TLS13,
            vec![
                suite::TLS13_AES_256_GCM_SHA384,
                suite::TLS13_AES_128_GCM_SHA256,
                suite::TLS13_CHACHA20_POLY1305_SHA256,
            ],
            CipherSuite::TLS13_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS12,
            vec![
                suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ],
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS13,
            vec![
                suite::TLS13_CHACHA20_POLY1305_SHA256,
                suite::TLS13_AES_256_GCM_SHA384,
                suite::TLS13_AES_128_GCM_SHA256,
            ],
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        ),
        (
            &rustls::version::TLS13,
            vec![suite::TLS13_AES_256_GCM_SHA384],
            CipherSuite::TLS13_AES_256_GCM_SHA384,
        ),
    ];
    for (version, offered, expected) in cases {
        let config = tls::client_config_offering(&s.certs.ca, &[b"http/1.1"], &[version], &offered);
        let stream = tls::connect(s.https(), "a.test", config)
            .await
            .expect("handshake");
        let negotiated = stream
            .get_ref()
            .1
            .negotiated_cipher_suite()
            .map(|c| c.suite());
        assert_eq!(negotiated, Some(expected), "offered {offered:?}");
        let reply = h1_get(stream, "a.test", "/suite").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(s.upstream.requests(), 4);
}

/// Sessions resume from stateless tickets: a client that comes back after 200 other
/// clients (400 tickets issued, more than an in-memory cache of the last 256 sessions
/// holds) and a config reload resumes, without a new certificate signature.
#[tokio::test]
async fn a_client_resumes_its_session_after_many_other_clients_and_a_reload() {
    use rustls::HandshakeKind;
    let s = setup("", "").await;
    let tls13 = [&rustls::version::TLS13];
    // Connect, GET `path` and read the answer (which takes in the TLS 1.3 tickets that
    // follow the handshake); the handshake's kind.
    let visit = |client: Arc<rustls::ClientConfig>, path: String| {
        let addr = s.https();
        async move {
            let stream = tls::connect(addr, "a.test", client)
                .await
                .expect("handshake");
            let kind = stream.get_ref().1.handshake_kind();
            let reply = h1_get(stream, "a.test", &path).await;
            assert_eq!(reply.status, StatusCode::OK);
            kind
        }
    };
    // One config is one client: its session store holds the tickets it received.
    let returning = tls::client_config(&s.certs.ca, &[b"http/1.1"], &tls13);
    let first = visit(Arc::clone(&returning), "/first".into()).await;
    assert_eq!(first, Some(HandshakeKind::Full));
    for i in 0..200 {
        let other = tls::client_config(&s.certs.ca, &[b"http/1.1"], &tls13);
        visit(other, format!("/other-{i}")).await;
    }
    let same = yaml(&s.certs, s.upstream.addr.port(), "", "");
    s.rg.reload(config(&same, &[])).expect("reload");
    let again = visit(returning, "/again".into()).await;
    assert_eq!(again, Some(HandshakeKind::Resumed));
}

/// `listen.redirect_http_to_https`: the plain listener answers 308 to the same host on the
/// HTTPS port with the path and query, and forwards nothing.
#[tokio::test]
async fn plain_listener_redirects_to_https_when_configured() {
    let s = setup("  redirect_http_to_https: true", "").await;
    let http = s.rg.bound.http.expect("http");
    let r = get(http, "A.test:80", "/some/path?x=1&y=2", &[]).await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers["location"],
        format!("https://a.test:{}/some/path?x=1&y=2", s.https().port()).as_str()
    );
    assert_eq!(s.upstream.requests(), 0);
    // Without the option the plain listener serves.
    let s = setup("", "").await;
    let r = get(s.rg.bound.http.expect("http"), "a.test", "/", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
}

/// Certificates reload with the config: new handshakes get the new certificate, an open
/// connection keeps serving, and a reload naming an unreadable certificate is refused
/// whole (old certificate and state kept).
#[tokio::test]
async fn certificates_are_swapped_on_reload_without_dropping_connections() {
    let s = setup("", "").await;
    let dir2 = tempfile::tempdir().expect("tempdir");
    let certs2 = tls::issue(dir2.path());

    let old = s.connect("a.test").await.expect("handshake");
    assert_eq!(tls::peer_certificate(&old), s.certs.a.der);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(old))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);

    let new_yaml = yaml(&certs2, s.upstream.addr.port(), "", "");
    s.rg.reload(config(&new_yaml, &[])).expect("reload");
    let config2 = tls::client_config(&certs2.ca, &[b"http/1.1"], &tls::all_versions());
    let fresh = tls::connect(s.https(), "a.test", config2)
        .await
        .expect("handshake with the new certificate");
    assert_eq!(tls::peer_certificate(&fresh), certs2.a.der);
    assert!(
        s.connect("a.test").await.is_err(),
        "the old CA no longer verifies"
    );

    let req = Request::get("/still-open")
        .header("host", "a.test")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let r = read(send.send_request(req).await.expect("response")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the connection made before the reload serves on"
    );

    // A config naming a missing key does not load (a reload reads it through the same
    // load), so the serving state keeps its certificates.
    let broken = new_yaml.replace(&certs2.b.key.display().to_string(), "/nonexistent/b.key");
    let ctx = roomgate::config::LoadContext::default();
    let errors = roomgate::config::Config::from_yaml_str(&broken, &ctx).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "tls.certificates[1].key: /nonexistent/b.key does not exist"
    );
    let config2 = tls::client_config(&certs2.ca, &[b"http/1.1"], &tls::all_versions());
    let again = tls::connect(s.https(), "b.test", config2)
        .await
        .expect("handshake");
    assert_eq!(tls::peer_certificate(&again), certs2.b.der);
}
