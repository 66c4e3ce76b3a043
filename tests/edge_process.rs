//! The real binary: reload by SIGHUP and by a change of the config file while a long
//! request and a WebSocket are in flight, graceful shutdown on SIGTERM, and the access
//! log's content (JSON logs on stderr).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use common::process::{config_hash, eventually, metric, Proc};
use common::raw::{read_response, read_until_closed};
use common::upstream::Upstream;
use common::ws::WsUpstream;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const OK_RELOADS: &str = r#"roomgate_config_reloads_total{result="ok"}"#;
const FAILED_RELOADS: &str = r#"roomgate_config_reloads_total{result="error"}"#;

fn yaml(web: u16, ws: u16, extra_routes: &str) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
  admin: 127.0.0.1:0
{tokens}
limits:
  shutdown_grace: 20s
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - {{num: {web}, published: true, public: true}}
      - name: chat
        ports:
          - {{num: {ws}, published: true}}
routes:
  - {{domain: web.acme.test, room: acme, port: {web}}}
  - {{domain: ws.acme.test, room: acme, port: {ws}}}
{extra_routes}
"#,
        tokens = tokens_block()
    )
}

const NEW_ROUTE: &str = "  - {domain: new.acme.test, room: acme, port: WEB}";
const BAD_ROUTE: &str = "  - {domain: bad.acme.test, room: acme, port: 1}";

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

struct Services {
    web: Upstream,
    ws: WsUpstream,
}

impl Services {
    async fn start() -> Services {
        Services {
            web: Upstream::start().await,
            ws: WsUpstream::start().await,
        }
    }
    fn config(&self, extra: &str) -> String {
        let extra = extra.replace("WEB", &self.web.addr.port().to_string());
        yaml(self.web.addr.port(), self.ws.addr.port(), &extra)
    }
}

async fn status(addr: SocketAddr, host: &str) -> StatusCode {
    get(addr, host, "/", &[]).await.status
}

/// Start `/download?chunks=1` and read its first chunk: the request is then in flight
/// until the test lets the service finish.
async fn start_download(addr: SocketAddr) -> (Incoming, usize) {
    let req = http::Request::get(format!("http://{addr}/download?chunks=1"))
        .header("host", "web.acme.test")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client().request(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut got = 0;
    while got < 65536 {
        let frame = body.frame().await.expect("frame").expect("ok");
        got += frame.data_ref().map_or(0, |d| d.len());
    }
    (body, got)
}

async fn finish_download(mut body: Incoming, mut got: usize) -> usize {
    while let Some(frame) = body.frame().await {
        got += frame.expect("frame").data_ref().map_or(0, |d| d.len());
    }
    got
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn open_ws(addr: SocketAddr) -> Ws {
    let mut req = format!("ws://{addr}/chat")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("host", "ws.acme.test".parse().expect("host"));
    let t = token("acme", "bob", None);
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {t}").parse().expect("auth"),
    );
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("upgrade")
        .0
}

async fn echo(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time")
        .expect("message")
        .expect("frame");
    assert_eq!(got, Message::text(text));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

/// roomgate serving a config written into a fresh directory (kept as long as this is).
struct Served {
    dir: tempfile::TempDir,
    path: PathBuf,
    rg: Proc,
}

fn serve_config(text: &str) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    write(&path, text);
    let rg = Proc::serve(&path, &[]);
    Served { dir, path, rg }
}

/// SIGHUP reloads the whole config while a long request and a WebSocket are in flight:
/// both complete, a new route becomes reachable, and an invalid config is refused with
/// the old routes still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reload_keeps_in_flight_work_and_refuses_an_invalid_config() {
    let svc = Services::start().await;
    // The config path is a symlink into another directory, so only SIGHUP (not the file
    // watch, which watches the link's directory) can cause these reloads.
    let link_dir = tempfile::tempdir().expect("tempdir");
    let real_dir = tempfile::tempdir().expect("tempdir");
    let real = real_dir.path().join("routes.yaml");
    let path = link_dir.path().join("routes.yaml");
    write(&real, &svc.config(""));
    std::os::unix::fs::symlink(&real, &path).expect("symlink");

    let mut rg = Proc::serve(&path, &[]);
    let http = rg.addr("http").await;
    let admin = rg.addr("admin").await;
    assert_eq!(status(http, "web.acme.test").await, StatusCode::OK);
    assert_eq!(status(http, "new.acme.test").await, StatusCode::NOT_FOUND);

    let (download, got) = start_download(http).await;
    let mut ws = open_ws(http).await;
    echo(&mut ws, "before").await;

    let v2 = svc.config(NEW_ROUTE);
    write(&real, &v2);
    rg.signal("HUP");
    eventually("SIGHUP reload", || async {
        (metric(admin, OK_RELOADS).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(config_hash(admin).await, hash(&v2));
    assert_eq!(status(http, "new.acme.test").await, StatusCode::OK);
    echo(&mut ws, "after reload").await;

    // An invalid config: logged with its YAML path, refused, the old state serves on.
    write(&real, &svc.config(&format!("{NEW_ROUTE}\n{BAD_ROUTE}")));
    rg.signal("HUP");
    eventually("rejected reload", || async {
        (metric(admin, FAILED_RELOADS).await >= 1.0).then_some(())
    })
    .await;
    let rejected = rg
        .wait_json("reload rejected", |v| {
            v["level"] == "ERROR"
                && v["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("routes[3].port"))
        })
        .await;
    assert!(rejected["message"]
        .as_str()
        .is_some_and(|m| m.contains("keeping the previous config")));
    assert_eq!(config_hash(admin).await, hash(&v2));
    assert_eq!(status(http, "web.acme.test").await, StatusCode::OK);
    assert_eq!(status(http, "new.acme.test").await, StatusCode::OK);
    assert_eq!(metric(admin, OK_RELOADS).await, 1.0);

    // The in-flight work was never interrupted.
    echo(&mut ws, "still open").await;
    svc.web.seen.proceed.notify_one();
    assert_eq!(finish_download(download, got).await, 2 * 65536);
    ws.close(None).await.expect("close");

    rg.stop().await;
}

/// A config written while roomgate starts (right after its listeners are up, before or
/// while its file watch begins) is the one it serves: no write falls between the first
/// load and the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_written_during_start_up_is_served() {
    let svc = Services::start().await;
    let v1 = svc.config("");
    let Served {
        dir: _dir,
        path,
        mut rg,
    } = serve_config(&v1);
    let http = rg.addr("http").await;
    let v2 = svc.config(NEW_ROUTE);
    write(&path, &v2);
    let admin = rg.addr("admin").await;
    eventually("the config written during start-up", || async {
        (config_hash(admin).await == hash(&v2)).then_some(())
    })
    .await;
    assert_eq!(status(http, "new.acme.test").await, StatusCode::OK);
    rg.stop().await;
}

/// SIGHUP as soon as the listeners are up reloads; it never meets the default action,
/// which would end the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_right_after_start_up_reloads() {
    let svc = Services::start().await;
    let Served {
        dir: _dir, mut rg, ..
    } = serve_config(&svc.config(""));
    let http = rg.addr("http").await;
    rg.signal("HUP");
    let admin = rg.addr("admin").await;
    eventually("the reload", || async {
        (metric(admin, OK_RELOADS).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(status(http, "web.acme.test").await, StatusCode::OK);
    rg.stop().await;
}

/// A change of the config file reloads it (debounced); a write that changes nothing does
/// nothing; an atomic rename-over is seen; an invalid file is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_change_reloads_and_a_no_op_write_does_not() {
    let svc = Services::start().await;
    let v1 = svc.config("");
    let Served { dir, path, mut rg } = serve_config(&v1);
    let http = rg.addr("http").await;
    let admin = rg.addr("admin").await;
    assert_eq!(config_hash(admin).await, hash(&v1));
    let (download, got) = start_download(http).await;
    let mut ws = open_ws(http).await;

    let v2 = svc.config(NEW_ROUTE);
    write(&path, &v2);
    eventually("file reload", || async {
        (config_hash(admin).await == hash(&v2)).then_some(())
    })
    .await;
    assert_eq!(metric(admin, OK_RELOADS).await, 1.0);
    assert_eq!(status(http, "new.acme.test").await, StatusCode::OK);

    // The same bytes again: noticed, compared, nothing reloaded.
    write(&path, &v2);
    rg.wait_json("no-op write noticed", |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("without a change"))
    })
    .await;
    assert_eq!(metric(admin, OK_RELOADS).await, 1.0);

    // Editors and config management replace the file by renaming over it.
    let v3 = svc.config("  - {domain: third.acme.test, room: acme, port: WEB}");
    let tmp = dir.path().join(".routes.yaml.tmp");
    write(&tmp, &v3);
    std::fs::rename(&tmp, &path).expect("rename");
    eventually("rename reload", || async {
        (config_hash(admin).await == hash(&v3)).then_some(())
    })
    .await;
    assert_eq!(status(http, "third.acme.test").await, StatusCode::OK);
    assert_eq!(status(http, "new.acme.test").await, StatusCode::NOT_FOUND);

    // Invalid: refused, v3 keeps serving.
    write(&path, "version: v1\nlisten: {http: nonsense}\n");
    eventually("rejected reload", || async {
        (metric(admin, FAILED_RELOADS).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(config_hash(admin).await, hash(&v3));
    assert_eq!(status(http, "third.acme.test").await, StatusCode::OK);

    echo(&mut ws, "open throughout").await;
    svc.web.seen.proceed.notify_one();
    assert_eq!(finish_download(download, got).await, 2 * 65536);
}

/// SIGTERM: stop accepting, close idle keep-alive connections, let the in-flight request
/// finish, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let svc = Services::start().await;
    let Served {
        dir: _dir, mut rg, ..
    } = serve_config(&svc.config(""));
    let http = rg.addr("http").await;

    let mut idle = TcpStream::connect(http).await.expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: web.acme.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let (download, got) = start_download(http).await;

    rg.signal("TERM");
    rg.wait_json("drain starts", |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("shutting down"))
    })
    .await;
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(10))
            .await
            .closed,
        "the idle keep-alive connection is closed"
    );
    eventually("listener closed", || async {
        TcpStream::connect(http).await.is_err().then_some(())
    })
    .await;

    svc.web.seen.proceed.notify_one();
    assert_eq!(finish_download(download, got).await, 2 * 65536);
    let exit = rg.exit(Duration::from_secs(20)).await;
    assert!(exit.success(), "exit status {exit:?}");
}

/// Security: the access log holds one structured line per request with the normalised
/// path, status, bytes, duration, route, room, auth outcome and request id, and never the
/// query string, a token or a cookie value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_is_structured_and_never_holds_query_token_or_cookie() {
    let svc = Services::start().await;
    // A private route (the chat port) for a refused request.
    let private = format!(
        "  - {{domain: api.acme.test, room: acme, port: {}}}",
        svc.ws.addr.port()
    );
    let Served {
        dir: _dir, mut rg, ..
    } = serve_config(&svc.config(&private));
    let http = rg.addr("http").await;
    let t = token("acme", "carol", None);
    let auth = format!("Bearer {t}");
    let cookie = "session=cookie-value-must-not-leak; __meshagent_iap=iap-value-must-not-leak";
    let r = get(
        http,
        "Web.Acme.Test",
        "/a/../b//c?token=query-token-must-not-leak&x=1",
        &[
            ("authorization", &auth),
            ("cookie", cookie),
            ("x-request-id", "req-123"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let line = rg
        .wait_json("access line", |v| {
            v["target"] == "roomgate::access" && v["request.id"] == "req-123"
        })
        .await;
    assert_eq!(line["http.method"], "GET");
    assert_eq!(line["http.host"], "web.acme.test");
    assert_eq!(line["http.path"], "/b/c");
    assert_eq!(line["http.status"], 200);
    assert_eq!(line["http.response_bytes"], r.body.len() as u64);
    assert!(line["duration_ms"].as_f64().is_some());
    assert_eq!(line["route.domain"], "web.acme.test");
    assert_eq!(line["route.room"], "acme");
    assert_eq!(line["auth.result"], "public");

    // A refused request on a private route logs its outcome the same way.
    let r = get(
        http,
        "api.acme.test",
        "/x?access_token=query-token-must-not-leak",
        &[("cookie", cookie), ("x-request-id", "req-456")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let line = rg
        .wait_json("access line", |v| {
            v["target"] == "roomgate::access" && v["request.id"] == "req-456"
        })
        .await;
    assert_eq!(line["http.path"], "/x");
    assert_eq!(line["auth.result"], "denied");
    assert_eq!(line["error.code"], "missing_auth");

    let log = rg.log().join("\n");
    for secret in [
        "query-token-must-not-leak",
        "x=1",
        "cookie-value-must-not-leak",
        "iap-value-must-not-leak",
        t.as_str(),
        "Bearer",
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}
