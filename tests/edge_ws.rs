//! WebSockets: the upgrade (HTTP/1.1, or an h2 extended CONNECT per RFC 8441) is
//! authorized like any request on its port, then tunnelled both ways; a close from either
//! side ends the session on the other.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::raw::{read_response, read_until_closed};
use common::upstream::Upstream;
use common::ws::WsUpstream;
use common::*;
use futures_util::{SinkExt, Stream, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;
type H2Ws = WebSocketStream<TokioIo<Upgraded>>;

/// `ws.acme.test` is the WebSocket service; `plain.acme.test`, when given, a service that
/// answers every request 200 and never switches protocols.
fn yaml(ws: u16, plain: Option<u16>) -> String {
    yaml_with_limits(ws, plain, "")
}

/// [`yaml`] with a `limits` block (YAML lines, each indented two spaces).
fn yaml_with_limits(ws: u16, plain: Option<u16>, limits: &str) -> String {
    let (plain_service, plain_route) = match plain {
        Some(p) => (
            format!(
                "      - name: plain\n        ports:\n          - {{num: {p}, published: true}}\n"
            ),
            format!("  - {{domain: plain.acme.test, room: acme, port: {p}}}\n"),
        ),
        None => Default::default(),
    };
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
{tokens}
limits:
  shutdown_grace: 30s
{limits}rooms:
  - name: acme
    services:
      - name: chat
        ports:
          - {{num: {ws}, published: true}}
{plain_service}routes:
  - {{domain: ws.acme.test, room: acme, port: {ws}}}
{plain_route}"#,
        tokens = tokens_block()
    )
}

/// Open a WebSocket through roomgate at `addr` for `host`, with an optional bearer token.
pub async fn open(addr: SocketAddr, host: &str, token: Option<&str>) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}/chat").into_client_request()?;
    req.headers_mut()
        .insert("host", host.parse().expect("host"));
    if let Some(t) = token {
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("auth"),
        );
    }
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio_tungstenite::client_async(req, tcp)
        .await
        .map(|(ws, _)| ws)
}

/// The next message (a frame error fails the test), or `None` at the end.
async fn next_message<S>(ws: &mut S) -> Option<Message>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    next(ws).await.map(|m| m.expect("frame"))
}

async fn wait_ended(up: &WsUpstream, n: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while up.ended.load(Ordering::SeqCst) < n {
            up.ended_notify.notified().await;
        }
    })
    .await
    .expect("the service saw the session end");
}

/// Security: on a private port the upgrade needs the participant token; without it (or
/// with a bad one) the answer is 401 and nothing reaches the service.
#[tokio::test]
async fn websocket_upgrade_on_a_private_port_requires_the_token() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let addr = rg.bound.http.expect("http");
    for token in [None, Some("not-a-token")] {
        match open(addr, "ws.acme.test", token).await {
            Err(WsError::Http(resp)) => assert_eq!(resp.status(), 401),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("upgrade without a valid token was accepted"),
        }
    }
    assert_eq!(up.accepted(), 0, "nothing reached the service");
}

/// With the token the session is tunnelled both ways; the client's close reaches the
/// service and its answer comes back.
#[tokio::test]
async fn websocket_echo_through_a_private_port_and_client_close() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let mut ws = open(addr, "ws.acme.test", Some(&t)).await.expect("upgrade");
    for i in 0..3 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.expect("send");
        assert_eq!(next_message(&mut ws).await, Some(Message::text(text)));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut ws).await,
        Some(Message::binary(vec![0u8, 1, 2, 255]))
    );
    ws.close(None).await.expect("close");
    // The service answers the close (or the stream just ends).
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("close in time");
    assert!(
        matches!(answer, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "unexpected {answer:?}"
    );
    wait_ended(&up, 1).await;
    assert_eq!(up.accepted(), 1);
}

/// A close started by the service reaches the client.
#[tokio::test]
async fn websocket_close_from_the_service_reaches_the_client() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let mut ws = open(addr, "ws.acme.test", Some(&t)).await.expect("upgrade");
    ws.send(Message::text("bye")).await.expect("send");
    assert!(matches!(
        next_message(&mut ws).await,
        Some(Message::Close(_))
    ));
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("end in time"),
        None | Some(Err(_))
    ));
    wait_ended(&up, 1).await;
}

/// Security: an HTTP/1.1 upgrade that is refused closes its connection, so no request
/// can follow it unwatched on a connection the framing checks have let go.
#[tokio::test]
async fn a_refused_http1_upgrade_closes_the_connection() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let addr = rg.bound.http.expect("http");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        b"GET /chat HTTP/1.1\r\nHost: ws.acme.test\r\nUpgrade: websocket\r\n\
          Connection: upgrade\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("write");
    let raw = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_eq!(raw.status(), Some(401), "{}", raw.text);
    assert!(raw.text.to_ascii_lowercase().contains("connection: close"));
    assert!(raw.closed, "the connection is closed after the refusal");
    assert_eq!(up.accepted(), 0);
}

/// An h2c client (prior knowledge) to roomgate, ready once the server's SETTINGS arrived.
async fn h2c(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    // A first exchange: its answer comes after the server's SETTINGS, so the client knows
    // by then whether extended CONNECT is enabled.
    let probe = Request::get("http://ws.acme.test/probe")
        .body(Empty::new())
        .expect("request");
    let resp = send.send_request(probe).await.expect("probe");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    send
}

/// An RFC 8441 extended CONNECT for a WebSocket (or a plain CONNECT without `protocol`).
fn connect_request(
    host: &str,
    protocol: Option<&'static str>,
    token: Option<&str>,
) -> Request<Empty<Bytes>> {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{host}/chat"))
        .header("sec-websocket-version", "13");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Empty::new()).expect("request");
    if let Some(p) = protocol {
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static(p));
    }
    req
}

/// Open a WebSocket over an h2 stream; the status when roomgate refuses it.
async fn open_h2(
    send: &mut SendRequest<Empty<Bytes>>,
    host: &str,
    token: Option<&str>,
) -> Result<H2Ws, StatusCode> {
    let mut resp = send
        .send_request(connect_request(host, Some("websocket"), token))
        .await
        .expect("extended CONNECT accepted by the h2 layer");
    if resp.status() != StatusCode::OK {
        return Err(resp.status());
    }
    let io = hyper::upgrade::on(&mut resp)
        .await
        .expect("stream upgraded");
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Client, None).await)
}

async fn next<S>(ws: &mut S) -> Option<Result<Message, WsError>>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("message in time")
}

/// RFC 8441: on a private port the extended CONNECT needs the participant token; without
/// it (or with a bad one) the stream is answered 401 and nothing reaches the service.
#[tokio::test]
async fn h2_websocket_on_a_private_port_requires_the_token() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let mut send = h2c(rg.bound.http.expect("http")).await;
    for token in [None, Some("not-a-token")] {
        let refused = open_h2(&mut send, "ws.acme.test", token).await;
        assert_eq!(refused.err(), Some(StatusCode::UNAUTHORIZED));
    }
    let other_room = token("elsewhere", "bob", None);
    let refused = open_h2(&mut send, "ws.acme.test", Some(&other_room)).await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
    assert_eq!(up.accepted(), 0, "nothing reached the service");
}

/// RFC 8441: with the token the h2 stream carries the session both ways (the service sees
/// an ordinary HTTP/1.1 handshake with the trusted identity); the client's close reaches
/// the service, the service's close reaches the client, and the h2 connection serves
/// other streams meanwhile.
#[tokio::test]
async fn h2_websocket_echo_and_close_in_both_directions() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let mut send = h2c(rg.bound.http.expect("http")).await;
    let t = token("acme", "bob", None);

    let mut ws = open_h2(&mut send, "ws.acme.test", Some(&t))
        .await
        .expect("upgrade");
    for i in 0..3 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.expect("send");
        assert_eq!(next_message(&mut ws).await, Some(Message::text(text)));
    }
    let bytes = vec![0u8, 1, 2, 255];
    ws.send(Message::binary(bytes.clone())).await.expect("send");
    assert_eq!(next_message(&mut ws).await, Some(Message::binary(bytes)));

    // A second session on the same h2 connection, closed by the service.
    let mut other = open_h2(&mut send, "ws.acme.test", Some(&t))
        .await
        .expect("second upgrade");
    other.send(Message::text("bye")).await.expect("send");
    assert!(matches!(
        next(&mut other).await,
        Some(Ok(Message::Close(_)))
    ));
    assert!(matches!(next(&mut other).await, None | Some(Err(_))));
    wait_ended(&up, 1).await;

    // The first session still works, then the client closes it.
    ws.send(Message::text("still here")).await.expect("send");
    assert_eq!(
        next_message(&mut ws).await,
        Some(Message::text("still here"))
    );
    ws.close(None).await.expect("close");
    let answer = next(&mut ws).await;
    assert!(
        matches!(answer, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "unexpected {answer:?}"
    );
    wait_ended(&up, 2).await;
    assert_eq!(up.accepted(), 2);
    assert_eq!(up.users(), vec!["bob".to_owned(), "bob".to_owned()]);
}

/// A service that answers the handshake without switching protocols gives the h2 client
/// 502, never a 200 it would take for an open WebSocket.
#[tokio::test]
async fn h2_websocket_to_a_service_that_does_not_switch_protocols_is_502() {
    let up = WsUpstream::start().await;
    let plain = Upstream::start().await;
    let rg = start(&yaml(up.addr.port(), Some(plain.addr.port()))).await;
    let mut send = h2c(rg.bound.http.expect("http")).await;
    let t = token("acme", "bob", None);
    let refused = open_h2(&mut send, "plain.acme.test", Some(&t)).await;
    assert_eq!(refused.err(), Some(StatusCode::BAD_GATEWAY));
    assert_eq!(plain.requests(), 1, "the handshake reached the service");
}

/// roomgate is no forward proxy: a CONNECT without `:protocol websocket` is 405, over h2
/// and over HTTP/1.1, and nothing reaches a service.
#[tokio::test]
async fn plain_connect_is_refused_with_405() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml(up.addr.port(), None)).await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let mut send = h2c(addr).await;
    for protocol in [None, Some("connect-udp")] {
        let resp = send
            .send_request(connect_request("ws.acme.test", protocol, Some(&t)))
            .await
            .expect("answer");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"CONNECT ws.acme.test:443 HTTP/1.1\r\nHost: ws.acme.test:443\r\n\r\n")
        .await
        .expect("write");
    let raw = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_eq!(raw.status(), Some(405), "{}", raw.text);
    assert!(raw.text.contains("method_not_allowed"));
    assert!(raw.closed);
    assert_eq!(up.accepted(), 0);
}

/// Open a WebSocket, check it echoes, and hand it back.
async fn open_echoing(addr: SocketAddr, t: &str) -> Ws {
    let mut ws = open(addr, "ws.acme.test", Some(t)).await.expect("upgrade");
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next_message(&mut ws).await, Some(Message::text("ping")));
    ws
}

/// Close a WebSocket from the client and wait until the session is over.
async fn close_fully(mut ws: Ws) {
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = next(&mut ws).await {}
}

/// Limits: a tunnel keeps its connection's slot under `max_connections`. With every slot
/// held by an open WebSocket, a new connection waits (in the backlog, not refused) and is
/// served once a tunnel closes: WebSockets cannot grow open sockets past the limit.
#[tokio::test]
async fn open_tunnels_hold_their_connection_slots() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml_with_limits(
        up.addr.port(),
        None,
        "  max_connections: 2\n",
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let first = open_echoing(addr, &t).await;
    let mut second = open_echoing(addr, &t).await;

    let mut third = TcpStream::connect(addr).await.expect("connect");
    third
        .write_all(b"GET /probe HTTP/1.1\r\nHost: ws.acme.test\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a connection past max_connections was served while every slot was held by a tunnel"
    );

    close_fully(first).await;
    let resp = tokio::time::timeout(Duration::from_secs(10), read_response(&mut third))
        .await
        .expect("served once a tunnel closed");
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");

    // The other tunnel was not disturbed.
    second
        .send(Message::text("still here"))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut second).await,
        Some(Message::text("still here"))
    );
}

/// Limits: a tunnel with no byte in either direction for `idle_timeout` is closed by
/// roomgate, on both sides.
#[tokio::test]
async fn an_idle_tunnel_is_closed_after_the_idle_timeout() {
    let up = WsUpstream::start().await;
    let rg = start(&yaml_with_limits(
        up.addr.port(),
        None,
        "  idle_timeout: 300ms\n",
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let mut ws = open_echoing(addr, &t).await;
    let quiet_from = std::time::Instant::now();
    let end = next(&mut ws).await;
    assert!(
        matches!(end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "unexpected {end:?}"
    );
    assert!(
        quiet_from.elapsed() >= Duration::from_millis(300),
        "closed before idle_timeout: {:?}",
        quiet_from.elapsed()
    );
    wait_ended(&up, 1).await;
}

/// Shutdown: an open tunnel is closed once the shutdown grace period is over, and
/// shutdown waits for it.
#[tokio::test]
async fn shutdown_closes_open_tunnels_after_the_grace_period() {
    let up = WsUpstream::start().await;
    let yaml = yaml_with_limits(up.addr.port(), None, "")
        .replace("shutdown_grace: 30s", "shutdown_grace: 200ms");
    let rg = start(&yaml).await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let mut ws = open_echoing(addr, &t).await;
    tokio::time::timeout(Duration::from_secs(10), rg.shutdown())
        .await
        .expect("shutdown within its grace period");
    // Shutdown has returned: the tunnel is already gone.
    wait_ended(&up, 1).await;
    let end = next(&mut ws).await;
    assert!(
        matches!(end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "unexpected {end:?}"
    );
}

/// Security: only a WebSocket handshake (`Connection: upgrade` and `Upgrade: websocket`)
/// is tunnelled. Any other `Upgrade` (h2c, a made-up protocol, or `Upgrade` without
/// `Connection: upgrade`) is stripped as hop-by-hop and the request forwarded as plain
/// HTTP, so the service can never switch the client to a protocol roomgate does not look
/// into.
#[tokio::test]
async fn an_upgrade_other_than_websocket_is_forwarded_as_plain_http() {
    let up = WsUpstream::start().await;
    let plain = Upstream::start().await;
    let rg = start(&yaml(up.addr.port(), Some(plain.addr.port()))).await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let cases = [
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
        "Connection: upgrade\r\nUpgrade: foo\r\n",
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    ];
    for (i, extra) in cases.iter().enumerate() {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "GET /plain HTTP/1.1\r\nHost: plain.acme.test\r\nAuthorization: Bearer {t}\r\n{extra}\r\n"
        );
        tcp.write_all(head.as_bytes()).await.expect("write");
        let raw = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
        assert_eq!(raw.status(), Some(200), "{extra}: {}", raw.text);
        assert_eq!(plain.requests(), i + 1, "{extra}");
        let seen = plain.seen.last_headers.lock().expect("lock").clone();
        for (name, value) in &seen {
            assert!(
                !matches!(name.as_str(), "upgrade" | "http2-settings" | "connection"),
                "{extra}: the service saw {name}: {value}"
            );
        }
    }
    assert_eq!(up.accepted(), 0);
}

/// Security: a service that answers a WebSocket handshake with a 101 to another protocol
/// gives the HTTP/1.1 client 502 (never a switch roomgate would not vouch for), and its
/// connection is dropped.
#[tokio::test]
async fn a_service_switching_to_another_protocol_is_502() {
    let up = WsUpstream::start().await;
    let service = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = service.local_addr().expect("addr").port();
    let (dropped_tx, dropped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = service.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a full head");
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n",
        )
        .await
        .expect("write");
        // Whatever comes next, the proxy must hang up.
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        let _ = dropped_tx.send(());
    });
    let rg = start(&yaml(up.addr.port(), Some(port))).await;
    let addr = rg.bound.http.expect("http");
    let t = token("acme", "bob", None);
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET /chat HTTP/1.1\r\nHost: plain.acme.test\r\nAuthorization: Bearer {t}\r\n\
         Upgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let raw = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_eq!(raw.status(), Some(502), "{}", raw.text);
    assert!(raw.text.contains("bad_gateway"), "{}", raw.text);
    assert!(raw.closed);
    tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the service's connection was dropped")
        .expect("service task");
}
