//! IAP test support: configs with a static provider, and the sign-in steps a browser
//! takes, done by hand with explicit cookies so each step can be checked or tampered with.

use std::net::SocketAddr;

use base64::Engine;
use http::StatusCode;

use super::{get, send, Reply};

/// 32 bytes, base64: the cookie key of every IAP test config.
pub const COOKIE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const PASSWORD: &str = "correct horse battery staple";
pub const HTML: (&str, &str) = (
    "accept",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
);

/// The cookie key bytes, to seal test states with.
pub fn cookie_keys() -> Vec<roomgate::sensitive::Secret> {
    vec![roomgate::sensitive::Secret::new(
        base64::engine::general_purpose::STANDARD
            .decode(COOKIE_KEY)
            .expect("base64"),
    )]
}

/// An argon2id hash of `password` (cheap parameters: tests only).
pub fn hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).expect("params");
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"roomgate-test-salt").expect("salt");
    a.hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

pub const DEFAULT_PARTICIPANTS: &str = r#"      - {emails: [alice@acme.test], api: {queues: {read: true}}}
      - {email_domains: [acme.test]}
      - {groups: [ops]}"#;

/// A config: static provider, sign-in host `auth.test:{port}`, route domains
/// `app.acme.test` and `docs.acme.test` (room acme), `beta.test` (room beta, alice only)
/// and `api.acme.test` (room acme, routed only under `/v1`).
pub fn yaml(port: u16, upstream: u16, redis: Option<&str>, participants: &str) -> String {
    let redis = redis
        .map(|u| format!("redis:\n  url: {{value: \"{u}\"}}\n"))
        .unwrap_or_default();
    yaml_with(port, port, upstream, &redis, participants)
}

/// [`yaml`] listening on `listen` with the sign-in host at `public` (the port a browser
/// reaches, say a load balancer's) and a whole `redis:` block (or none).
pub fn yaml_with(
    listen: u16,
    public: u16,
    upstream: u16,
    redis: &str,
    participants: &str,
) -> String {
    let h = hash(PASSWORD);
    let port = public;
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:{listen}
{tokens}{redis}iap:
  auth_url: http://auth.test:{port}
  provider: static
  static:
    users:
      - {{email: alice@acme.test, password_hash: "{h}"}}
      - {{email: bob@acme.test, password_hash: "{h}"}}
      - {{email: carol@other.test, password_hash: "{h}", groups: [ops]}}
      - {{email: dave@other.test, password_hash: "{h}"}}
      - {{email: mallory@evilacme.test, password_hash: "{h}"}}
      - {{email: mallory@acme.test.evil, password_hash: "{h}"}}
  cookie_keys: [{{value: "{COOKIE_KEY}"}}]
  session_ttl: 1h
  idle_ttl: 30m
rooms:
  - name: acme
    participants:
{participants}
    services:
      - name: web
        ports:
          - num: {upstream}
            published: true
            annotations: {{meshagent.request.validation.method: cookie}}
  - name: beta
    participants:
      - {{emails: [alice@acme.test]}}
    services:
      - name: web
        ports:
          - num: {upstream}
            published: true
            annotations: {{meshagent.request.validation.method: cookie}}
routes:
  - {{domain: app.acme.test, room: acme, port: {upstream}}}
  - {{domain: docs.acme.test, room: acme, port: {upstream}}}
  - {{domain: beta.test, room: beta, port: {upstream}}}
  - domain: api.acme.test
    room: acme
    paths: [{{path: /v1, match: prefix, port: {upstream}}}]
"#,
        tokens = super::tokens_block()
    )
}

/// The value `name` is set to by the reply's `Set-Cookie`, with the whole header line.
pub fn set_cookie(r: &Reply, name: &str) -> Option<(String, String)> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            let first = line.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k.trim() == name).then(|| (v.trim().to_owned(), line.to_owned()))
        })
}

/// The `value` of the hidden input `name` in an HTML reply.
pub fn hidden(r: &Reply, name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&r.body);
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub fn location(r: &Reply) -> String {
    r.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One test browser against one roomgate: it keeps the sign-in host's cookies.
pub struct Browser {
    pub addr: SocketAddr,
    pub port: u16,
    pub flow_cookie: Option<String>,
    pub signin_cookie: Option<String>,
}

/// What a finished sign-in left.
pub struct SignedIn {
    /// The `__meshagent_iap` value on the route domain.
    pub cookie: String,
    /// Its whole `Set-Cookie` line.
    pub set_cookie: String,
    /// Where the callback sent the browser.
    pub location: String,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            port: addr.port(),
            flow_cookie: None,
            signin_cookie: None,
        }
    }

    pub fn auth_host(&self) -> String {
        format!("auth.test:{}", self.port)
    }

    pub fn auth_origin(&self) -> String {
        format!("http://auth.test:{}", self.port)
    }

    pub fn host(&self, domain: &str) -> String {
        format!("{domain}:{}", self.port)
    }

    fn auth_cookies(&self) -> String {
        [
            self.flow_cookie
                .as_ref()
                .map(|c| format!("__Host-roomgate_flow={c}")),
            self.signin_cookie
                .as_ref()
                .map(|c| format!("__Host-roomgate_signin={c}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    }

    /// Visit a route domain without a session: the redirect to the sign-in host.
    pub async fn visit(&self, domain: &str, path: &str) -> Reply {
        get(self.addr, &self.host(domain), path, &[HTML]).await
    }

    /// Follow a sign-in redirect to `/.roomgate/start` with this browser's cookies.
    pub async fn start(&mut self, location: &str) -> Reply {
        let path = location
            .strip_prefix(&self.auth_origin())
            .unwrap_or_else(|| panic!("not a sign-in redirect: {location}"));
        assert!(path.starts_with("/.roomgate/start?rs="), "{path}");
        let cookies = self.auth_cookies();
        let r = get(
            self.addr,
            &self.auth_host(),
            path,
            &[HTML, ("cookie", cookies.as_str())],
        )
        .await;
        if let Some((v, _)) = set_cookie(&r, "__Host-roomgate_flow") {
            self.flow_cookie = Some(v);
        }
        r
    }

    /// Post the sign-in form.
    pub async fn login(&mut self, flow: &str, email: &str, password: &str) -> Reply {
        self.login_with(flow, email, password, &[]).await
    }

    /// Post the sign-in form with extra headers (say, an `X-Forwarded-For`).
    pub async fn login_with(
        &mut self,
        flow: &str,
        email: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let body = format!(
            "flow={}&email={}&password={}",
            enc(flow),
            enc(email),
            enc(password)
        );
        let cookies = self.auth_cookies();
        let origin = self.auth_origin();
        let mut headers = vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", cookies.as_str()),
            ("origin", origin.as_str()),
        ];
        headers.extend_from_slice(extra);
        let r = send(
            self.addr,
            "POST",
            &self.auth_host(),
            "/.roomgate/login",
            &headers,
            body.as_bytes(),
        )
        .await;
        if let Some((v, _)) = set_cookie(&r, "__Host-roomgate_signin") {
            self.signin_cookie = Some(v);
        }
        r
    }

    /// Post a handoff code to a route domain's callback, as the sign-in page does.
    pub async fn callback(&self, domain: &str, code: &str) -> Reply {
        let origin = self.auth_origin();
        send(
            self.addr,
            "POST",
            &self.host(domain),
            "/.roomgate/callback",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", origin.as_str()),
            ],
            format!("code={}", enc(code)).as_bytes(),
        )
        .await
    }

    /// The handoff page for a visit to `domain`+`path` (signing in with the form if the
    /// sign-in host has no session for this browser).
    pub async fn handoff_page(&mut self, domain: &str, path: &str, email: &str) -> Reply {
        let r = self.visit(domain, path).await;
        assert_eq!(r.status, StatusCode::FOUND, "visit {path}");
        let r = self.start(&location(&r)).await;
        if hidden(&r, "code").is_some() {
            return r;
        }
        assert_eq!(r.status, StatusCode::OK, "sign-in form");
        let flow = hidden(&r, "flow").expect("flow field");
        let r = self.login(&flow, email, PASSWORD).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "login: {}",
            String::from_utf8_lossy(&r.body)
        );
        r
    }

    /// The whole sign-in, ending with the route domain's cookie.
    pub async fn sign_in(&mut self, domain: &str, path: &str, email: &str) -> SignedIn {
        let page = self.handoff_page(domain, path, email).await;
        let code = hidden(&page, "code").expect("code field");
        let r = self.callback(domain, &code).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "callback");
        let (cookie, line) = set_cookie(&r, "__meshagent_iap").expect("session cookie");
        SignedIn {
            cookie,
            set_cookie: line,
            location: location(&r),
        }
    }
}

/// GET a route domain with a session cookie (and any extra headers).
pub async fn get_with(
    addr: SocketAddr,
    domain: &str,
    path: &str,
    cookie: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let c = format!("theme=dark; __meshagent_iap={cookie}; lang=en");
    let mut h: Vec<(&str, &str)> = vec![("cookie", c.as_str()), ("accept", "application/json")];
    h.extend_from_slice(extra);
    get(addr, &format!("{domain}:{}", addr.port()), path, &h).await
}

/// The sign-out form on a route domain with its session cookie, then its POST.
pub async fn sign_out(b: &Browser, domain: &str, cookie: &str) -> Reply {
    let host = b.host(domain);
    let cookie = format!("__meshagent_iap={cookie}");
    let page = get(
        b.addr,
        &host,
        "/.roomgate/signout",
        &[HTML, ("cookie", &cookie)],
    )
    .await;
    let csrf = hidden(&page, "csrf").expect("csrf");
    send(
        b.addr,
        "POST",
        &host,
        "/.roomgate/signout",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    )
    .await
}

/// Poll (bounded by `limit`) until `addr` rejects `cookie` on `app.acme.test`.
pub async fn until_rejected(addr: SocketAddr, cookie: &str, limit: std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        let r = get_with(addr, "app.acme.test", "/", cookie, &[]).await;
        if r.status == StatusCode::UNAUTHORIZED {
            return;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert!(started.elapsed() < limit, "still accepted after {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two instances sharing only the Redis `redis` (a whole `redis:` block): a session made
/// through one is honoured by the other; signed out on one, or revoked with the
/// `roomgate sessions revoke` binary, it is rejected by both within a second.
pub async fn sessions_are_shared_and_end_everywhere_within_a_second(redis: &str) {
    let up = super::upstream::Upstream::start().await;
    let on_redis = |port| yaml_with(port, port, up.addr.port(), redis, DEFAULT_PARTICIPANTS);
    let (a, pa) = super::start_on_free_port(on_redis).await;
    let (b, _) = super::start_on_free_port(on_redis).await;
    let (addr_a, addr_b) = (a.bound.http.expect("a"), b.bound.http.expect("b"));
    let mut browser = Browser::new(addr_a);
    let second = std::time::Duration::from_secs(1);

    let s = browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let r = get_with(addr_b, "app.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "honoured by the other instance");
    let r = sign_out(&browser, "app.acme.test", &s.cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    until_rejected(addr_b, &s.cookie, second).await;

    let s = browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let r = get_with(addr_b, "app.acme.test", "/", &s.cookie, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("routes.yaml");
    std::fs::write(&file, on_redis(pa)).expect("write the config");
    let out = std::process::Command::new(super::bin())
        .args(["sessions", "revoke", "--config"])
        .arg(&file)
        .args(["--user", "ALICE@acme.test"])
        .output()
        .expect("roomgate sessions revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until_rejected(addr_b, &s.cookie, second).await;
    until_rejected(addr_a, &s.cookie, second).await;
    a.shutdown().await;
    b.shutdown().await;
}
