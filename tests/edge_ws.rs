//! WebSockets: the upgrade is authorized like any request on its port, then tunnelled both
//! ways; a close from either side ends the session on the other.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::ws::WsUpstream;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

fn yaml(ws: u16) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
{tokens}
rooms:
  - name: acme
    services:
      - name: chat
        ports:
          - {{num: {ws}, published: true}}
routes:
  - {{domain: ws.acme.test, room: acme, port: {ws}}}
"#,
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

async fn next_message(ws: &mut Ws) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("message in time")
        .map(|m| m.expect("frame"))
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
    let rg = start(&yaml(up.addr.port())).await;
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
    let rg = start(&yaml(up.addr.port())).await;
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
    let rg = start(&yaml(up.addr.port())).await;
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
