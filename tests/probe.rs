//! `roomgate probe`, the container image's health check (the image has no curl): it
//! passes on a 2xx from the admin listener of a real `roomgate serve`, fails with exit
//! status 1 on a closed port, a non-2xx answer or a silent listener, and never prints a
//! body, path or query.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::deploy::*;
use common::process::Proc;
use tokio::net::TcpListener;

/// `roomgate probe`: its exit code and what it printed on stderr.
fn probe(url: &str, timeout: &str) -> (i32, String) {
    let out = Command::new(common::bin())
        .args(["probe", "--url", url, "--timeout", timeout])
        .output()
        .expect("roomgate probe runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The image's health check command passes against the admin listener of a real
/// `roomgate serve`, and fails on a path the admin listener does not serve.
#[tokio::test]
async fn probe_passes_on_the_admin_listener_of_a_real_serve() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    let yaml = format!(
        "version: v1\nlisten: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}\n{}rooms: []\nroutes: []\n",
        common::tokens_block()
    );
    std::fs::write(&path, yaml).unwrap();
    let mut proc = Proc::serve(&path, &[]);
    let admin: SocketAddr = proc.addr("admin").await;
    // The image's command as it is, the port moved to this admin listener's.
    let health: Vec<String> = exec_form(&instructions("HEALTHCHECK")[0])
        .into_iter()
        .map(|a| a.replace(":9090/", &format!(":{}/", admin.port())))
        .collect();
    assert_eq!(probe_url(&health), format!("http://{admin}/healthz"));
    let out = Command::new(common::bin())
        .args(&health[1..])
        .output()
        .expect("roomgate probe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("200 OK"));
    let (code, said) = probe(&format!("http://{admin}/readyz"), "2s");
    assert_eq!(code, 0, "{said}");
    let (code, said) = probe(&format!("http://{admin}/no-such-path"), "2s");
    assert_eq!(
        (code, said.trim()),
        (
            1,
            format!("probe failed: {admin} answered 404 Not Found").as_str()
        )
    );
    proc.stop().await;
}

#[test]
fn probe_fails_on_a_closed_port() {
    let port = common::upstream::free_port();
    let (code, said) = probe(&format!("http://127.0.0.1:{port}/healthz"), "2s");
    assert_eq!(code, 1);
    assert!(
        said.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{said}"
    );
}

/// A failing answer is reported by its status alone: the body, the path and the query
/// never reach the output (a health check's output is kept by the container runtime).
#[tokio::test]
async fn probe_fails_on_a_503_without_printing_the_body_path_or_query() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let body = "internal-detail-BODY";
        let reply = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).await.unwrap();
    });
    let (code, said) = tokio::task::spawn_blocking(move || {
        probe(&format!("http://{addr}/secret-path?token=QUERY"), "2s")
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert_eq!(
        said.trim(),
        format!("probe failed: {addr} answered 503 Service Unavailable")
    );
    for hidden in ["BODY", "secret-path", "QUERY"] {
        assert!(!said.contains(hidden), "{said}");
    }
}

/// A listener that never answers fails the probe at its deadline, not later.
#[tokio::test]
async fn probe_fails_when_no_answer_comes_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let started = Instant::now();
    let (code, said) =
        tokio::task::spawn_blocking(move || probe(&format!("http://{addr}/healthz"), "300ms"))
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(
        said.contains("no answer") && said.contains("300ms"),
        "{said}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}
