//! Cookie IAP without a browser: the static provider's sign-in, the handoff to route
//! domains, cookies, membership, redirect safety and revocation, against real roomgate
//! instances, real upstreams and a real redis-server.

mod common;

use std::time::{Duration, Instant};

use common::iap::*;
use common::redis::RedisServer;
use common::upstream::Upstream;
use common::*;
use http::StatusCode;

struct Env {
    _rg: roomgate::server::Running,
    up: Upstream,
    browser: Browser,
}

async fn env_with(redis: Option<&str>, participants: &str) -> Env {
    let up = Upstream::start().await;
    let (rg, _) = start_on_free_port(|port| yaml(port, up.addr.port(), redis, participants)).await;
    let addr = rg.bound.http.expect("http");
    Env {
        _rg: rg,
        up,
        browser: Browser::new(addr),
    }
}

async fn env() -> Env {
    env_with(None, DEFAULT_PARTICIPANTS).await
}

/// Security: after sign-in the route domain's session cookie is Secure, HttpOnly,
/// SameSite=Lax, host-only (no Domain) and Path=/, holds an opaque id, and the upstream
/// sees the user and api scope but never the cookie.
#[tokio::test]
async fn static_sign_in_lands_on_the_original_path_with_a_safe_cookie() {
    let mut e = env().await;
    let s = e
        .browser
        .sign_in("app.acme.test", "/reports/q1?year=2026", "Alice@acme.test")
        .await;
    assert_eq!(s.location, "/reports/q1?year=2026");
    let attrs: Vec<String> = s
        .set_cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["httponly", "samesite=lax", "secure", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == want),
            "{want} in {}",
            s.set_cookie
        );
    }
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "{}",
        s.set_cookie
    );
    assert!(s.cookie.len() >= 22, "at least 128 bits");

    let r = get_with(
        e.browser.addr,
        "app.acme.test",
        "/reports/q1",
        &s.cookie,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice@acme.test")
    );
    assert_eq!(
        r.echoed_header("x-meshagent-api-scope").as_deref(),
        Some(r#"{"queues":{"read":true}}"#)
    );
    assert_eq!(
        r.echoed_header("cookie").as_deref(),
        Some("theme=dark; lang=en")
    );
    assert_eq!(e.up.requests(), 1);
}

/// A deep link whose path or query carries encoded spaces, `%23` or a non-UTF-8 escape
/// comes back exactly after sign-in, not as `/`.
#[tokio::test]
async fn deep_links_with_encoded_bytes_survive_sign_in() {
    let mut e = env().await;
    for target in [
        "/files/my%20doc.pdf",
        "/deep/page?q=hello%20world&x=1",
        "/search?q=caf%E9",
        "/x?a=%23b",
    ] {
        let s = e
            .browser
            .sign_in("app.acme.test", target, "alice@acme.test")
            .await;
        assert_eq!(s.location, target);
    }
}

/// A user signed in at the sign-in host reaches a second domain without the sign-in form.
#[tokio::test]
async fn a_second_domain_is_reached_without_signing_in_again() {
    let mut e = env().await;
    e.browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let r = e.browser.visit("beta.test", "/b").await;
    let page = e.browser.start(&location(&r)).await;
    let code = hidden(&page, "code").expect("handed off straight away, no form");
    assert!(hidden(&page, "flow").is_none());
    let r = e.browser.callback("beta.test", &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/b");
    let (cookie, _) = set_cookie(&r, "__meshagent_iap").unwrap();
    let r = get_with(e.browser.addr, "beta.test", "/b", &cookie, &[]).await;
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice@acme.test")
    );
    assert_eq!(
        r.echoed_header("x-meshagent-api-scope").as_deref(),
        Some("{}")
    );
}

/// Only browser navigations are redirected: non-GET, XHR and JSON clients get 401
/// `missing_auth` and no Location; a WebSocket upgrade is judged by the cookie.
#[tokio::test]
async fn non_get_xhr_and_json_clients_get_401_without_a_redirect() {
    let mut e = env().await;
    let addr = e.browser.addr;
    let host = e.browser.host("app.acme.test");
    let html = HTML;
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("POST", vec![html]),
        ("PUT", vec![html]),
        ("GET", vec![html, ("x-requested-with", "XMLHttpRequest")]),
        ("GET", vec![("accept", "application/json")]),
        ("GET", vec![]),
        (
            "GET",
            vec![
                html,
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        ),
    ];
    for (method, headers) in &cases {
        let r = send(addr, method, &host, "/x", headers, b"").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {headers:?}");
        assert_eq!(r.error_code(), "missing_auth");
        assert!(!r.headers.contains_key("location"));
    }
    let r = send(addr, "GET", &host, "/x", &[html], b"").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(e.up.requests(), 0);

    let s = e
        .browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let cookie = format!("__meshagent_iap={}", s.cookie);
    let r = send(
        addr,
        "POST",
        &host,
        "/x",
        &[("cookie", cookie.as_str())],
        b"hi",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["method"], "POST");
    let ws = [
        ("cookie", cookie.as_str()),
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let r = send(addr, "GET", &host, "/ws", &ws, b"").await;
    assert_eq!(r.status, StatusCode::OK, "upgrade authorized by the cookie");
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice@acme.test")
    );
}

/// Security: no request path, however encoded, makes roomgate send the browser
/// off-origin: the sign-in redirect always goes to the sign-in host, and the callback's
/// Location is always a same-origin relative path.
#[tokio::test]
async fn the_open_redirect_corpus_never_yields_an_off_origin_location() {
    let mut e = env().await;
    e.browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let corpus = [
        "//evil.test",
        "//evil.test/%2e%2e",
        "/\\evil.test",
        "/%5Cevil.test",
        "/%5cevil.test/",
        "/%2F%2Fevil.test",
        "/%2f%2fevil.test",
        "/https:evil.test",
        "/https://evil.test",
        "/%09/evil.test",
        "/%20/evil.test",
        "/%0d%0aLocation:%20http://evil.test",
        "/%2e%2e/%2e%2e//evil.test",
        "/..%2f..%2f/evil.test",
        "/@evil.test",
        "/a@evil.test/",
        "/?next=//evil.test",
        "/?url=https://evil.test",
        "http://evil.test/",
        "https://evil.test@app.acme.test/",
    ];
    let auth = format!("{}/.roomgate/start?rs=", e.browser.auth_origin());
    let host = e.browser.host("app.acme.test");
    for p in corpus {
        let (status, loc) = raw_get(e.browser.addr, p, &host).await;
        if status != 302 {
            assert!((400..500).contains(&status), "{p}: {status}");
            assert!(loc.is_none(), "{p}");
            continue;
        }
        let loc = loc.unwrap_or_default();
        assert!(loc.starts_with(&auth), "{p}: {loc}");
        let page = e.browser.start(&loc).await;
        let code = hidden(&page, "code").unwrap_or_else(|| panic!("{p}: no handoff"));
        let r = e.browser.callback("app.acme.test", &code).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{p}");
        let loc = location(&r);
        assert!(loc.starts_with('/'), "{p}: {loc}");
        assert!(
            !loc.starts_with("//") && !loc.starts_with("/\\"),
            "{p}: {loc}"
        );
        assert!(
            !loc.contains('\\') && !loc.contains("%5c") && !loc.contains("%5C"),
            "{p}: {loc}"
        );
        let lower = loc.to_ascii_lowercase();
        assert!(
            !lower.starts_with("/%2f") && !lower.contains("%0d") && !lower.contains("%09"),
            "{p}: {loc}"
        );
    }
}

/// GET an exact request target over a raw HTTP/1.1 connection (clients normalise some of
/// the corpus); the status and the Location header.
async fn raw_get(addr: std::net::SocketAddr, target: &str, host: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let loc = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_owned())
    });
    (status, loc)
}

/// Security: return states are checked at the sign-in host: one signed with another key,
/// for another audience, expired, replayed, oversized or naming an unsafe path or an
/// unrouted host is refused with a 4xx and no redirect.
#[tokio::test]
async fn forged_expired_replayed_and_unsafe_return_states_are_refused() {
    let mut e = env().await;
    let now = roomgate::state::system_clock();
    let port = e.browser.port;
    let keys = cookie_keys();
    let state = |host: &str, path: &str, jti: &str| {
        serde_json::json!({
            "origin": format!("http://{host}:{port}"),
            "host": host,
            "path": path,
            "jti": jti,
        })
    };
    let seal =
        |keys: &[roomgate::sensitive::Secret], aud: &str, exp: i64, v: &serde_json::Value| {
            roomgate::auth::signing::seal(keys, "return", aud, exp, v).unwrap()
        };
    let other_key = vec![roomgate::sensitive::Secret::new([42u8; 32].to_vec())];
    let good = seal(
        &keys,
        "auth.test",
        now + 60,
        &state("app.acme.test", "/", "j1"),
    );
    let bad = [
        seal(
            &other_key,
            "auth.test",
            now + 60,
            &state("app.acme.test", "/", "j2"),
        ),
        seal(
            &keys,
            "app.acme.test",
            now + 60,
            &state("app.acme.test", "/", "j3"),
        ),
        seal(
            &keys,
            "auth.test",
            now - 1,
            &state("app.acme.test", "/", "j4"),
        ),
        seal(
            &keys,
            "auth.test",
            now + 60,
            &state("app.acme.test", "//evil.test", "j5"),
        ),
        seal(&keys, "auth.test", now + 60, &state("evil.test", "/", "j6")),
        format!("{}x", &good),
        "a".repeat(5000),
        "not-a-state".into(),
    ];
    let origin = e.browser.auth_origin();
    for rs in &bad {
        let r = e
            .browser
            .start(&format!("{origin}/.roomgate/start?rs={rs}"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{rs}");
        assert!(!r.headers.contains_key("location"));
    }
    let r = e
        .browser
        .start(&format!("{origin}/.roomgate/start?rs={good}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e
        .browser
        .start(&format!("{origin}/.roomgate/start?rs={good}"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a return state is single-use"
    );
}

/// Security: a handoff code works once, only on the domain it was issued for, only
/// until it expires, only posted from the sign-in host, and not when altered.
#[tokio::test]
async fn tampered_expired_replayed_and_cross_domain_handoff_codes_are_rejected() {
    let redis = RedisServer::start();
    let mut e = env_with(Some(&redis.url()), DEFAULT_PARTICIPANTS).await;
    let b = &mut e.browser;

    // Replayed.
    let code = hidden(
        &b.handoff_page("app.acme.test", "/", "alice@acme.test")
            .await,
        "code",
    )
    .unwrap();
    assert_eq!(
        b.callback("app.acme.test", &code).await.status,
        StatusCode::SEE_OTHER
    );
    let r = b.callback("app.acme.test", &code).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_sign_in");

    // Issued for app.acme.test, posted to docs.acme.test; and it is spent by the attempt.
    let code = hidden(
        &b.handoff_page("app.acme.test", "/", "alice@acme.test")
            .await,
        "code",
    )
    .unwrap();
    let r = b.callback("docs.acme.test", &code).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(set_cookie(&r, "__meshagent_iap").is_none());
    assert_eq!(
        b.callback("app.acme.test", &code).await.status,
        StatusCode::BAD_REQUEST
    );

    // Tampered.
    let code = hidden(
        &b.handoff_page("app.acme.test", "/", "alice@acme.test")
            .await,
        "code",
    )
    .unwrap();
    let mut t = code.clone().into_bytes();
    t[0] = if t[0] == b'A' { b'B' } else { b'A' };
    let r = b
        .callback("app.acme.test", &String::from_utf8(t).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.status,
        b.callback("app.acme.test", &"x".repeat(4000)).await.status
    );

    // Posted by another origin (login CSRF): refused, and the code stays unused.
    let origin_evil = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", "http://evil.test"),
    ];
    let host = b.host("app.acme.test");
    let body = format!("code={code}");
    let r = send(
        b.addr,
        "POST",
        &host,
        "/.roomgate/callback",
        &origin_evil,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let no_origin = [("content-type", "application/x-www-form-urlencoded")];
    let r = send(
        b.addr,
        "POST",
        &host,
        "/.roomgate/callback",
        &no_origin,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Expired: its TTL in the store has passed (PEXPIREAT in the past expires it now).
    let key = format!(
        "roomgate:once:handoff:{}",
        roomgate::auth::signing::digest(&code)
    );
    assert_eq!(redis.cli(&["EXISTS", &key]).trim(), "1");
    assert_eq!(redis.cli(&["PEXPIREAT", &key, "1"]).trim(), "1");
    assert_eq!(
        b.callback("app.acme.test", &code).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// Security: the sign-in form only works for the browser that opened it (its flow
/// cookie), so a login CSRF cannot sign a victim in as someone else.
#[tokio::test]
async fn the_sign_in_form_only_works_in_the_browser_that_opened_it() {
    let mut e = env().await;
    let r = e.browser.visit("app.acme.test", "/").await;
    let r = e.browser.start(&location(&r)).await;
    let flow = hidden(&r, "flow").unwrap();
    let mut other = Browser::new(e.browser.addr);
    other.flow_cookie = Some("A".repeat(43));
    let r = other.login(&flow, "alice@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    other.flow_cookie = None;
    assert_eq!(
        other.login(&flow, "alice@acme.test", PASSWORD).await.status,
        StatusCode::BAD_REQUEST
    );
    // The right browser, wrong password: the form again, 401; then the right one works.
    let r = e.browser.login(&flow, "alice@acme.test", "wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&r.body).contains("Wrong email or password"));
    let r = e.browser.login(&flow, "alice@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(hidden(&r, "code").is_some());
    // The flow is spent.
    assert_eq!(
        e.browser
            .login(&flow, "alice@acme.test", PASSWORD)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

/// Security: password guessing is limited per user (and per client IP): past the limit
/// even the right password is refused with 429.
#[tokio::test]
async fn login_attempts_are_rate_limited_per_user() {
    let mut e = env().await;
    let r = e.browser.visit("app.acme.test", "/").await;
    let r = e.browser.start(&location(&r)).await;
    let flow = hidden(&r, "flow").unwrap();
    for _ in 0..roomgate::signin::LOGIN_LIMIT_PER_USER {
        let r = e.browser.login(&flow, "bob@acme.test", "guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = e.browser.login(&flow, "bob@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    // Another user from the same browser is not locked out by bob's limit.
    let r = e.browser.login(&flow, "alice@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// `yaml` with `127.0.0.1` (every test client's address) as a trusted proxy.
fn yaml_behind_proxy(port: u16, upstream: u16) -> String {
    format!(
        "{}trusted_proxies: [127.0.0.1/32]\n",
        yaml(port, upstream, None, DEFAULT_PARTICIPANTS)
    )
}

/// Fail one static sign-in per attempt allowed per IP, spread over users so no user's own
/// limit is reached, each from the address `xff(i)` gives.
async fn use_up_the_ip_limit(b: &mut Browser, flow: &str, xff: impl Fn(u64) -> String) {
    let users = [
        "bob@acme.test",
        "carol@other.test",
        "dave@other.test",
        "mallory@evilacme.test",
        "mallory@acme.test.evil",
    ];
    let per_user = roomgate::signin::LOGIN_LIMIT_PER_USER;
    assert!(users.len() as u64 * per_user >= roomgate::signin::LOGIN_LIMIT_PER_IP);
    for i in 0..roomgate::signin::LOGIN_LIMIT_PER_IP {
        let user = users[(i / per_user) as usize];
        let from = xff(i);
        let r = b
            .login_with(flow, user, "guess", &[("x-forwarded-for", from.as_str())])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
}

/// Security: behind a trusted proxy the per-IP sign-in limit counts the client address
/// the proxy reports, so users behind one load balancer do not share one bucket.
#[tokio::test]
async fn the_login_ip_limit_counts_the_client_behind_a_trusted_proxy() {
    let up = Upstream::start().await;
    let (rg, _) = start_on_free_port(|port| yaml_behind_proxy(port, up.addr.port())).await;
    let mut b = Browser::new(rg.bound.http.expect("http"));
    let r = b.visit("app.acme.test", "/").await;
    let r = b.start(&location(&r)).await;
    let flow = hidden(&r, "flow").unwrap();
    use_up_the_ip_limit(&mut b, &flow, |_| "198.51.100.7".into()).await;
    let one = [("x-forwarded-for", "198.51.100.7")];
    let r = b.login_with(&flow, "alice@acme.test", "guess", &one).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
    // Another client behind the same proxy has its own bucket.
    let two = [("x-forwarded-for", "203.0.113.9")];
    let r = b.login_with(&flow, "alice@acme.test", PASSWORD, &two).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(hidden(&r, "code").is_some());
}

/// Security: an untrusted client's `X-Forwarded-For` is ignored by the per-IP sign-in
/// limit: changing it on every attempt does not get a fresh bucket.
#[tokio::test]
async fn an_untrusted_client_cannot_dodge_the_login_ip_limit_with_x_forwarded_for() {
    let mut e = env().await;
    let r = e.browser.visit("app.acme.test", "/").await;
    let r = e.browser.start(&location(&r)).await;
    let flow = hidden(&r, "flow").unwrap();
    use_up_the_ip_limit(&mut e.browser, &flow, |i| format!("198.51.100.{}", i + 1)).await;
    let fresh = [("x-forwarded-for", "203.0.113.9")];
    let r = e
        .browser
        .login_with(&flow, "alice@acme.test", PASSWORD, &fresh)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "rate_limited");
}

/// Security: email domains match whole: look-alike domains that end or start with the
/// room's domain are not participants, and a browser sees the HTML 403 with sign-out.
#[tokio::test]
async fn email_domain_suffix_tricks_are_not_participants() {
    for email in ["mallory@evilacme.test", "mallory@acme.test.evil"] {
        let mut e = env().await;
        let s = e.browser.sign_in("app.acme.test", "/", email).await;
        let r = get_with(e.browser.addr, "app.acme.test", "/", &s.cookie, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{email}");
        assert_eq!(r.error_code(), "not_a_participant");
        let r = get_with(e.browser.addr, "app.acme.test", "/", &s.cookie, &[HTML]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let page = String::from_utf8_lossy(&r.body);
        assert!(page.contains("not_a_participant") && page.contains("/.roomgate/signout"));
        assert!(hidden(&r, "csrf").is_some());
        assert_eq!(e.up.requests(), 0);
    }
}

/// Groups from the provider admit through a `groups` rule, with that rule's scope.
#[tokio::test]
async fn a_group_rule_admits_a_member_of_the_group() {
    let mut e = env().await;
    let s = e
        .browser
        .sign_in("app.acme.test", "/", "carol@other.test")
        .await;
    let r = get_with(e.browser.addr, "app.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("carol@other.test")
    );
    let mut fresh = Browser::new(e.browser.addr);
    let s = fresh.sign_in("app.acme.test", "/", "dave@other.test").await;
    let r = get_with(e.browser.addr, "app.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// Security: membership is checked against the current config on every request: a
/// reload that removes a user's rule locks them out at their next request.
#[tokio::test]
async fn a_member_removed_by_a_reload_is_locked_out_at_the_next_request() {
    let up = Upstream::start().await;
    let (rg, port) =
        start_on_free_port(|port| yaml(port, up.addr.port(), None, DEFAULT_PARTICIPANTS)).await;
    let mut b = Browser::new(rg.bound.http.unwrap());
    let s = b.sign_in("app.acme.test", "/", "bob@acme.test").await;
    assert_eq!(
        get_with(b.addr, "app.acme.test", "/", &s.cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    let narrowed = yaml(
        port,
        up.addr.port(),
        None,
        "      - {emails: [alice@acme.test]}",
    );
    rg.shared.replace(config(&narrowed, &[]));
    let r = get_with(b.addr, "app.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "not_a_participant");
}

/// A participant token is accepted as the cookie value; an invalid bearer token is
/// rejected even when a valid session cookie is also sent.
#[tokio::test]
async fn participant_tokens_work_in_the_cookie_and_bad_bearers_are_never_ignored() {
    let mut e = env().await;
    let t = token("acme", "robot", Some(serde_json::json!({"x": 1})));
    let r = get_with(e.browser.addr, "app.acme.test", "/", &t, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("robot")
    );
    assert_eq!(
        r.echoed_header("x-meshagent-api-scope").as_deref(),
        Some(r#"{"x":1}"#)
    );
    let r = get_with(e.browser.addr, "beta.test", "/", &t, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let s = e
        .browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let r = get_with(
        e.browser.addr,
        "app.acme.test",
        "/",
        &s.cookie,
        &[("authorization", "Bearer garbage")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
}

async fn sign_out(b: &Browser, domain: &str, cookie: &str) -> Reply {
    sign_out_with(b, &b.host(domain), &format!("__meshagent_iap={cookie}")).await
}

/// The sign-out form on `host` with `cookie` (a `Cookie` header value), then its POST.
async fn sign_out_with(b: &Browser, host: &str, cookie: &str) -> Reply {
    let page = get(
        b.addr,
        host,
        "/.roomgate/signout",
        &[HTML, ("cookie", cookie)],
    )
    .await;
    let csrf = hidden(&page, "csrf").expect("csrf");
    send(
        b.addr,
        "POST",
        host,
        "/.roomgate/signout",
        &[
            ("cookie", cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    )
    .await
}

/// Security: sign-out needs its CSRF token, clears the cookie, ends the session and the
/// sign-in host session it came from (the next visit needs the password again).
#[tokio::test]
async fn sign_out_needs_its_csrf_token_and_ends_both_sessions() {
    let mut e = env().await;
    let s = e
        .browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let c = format!("__meshagent_iap={}", s.cookie);
    let host = e.browser.host("app.acme.test");
    let form = [
        ("cookie", c.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    for body in ["", "csrf=", "csrf=AAAA"] {
        let r = send(
            e.browser.addr,
            "POST",
            &host,
            "/.roomgate/signout",
            &form,
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(
        get_with(e.browser.addr, "app.acme.test", "/", &s.cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    let r = sign_out(&e.browser, "app.acme.test", &s.cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    let (v, line) = set_cookie(&r, "__meshagent_iap").expect("cleared");
    assert!(v.is_empty() && line.contains("Max-Age=0"), "{line}");
    let r = get_with(e.browser.addr, "app.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The sign-in host session is gone too: the form is shown again.
    let r = e.browser.visit("app.acme.test", "/").await;
    let r = e.browser.start(&location(&r)).await;
    assert!(hidden(&r, "flow").is_some() && hidden(&r, "code").is_none());
}

/// Sign out on the sign-in host itself, with its own session cookie.
async fn sign_out_at_sign_in_host(b: &Browser) -> Reply {
    let c = format!(
        "__Host-roomgate_signin={}",
        b.signin_cookie.as_deref().expect("signed in")
    );
    sign_out_with(b, &b.auth_host(), &c).await
}

/// Security: signing out on one domain, or on the sign-in host, ends the sign-in host
/// session and every domain session handed off from it (a sibling domain is signed out
/// too, and the next visit needs the password again), with Redis and in memory; another
/// user's sessions stay.
#[tokio::test]
async fn sign_out_anywhere_ends_every_domain_session_of_that_sign_in() {
    let redis = RedisServer::start();
    for store in [Some(redis.url()), None] {
        for on_sign_in_host in [false, true] {
            let what = format!(
                "redis: {}, on the sign-in host: {on_sign_in_host}",
                store.is_some()
            );
            let e = env_with(store.as_deref(), DEFAULT_PARTICIPANTS).await;
            let mut alice = Browser::new(e.browser.addr);
            let app = alice.sign_in("app.acme.test", "/", "alice@acme.test").await;
            let docs = alice
                .sign_in("docs.acme.test", "/", "alice@acme.test")
                .await;
            let mut bob = Browser::new(e.browser.addr);
            let bobs = bob.sign_in("docs.acme.test", "/", "bob@acme.test").await;
            for (domain, cookie) in [
                ("app.acme.test", &app.cookie),
                ("docs.acme.test", &docs.cookie),
            ] {
                let r = get_with(e.browser.addr, domain, "/", cookie, &[]).await;
                assert_eq!(r.status, StatusCode::OK, "{what}");
            }
            let r = if on_sign_in_host {
                sign_out_at_sign_in_host(&alice).await
            } else {
                sign_out(&alice, "app.acme.test", &app.cookie).await
            };
            assert_eq!(r.status, StatusCode::OK, "{what}");
            for (domain, cookie) in [
                ("app.acme.test", &app.cookie),
                ("docs.acme.test", &docs.cookie),
            ] {
                let r = get_with(e.browser.addr, domain, "/", cookie, &[]).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{domain}, {what}");
                assert_eq!(r.error_code(), "missing_auth");
                let r = get(
                    e.browser.addr,
                    &alice.host(domain),
                    "/",
                    &[HTML, ("cookie", &format!("__meshagent_iap={cookie}"))],
                )
                .await;
                assert_eq!(r.status, StatusCode::FOUND, "{domain}, {what}");
            }
            // The sign-in host no longer skips the provider: the form is shown again.
            let r = alice.visit("docs.acme.test", "/").await;
            let r = alice.start(&location(&r)).await;
            assert!(
                hidden(&r, "flow").is_some() && hidden(&r, "code").is_none(),
                "{what}"
            );
            // Bob signed in on his own and is not signed out.
            let r = get_with(e.browser.addr, "docs.acme.test", "/", &bobs.cookie, &[]).await;
            assert_eq!(r.status, StatusCode::OK, "{what}");
        }
    }
}

/// The sign-in host may be a route domain too. There a non-participant's 403 page carries
/// a sign-out form for the domain session, and that form signs out (the sign-in session
/// as well), although the sign-in host's own cookie is also sent.
#[tokio::test]
async fn sign_out_from_the_403_page_works_on_a_sign_in_host_that_is_a_route_domain() {
    let up = Upstream::start().await;
    let (rg, _) = start_on_free_port(|port| {
        yaml(port, up.addr.port(), None, DEFAULT_PARTICIPANTS).replace(
            "routes:\n",
            &format!(
                "routes:\n  - {{domain: auth.test, room: acme, port: {}}}\n",
                up.addr.port()
            ),
        )
    })
    .await;
    let mut b = Browser::new(rg.bound.http.expect("http"));
    let s = b.sign_in("auth.test", "/", "dave@other.test").await;
    let cookies = format!(
        "__Host-roomgate_signin={}; __meshagent_iap={}",
        b.signin_cookie.as_deref().expect("signed in"),
        s.cookie
    );
    let host = b.auth_host();
    let page = get(b.addr, &host, "/", &[HTML, ("cookie", &cookies)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let csrf = hidden(&page, "csrf").expect("sign-out form on the 403 page");
    let r = send(
        b.addr,
        "POST",
        &host,
        "/.roomgate/signout",
        &[
            ("cookie", &cookies),
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", &b.auth_origin()),
        ],
        format!("csrf={csrf}").as_bytes(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let (v, _) = set_cookie(&r, "__meshagent_iap").expect("domain cookie cleared");
    assert!(v.is_empty());
    // Both sessions are over: the domain session is refused and sign-in asks again.
    let r = get_with(b.addr, "auth.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = b.visit("app.acme.test", "/").await;
    let r = b.start(&location(&r)).await;
    assert!(hidden(&r, "flow").is_some() && hidden(&r, "code").is_none());
    assert_eq!(up.requests(), 0);
}

/// Security: a handoff code issued before sign-out cannot create a session after it.
#[tokio::test]
async fn a_handoff_code_redeemed_after_sign_out_creates_no_session() {
    let mut e = env().await;
    let app = e
        .browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let page = e
        .browser
        .handoff_page("docs.acme.test", "/", "alice@acme.test")
        .await;
    let code = hidden(&page, "code").expect("handed off straight away");
    let r = sign_out(&e.browser, "app.acme.test", &app.cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e.browser.callback("docs.acme.test", &code).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(set_cookie(&r, "__meshagent_iap").is_none());
}

/// Wait (polling, bounded) until `domain` rejects `cookie`; returns how long it took.
async fn until_rejected(addr: std::net::SocketAddr, cookie: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let r = get_with(addr, "app.acme.test", "/", cookie, &[]).await;
        if r.status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(r.status, StatusCode::OK);
        assert!(started.elapsed() < limit, "still accepted after {limit:?}");
        tokio::task::yield_now().await;
    }
}

/// Security: with Redis, a session signed out on instance A, or revoked with
/// `roomgate sessions revoke`, is rejected by instance B within one second.
#[tokio::test]
async fn a_session_revoked_on_one_instance_is_rejected_by_another_within_a_second() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let on_redis = |port| {
        yaml(
            port,
            up.addr.port(),
            Some(&redis.url()),
            DEFAULT_PARTICIPANTS,
        )
    };
    let (a, pa) = start_on_free_port(on_redis).await;
    let (b, _) = start_on_free_port(on_redis).await;
    let (addr_a, addr_b) = (a.bound.http.unwrap(), b.bound.http.unwrap());
    let mut browser = Browser::new(addr_a);

    // Sign-out on A.
    let s = browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    assert_eq!(
        get_with(addr_b, "app.acme.test", "/", &s.cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    let r = sign_out(&browser, "app.acme.test", &s.cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    until_rejected(addr_b, &s.cookie, Duration::from_secs(1)).await;

    // `roomgate sessions revoke` (the binary) against the same Redis.
    let s = browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    assert_eq!(
        get_with(addr_b, "app.acme.test", "/", &s.cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.yaml");
    std::fs::write(
        &file,
        yaml(pa, up.addr.port(), Some(&redis.url()), DEFAULT_PARTICIPANTS),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args([
            "sessions",
            "revoke",
            "--config",
            file.to_str().unwrap(),
            "--user",
            "ALICE@acme.test",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until_rejected(addr_b, &s.cookie, Duration::from_secs(1)).await;
    assert_eq!(
        get_with(addr_a, "app.acme.test", "/", &s.cookie, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// Security: Redis holds only digests of session ids and codes: no key or value
/// contains a live cookie value, and a session's key is the SHA-256 of its id.
#[tokio::test]
async fn redis_holds_no_raw_session_id() {
    let redis = RedisServer::start();
    let mut e = env_with(Some(&redis.url()), DEFAULT_PARTICIPANTS).await;
    let s = e
        .browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let signin = e.browser.signin_cookie.clone().unwrap();
    let keys = redis.cli(&["--scan"]);
    let mut dump = keys.clone();
    for key in keys.lines().filter(|k| !k.is_empty()) {
        let kind = redis.cli(&["TYPE", key]);
        let v = match kind.trim() {
            "string" => redis.cli(&["GET", key]),
            "set" => redis.cli(&["SMEMBERS", key]),
            other => panic!("unexpected type {other} for {key}"),
        };
        dump.push_str(&v);
    }
    for secret in [&s.cookie, &signin] {
        assert!(!dump.contains(secret.as_str()), "a raw id is in Redis");
    }
    let key = format!(
        "roomgate:session:{}",
        roomgate::auth::signing::digest(&s.cookie)
    );
    assert!(keys.lines().any(|k| k == key), "{keys}");
    let ttl: i64 = redis.cli(&["PTTL", &key]).trim().parse().unwrap();
    assert!(
        ttl > 0 && ttl <= 30 * 60 * 1000,
        "idle lifetime bounds the key: {ttl}"
    );
}

/// A domain routed only by path (`api.acme.test` serves `/v1` and nothing at `/`) still
/// has roomgate's own sign-in paths: the handoff lands there, the session works under
/// `/v1`, and sign-out works there too.
#[tokio::test]
async fn a_domain_routed_only_by_path_completes_sign_in_and_sign_out() {
    let mut e = env().await;
    let r = e.browser.visit("api.acme.test", "/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing is routed at /");
    let s = e
        .browser
        .sign_in("api.acme.test", "/v1/items?page=2", "alice@acme.test")
        .await;
    assert_eq!(s.location, "/v1/items?page=2");
    let r = get_with(e.browser.addr, "api.acme.test", "/v1/items", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice@acme.test")
    );
    let r = sign_out(&e.browser, "api.acme.test", &s.cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(set_cookie(&r, "__meshagent_iap").is_some_and(|(v, _)| v.is_empty()));
    let r = get_with(e.browser.addr, "api.acme.test", "/v1/items", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // An unconfigured domain still has no sign-in paths.
    let r = e.browser.callback("nowhere.test", "code").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Security: the handoff posts its code only to an origin roomgate serves: a `Host`
/// port (or scheme) the client chose in the request that was sent to sign in is refused
/// at the sign-in host, before any code exists.
#[tokio::test]
async fn a_handoff_to_a_port_or_scheme_roomgate_does_not_serve_is_refused() {
    let mut e = env().await;
    e.browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    // The attacker's link: a visit with a port of their choosing in `Host`.
    let r = get(e.browser.addr, "app.acme.test:4444", "/", &[HTML]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let r = e.browser.start(&location(&r)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_sign_in");
    assert!(hidden(&r, "code").is_none(), "no code was issued");

    let now = roomgate::state::system_clock();
    let port = e.browser.port;
    let rs = |origin: String, jti: &str| {
        let v = serde_json::json!({
            "origin": origin,
            "host": "app.acme.test",
            "path": "/",
            "jti": jti,
        });
        roomgate::auth::signing::seal(&cookie_keys(), "return", "auth.test", now + 60, &v).unwrap()
    };
    let auth_origin = e.browser.auth_origin();
    let start_with = |rs: String| format!("{auth_origin}/.roomgate/start?rs={rs}");
    for (i, origin) in [
        format!("https://app.acme.test:{port}"),
        "https://app.acme.test".to_owned(),
        "http://app.acme.test:4444".to_owned(),
        format!("http://evil.test:{port}"),
        format!("http://app.acme.test:{port}@evil.test"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = e
            .browser
            .start(&start_with(rs(origin.clone(), &format!("bad{i}"))))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{origin}");
        assert!(hidden(&r, "code").is_none(), "{origin}");
    }
    for (i, origin) in [
        format!("http://app.acme.test:{port}"),
        "http://app.acme.test".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let r = e
            .browser
            .start(&start_with(rs(origin.clone(), &format!("good{i}"))))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{origin}");
        assert!(hidden(&r, "code").is_some(), "{origin}");
    }
}

/// Security: a session is valid only on the domain it was handed off to: a cookie value
/// from one domain (or the sign-in host's own session) presented on another is treated
/// as no session, and a domain's session does not work as the sign-in host's.
#[tokio::test]
async fn a_session_from_one_domain_is_not_signed_in_on_another() {
    let mut e = env().await;
    let s = e
        .browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let addr = e.browser.addr;
    assert_eq!(
        get_with(addr, "app.acme.test", "/", &s.cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    let r = get_with(addr, "docs.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "missing_auth");
    let r = get_with(addr, "docs.acme.test", "/", &s.cookie, &[HTML]).await;
    assert_eq!(r.status, StatusCode::FOUND, "a browser is sent to sign in");
    assert!(location(&r).starts_with(&format!("{}/.roomgate/start?rs=", e.browser.auth_origin())));
    let signin = e
        .browser
        .signin_cookie
        .clone()
        .expect("sign-in host session");
    for domain in ["app.acme.test", "docs.acme.test"] {
        let r = get_with(addr, domain, "/", &signin, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{domain}");
    }
    assert_eq!(e.up.requests(), 1);
    // A domain's session value as the sign-in host's cookie: the form, no handoff.
    let mut other = Browser::new(addr);
    other.signin_cookie = Some(s.cookie.clone());
    let r = other.visit("docs.acme.test", "/").await;
    let r = other.start(&location(&r)).await;
    assert!(hidden(&r, "code").is_none() && hidden(&r, "flow").is_some());
}

/// An expired or invalid participant token in the cookie does not lock a browser out:
/// a navigation is sent to sign in (whose session then replaces the cookie); API clients
/// still get 401 `invalid_token`.
#[tokio::test]
async fn an_expired_token_cookie_sends_a_browser_to_sign_in() {
    let mut e = env().await;
    let now = roomgate::state::system_clock();
    let expired = roomgate::auth::token::mint(
        "test",
        &roomgate::sensitive::Secret::new(TOKEN_SECRET),
        "acme",
        "robot",
        None,
        Some(Duration::from_secs(60)),
        now - 3600,
    )
    .unwrap();
    let addr = e.browser.addr;
    for bad in [expired.as_str(), "a.b.c"] {
        let r = get_with(addr, "app.acme.test", "/", bad, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(r.error_code(), "invalid_token");
        let r = get_with(addr, "app.acme.test", "/", bad, &[HTML]).await;
        assert_eq!(r.status, StatusCode::FOUND, "{bad}");
        let page = e.browser.start(&location(&r)).await;
        assert_eq!(page.status, StatusCode::OK);
    }
    // A valid token for another room is still refused, not sent round sign-in.
    let other = token("beta", "robot", None);
    let r = get_with(addr, "app.acme.test", "/", &other, &[HTML]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(e.up.requests(), 0);
}

/// Security (login CSRF through a sibling domain): the sign-in host's flow and session
/// cookies are `__Host-` cookies (Secure, Path=/, no Domain), which a browser accepts from
/// no other host; an unprefixed flow cookie a sibling domain planted is ignored and a
/// fresh one issued. Neither cookie ever reaches an upstream.
#[tokio::test]
async fn the_sign_in_host_cookies_are_host_prefixed_and_planted_ones_are_ignored() {
    let mut e = env().await;
    let check = |line: &str| {
        let attrs: Vec<String> = line
            .split(';')
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(attrs.iter().any(|a| a == "secure"), "{line}");
        assert!(attrs.iter().any(|a| a == "path=/"), "{line}");
        assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{line}");
    };
    let planted = "A".repeat(43);
    let r = e.browser.visit("app.acme.test", "/").await;
    let cookie = format!("__roomgate_flow={planted}");
    let r = get(
        e.browser.addr,
        &e.browser.auth_host(),
        location(&r).strip_prefix(&e.browser.auth_origin()).unwrap(),
        &[HTML, ("cookie", cookie.as_str())],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let (flow, line) = set_cookie(&r, "__Host-roomgate_flow").expect("a fresh flow cookie");
    assert_ne!(flow, planted);
    check(&line);
    e.browser.flow_cookie = Some(flow);
    let form = hidden(&r, "flow").unwrap();
    let r = e.browser.login(&form, "alice@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, line) = set_cookie(&r, "__Host-roomgate_signin").expect("sign-in cookie");
    check(&line);

    let code = hidden(&r, "code").unwrap();
    let r = e.browser.callback("app.acme.test", &code).await;
    let (session, _) = set_cookie(&r, "__meshagent_iap").unwrap();
    let c = format!(
        "a=1; __Host-roomgate_signin=s; __Host-roomgate_flow=f; __roomgate_flow=g; \
         __meshagent_iap={session}; b=2"
    );
    let r = get(
        e.browser.addr,
        &e.browser.host("app.acme.test"),
        "/",
        &[("cookie", c.as_str())],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed_header("cookie").as_deref(), Some("a=1; b=2"));
}
