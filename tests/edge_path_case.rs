//! Path case: routes and endpoint policies match paths byte-exactly, unless a port says
//! its service folds case (`roomgate.path.case_insensitive: "true"`), as Express does by
//! default and ASP.NET does. Then `/ADMIN` and `/%41dmin` meet `/admin`'s policy.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::exchange;
use common::upstream::Upstream;
use common::*;

const WAIT: Duration = Duration::from_secs(10);

fn yaml(folding: u16, exact: u16) -> String {
    format!(
        r#"version: v1
listen: {{http: 127.0.0.1:0}}
{tokens}rooms:
  - name: acme
    services:
      - name: express
        ports:
          - num: {folding}
            published: true
            public: true
            annotations:
              roomgate.path.case_insensitive: "true"
            endpoints:
              - path: /admin
                annotations:
                  meshagent.request.validation.method: bearer
      - name: exact
        ports:
          - num: {exact}
            published: true
            public: true
            endpoints:
              - path: /admin
                annotations:
                  meshagent.request.validation.method: bearer
routes:
  - domain: folding.acme.test
    room: acme
    port: {exact}
    paths: [{{path: /App, match: prefix, port: {folding}}}]
  - {{domain: exact.acme.test, room: acme, port: {exact}}}
"#,
        tokens = tokens_block(),
    )
}

async fn status(addr: SocketAddr, host: &str, target: &str) -> u16 {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    exchange(addr, req.as_bytes(), WAIT)
        .await
        .status()
        .unwrap_or(0)
}

/// Security: on a port whose service folds case, every spelling of `/admin` the service
/// would serve as `/admin` meets the `/admin` policy; routes to the port match the same way.
#[tokio::test]
async fn a_case_insensitive_port_applies_its_policies_to_every_spelling() {
    let folding = Upstream::start().await;
    let exact = Upstream::start().await;
    let rg = start(&yaml(folding.addr.port(), exact.addr.port())).await;
    let addr = rg.bound.http.expect("http");
    for target in [
        "/app/admin",
        "/APP/ADMIN",
        "/App/aDmIn/x",
        "/app/%41dmin",
        "/app/%61DMIN",
    ] {
        // The route path `/App` sends every spelling to the folding service, whose
        // `/admin` endpoint needs a token whatever the case.
        let host = "folding.acme.test";
        assert_eq!(
            status(addr, host, target).await,
            200,
            "{target}: routed, public"
        );
    }
    assert_eq!(folding.requests(), 5);
    assert_eq!(exact.requests(), 0);
    drop(rg);

    // The endpoint itself: served at the port's root through its own domain.
    let rg = start(&format!(
        "{}  - {{domain: direct.acme.test, room: acme, port: {}}}\n",
        yaml(folding.addr.port(), exact.addr.port()),
        folding.addr.port()
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    for target in ["/admin", "/ADMIN", "/Admin/x", "/%41dmin", "/%61DMIN/y"] {
        assert_eq!(
            status(addr, "direct.acme.test", target).await,
            401,
            "{target} meets /admin's policy"
        );
    }
    assert_eq!(
        status(addr, "direct.acme.test", "/administrator").await,
        200
    );
    assert_eq!(folding.requests(), 6, "only /administrator was forwarded");
}

/// Without the annotation, matching is byte-exact (RFC 3986: paths are case-sensitive):
/// `/ADMIN` is another path than `/admin`.
#[tokio::test]
async fn by_default_paths_match_byte_exactly() {
    let folding = Upstream::start().await;
    let exact = Upstream::start().await;
    let rg = start(&yaml(folding.addr.port(), exact.addr.port())).await;
    let addr = rg.bound.http.expect("http");
    assert_eq!(status(addr, "exact.acme.test", "/admin").await, 401);
    assert_eq!(status(addr, "exact.acme.test", "/ADMIN").await, 200);
    assert_eq!(status(addr, "folding.acme.test", "/app").await, 200);
    assert_eq!(exact.requests(), 1, "/ADMIN");
    assert_eq!(folding.requests(), 1, "/app via the folding route");
}

/// The annotation is a port's, and takes only "true" or "false".
#[test]
fn the_annotation_is_checked_at_load() {
    let bad = yaml(5001, 5002).replace(
        "roomgate.path.case_insensitive: \"true\"",
        "roomgate.path.case_insensitive: \"yes\"",
    );
    let ctx = roomgate::config::LoadContext {
        vars: Default::default(),
        base_dir: std::env::temp_dir(),
    };
    let e = roomgate::config::Config::from_yaml_str(&bad, &ctx)
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("rooms[0].services[0].ports[0].annotations"),
        "{e}"
    );
    assert!(e.contains("roomgate.path.case_insensitive"), "{e}");
}
