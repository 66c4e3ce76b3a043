//! Structural parsing and cross-field validation, collecting every error with its path.

use std::collections::HashSet;

use base64::Engine;

use super::model::*;
use super::secret_ref::{reported, SecretRef};
use super::validate_rooms::{check_rooms, normalize_participants};
use super::validate_routes::check_routes;
use super::yaml::{self, Value};
use super::{Config, ConfigError, ConfigErrors, LoadContext};

/// The shortest IAP session and idle lifetime accepted.
const MIN_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(60);

const TOP_LEVEL: &[&str] = &[
    "version",
    "listen",
    "tls",
    "redis",
    "tokens",
    "secrets",
    "limits",
    "trusted_proxies",
    "iap",
    "rooms",
    "routes",
    "embed",
    "identity_assertion",
];

/// Parse the document section by section, room by room and route by route, so that
/// structural errors in different places are all reported in document order. Rooms and
/// routes are read one item at a time from the parser ([`yaml::stream`]): with 100 000
/// routes, the document is never held whole, only the typed items.
pub(super) fn parse(src: &str) -> Result<FileConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut items = Items::default();
    // The sections other than rooms and routes, checked again together below.
    let mut rest = yaml::Mapping::new();
    let mapping = yaml::stream(src, &["rooms", "routes"], &mut |entry| match entry {
        yaml::Entry::Item { key, index, value } => items.add(key, index, value, &mut errors),
        yaml::Entry::Field(key, value) => match (key.as_str(), value) {
            (None, _) => errors.push(ConfigError::at("", "keys must be strings")),
            // A list the parser kept whole (it carries an anchor).
            (Some(name @ ("rooms" | "routes")), Value::Sequence(list)) => {
                for (index, value) in list.into_iter().enumerate() {
                    items.add(name, index, value, &mut errors);
                }
            }
            // Not a sequence: the whole-document pass below reports it.
            (Some("rooms" | "routes"), value) => {
                rest.insert(key, value);
            }
            (Some(name), value) if TOP_LEVEL.contains(&name) => {
                let mut single = yaml::Mapping::new();
                single.insert(key.clone(), value.clone());
                if let Err((sub, msg)) = yaml::from_value::<Partial>(Value::Mapping(single)) {
                    errors.push(reported(sub, msg));
                }
                rest.insert(key, value);
            }
            (Some(name), _) => errors.push(ConfigError::at(name, "unknown field")),
        },
    })
    .map_err(|(path, m)| ConfigErrors(vec![ConfigError::at(path, m)]))?;
    if !mapping {
        return Err(ConfigErrors(vec![ConfigError::at(
            "",
            "the config must be a YAML mapping",
        )]));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut file = yaml::from_value::<FileConfig>(Value::Mapping(rest))
        .map_err(|(path, msg)| ConfigErrors(vec![reported(path, msg)]))?;
    file.rooms = items.rooms;
    file.routes = items.routes;
    Ok(file)
}

/// The rooms and routes read so far.
#[derive(Default)]
struct Items {
    rooms: Vec<Room>,
    routes: Vec<Route>,
}

impl Items {
    /// Type item `index` of the top-level list `key`, or report why it does not fit.
    fn add(&mut self, key: &str, index: usize, value: Value, errors: &mut Vec<ConfigError>) {
        let checked = match key {
            "rooms" => yaml::from_value(value).map(|room| self.rooms.push(room)),
            _ => yaml::from_value(value).map(|route| self.routes.push(route)),
        };
        if let Err((sub, msg)) = checked {
            errors.push(reported(join(&format!("{key}[{index}]"), &sub), msg));
        }
    }
}

fn join(prefix: &str, sub: &str) -> String {
    match sub {
        "" => prefix.to_owned(),
        s if s.starts_with('[') => format!("{prefix}{s}"),
        s => format!("{prefix}.{s}"),
    }
}

/// Every top-level section optional, for checking one section alone.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Partial {
    version: Option<String>,
    listen: Option<Listen>,
    tls: Option<Tls>,
    redis: Option<Redis>,
    tokens: Option<Tokens>,
    secrets: Option<Secrets>,
    limits: Option<Limits>,
    trusted_proxies: Option<Vec<ipnet::IpNet>>,
    iap: Option<Iap>,
    embed: Option<Embed>,
    identity_assertion: Option<IdentityAssertion>,
}

pub(super) struct Checker<'a> {
    ctx: &'a LoadContext,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    pub(super) fn err(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError::at(path, msg));
    }

    pub(super) fn secret(&mut self, path: &str, r: &SecretRef) -> Option<crate::sensitive::Secret> {
        match self.ctx.resolve(r) {
            Ok(s) => Some(s),
            Err(m) => {
                self.err(path, m);
                None
            }
        }
    }

    /// A base64 key of at least `min` bytes.
    fn key(&mut self, path: &str, r: &SecretRef, min: usize) -> Option<crate::sensitive::Secret> {
        let raw = self.secret(path, r)?;
        let text = raw.expose_str().map(str::trim).unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text));
        match decoded {
            Ok(bytes) if bytes.len() >= min => Some(crate::sensitive::Secret::new(bytes)),
            Ok(bytes) => {
                self.err(
                    path,
                    format!("key is {} bytes; at least {min} are required", bytes.len()),
                );
                None
            }
            Err(_) => {
                self.err(path, "key must be base64");
                None
            }
        }
    }
}

pub(super) fn check(mut file: FileConfig, ctx: &LoadContext) -> Result<Config, ConfigErrors> {
    let mut c = Checker {
        ctx,
        errors: Vec::new(),
    };
    if file.version != "v1" {
        c.err(
            "version",
            format!("unsupported version {:?}; expected v1", file.version),
        );
    }
    if file.listen.http.is_none() && file.listen.https.is_none() {
        c.err("listen", "give at least one of http or https");
    }
    let mut certificates = Vec::new();
    match (&file.listen.https, &file.tls) {
        (Some(_), None) => c.err("tls", "listen.https needs tls.certificates"),
        (_, Some(tls)) => {
            if tls.certificates.is_empty() {
                c.err("tls.certificates", "at least one certificate is required");
            }
            for (i, pair) in tls.certificates.iter().enumerate() {
                let cert = ctx.resolve_path(&pair.cert);
                let key = ctx.resolve_path(&pair.key);
                match super::certs::load_pair(&cert, &key) {
                    Ok(loaded) => certificates.push(loaded),
                    Err((which, message)) => {
                        let field = match which {
                            super::certs::PairFile::Cert => "cert",
                            super::certs::PairFile::Key => "key",
                        };
                        c.err(format!("tls.certificates[{i}].{field}"), message);
                    }
                }
            }
            if let Some(i) = tls.default_certificate {
                if i >= tls.certificates.len() {
                    c.err("tls.default_certificate", "index out of range");
                }
            }
        }
        _ => {}
    }
    if file.listen.redirect_http_to_https && file.listen.https.is_none() {
        c.err("listen.redirect_http_to_https", "needs listen.https");
    }

    let l = &file.limits;
    if l.max_connections == 0 {
        c.err("limits.max_connections", "must be at least 1");
    }
    if l.max_header_bytes < 8192 {
        c.err("limits.max_header_bytes", "must be at least 8192");
    }
    if !(1..=Limits::MAX_HEADERS_CAP).contains(&l.max_headers) {
        c.err(
            "limits.max_headers",
            format!(
                "must be between 1 and {} (the framing watch reads no more headers)",
                Limits::MAX_HEADERS_CAP
            ),
        );
    }
    if l.liveness_interval.0.is_zero() {
        c.err("limits.liveness_interval", "must be positive");
    }

    let mut token_keys = Vec::new();
    let mut kids = HashSet::new();
    for (i, k) in file.tokens.keys.iter().enumerate() {
        let path = format!("tokens.keys[{i}]");
        if !kids.insert(k.kid.clone()) {
            c.err(format!("{path}.kid"), format!("duplicate kid {:?}", k.kid));
        }
        if let Some(s) = c.secret(&format!("{path}.secret"), &k.secret) {
            if s.len() < 32 {
                c.err(
                    format!("{path}.secret"),
                    format!("HS256 keys need at least 32 bytes, got {}", s.len()),
                );
            } else {
                token_keys.push((k.kid.clone(), s));
            }
        }
    }

    let redis = file
        .redis
        .as_ref()
        .and_then(|r| super::topology::check(&mut c, r));
    let mut secrets_key = None;
    if file.secrets.backend == SecretsBackend::Redis {
        if file.redis.is_none() {
            c.err("secrets.backend", "the redis backend needs a redis block");
        }
        match &file.secrets.key {
            Some(k) => {
                secrets_key = c.key("secrets.key", k, 32);
                if secrets_key.as_ref().is_some_and(|k| k.len() != 32) {
                    c.err("secrets.key", "the AES-256 key must be exactly 32 bytes");
                    secrets_key = None;
                }
            }
            None => c.err("secrets.key", "the redis backend needs an encryption key"),
        }
    }

    let mut cookie_keys = Vec::new();
    let mut oidc_client_secret = None;
    if let Some(iap) = file.iap.as_mut() {
        match normalize_auth_url(&iap.auth_url) {
            Ok(url) => iap.auth_url = url,
            Err(m) => c.err("iap.auth_url", m),
        }
    }
    if let Some(iap) = &file.iap {
        if iap.cookie_keys.is_empty() {
            c.err("iap.cookie_keys", "at least one key is required");
        }
        for (i, k) in iap.cookie_keys.iter().enumerate() {
            if let Some(s) = c.key(&format!("iap.cookie_keys[{i}]"), k, 32) {
                cookie_keys.push(s);
            }
        }
        match iap.provider {
            IapProvider::Oidc => match &iap.oidc {
                Some(o) => {
                    oidc_client_secret = c.secret("iap.oidc.client_secret", &o.client_secret);
                    if !o.scopes.iter().any(|s| s == "openid") {
                        c.err("iap.oidc.scopes", "must include openid");
                    }
                }
                None => c.err("iap.oidc", "provider oidc needs an oidc block"),
            },
            IapProvider::Static => match &iap.static_users {
                Some(s) => {
                    for (i, u) in s.users.iter().enumerate() {
                        if let Err(m) = super::password::check_hash(&u.password_hash) {
                            c.err(format!("iap.static.users[{i}].password_hash"), m);
                        }
                    }
                }
                None => c.err("iap.static", "provider static needs a static block"),
            },
        }
        // Shorter would end a session before its sign-in could finish.
        for (path, ttl) in [
            ("iap.session_ttl", iap.session_ttl),
            ("iap.idle_ttl", iap.idle_ttl),
        ] {
            if ttl.0 < MIN_SESSION_TTL {
                c.err(path, "must be at least 1m");
            }
        }
        if iap.idle_ttl.0 > iap.session_ttl.0 {
            c.err("iap.idle_ttl", "must not exceed session_ttl");
        }
    }

    let ports = check_rooms(&mut c, &file);
    check_routes(&mut c, &file, &ports);
    for (path, msg) in super::embed::check_embed(&file.embed) {
        c.err(path, msg);
    }
    let assertion = match &file.identity_assertion {
        None => None,
        Some(ia) => match super::embed::check_assertion(ia, ctx) {
            Ok(a) => Some(a),
            Err(errors) => {
                for (path, msg) in errors {
                    c.err(path, msg);
                }
                None
            }
        },
    };

    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    normalize_participants(&mut file.rooms);
    let index = super::RoomIndex::build(&file.rooms, &ports);
    Ok(Config {
        index,
        file,
        token_keys,
        redis,
        secrets_key,
        cookie_keys,
        oidc_client_secret,
        certificates,
        ports,
        assertion,
        hash: String::new(),
        base_dir: ctx.base_dir.clone(),
        vars: super::Vars::default(),
    })
}

/// `iap.auth_url` as browsers will name it in `Origin`: `scheme://host[:port]`, lowercased,
/// without the scheme's default port and without a trailing slash. Sign-in is served at
/// the root of the sign-in host (`/.roomgate/…`), so a path, query, fragment or user info
/// is an error.
fn normalize_auth_url(raw: &str) -> Result<String, String> {
    let shape = "must be an absolute http(s) URL naming only the sign-in host, like https://auth.example.test";
    if raw.contains(['?', '#', '@']) || raw.trim() != raw {
        return Err(shape.into());
    }
    let uri: http::Uri = raw.parse().map_err(|_| shape.to_owned())?;
    let scheme = uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| shape.to_owned())?;
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(shape.into()),
    };
    let authority = uri.authority().ok_or_else(|| shape.to_owned())?;
    if authority.host().is_empty() {
        return Err(shape.into());
    }
    if !matches!(uri.path(), "" | "/") {
        return Err(format!(
            "must have no path (got {:?}): roomgate serves sign-in at the root of the sign-in host, under /.roomgate/",
            uri.path()
        ));
    }
    let host = authority.host().to_ascii_lowercase();
    Ok(match authority.port_u16() {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rooms and routes are read item by item, yet every structural error is reported,
    /// in the order of the document, and a broken item does not hide the next one.
    #[test]
    fn structural_errors_of_every_section_and_item_come_in_document_order() {
        let src = "version: v1\nlisten: {htp: 127.0.0.1:0}\nrooms:\n  - {name: a, bogus: 1}\n  - {name: b}\n  - {nme: c}\nlimits: {max_headers: many}\nroutes:\n  - {domain: a.test, room: a, port: x}\nextra: 1\n";
        let errors: Vec<String> = parse(src)
            .unwrap_err()
            .0
            .iter()
            .map(|e| {
                e.to_string()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            errors,
            [
                "listen.htp",
                "rooms[0].bogus",
                "rooms[2].nme",
                "limits.max_headers",
                "routes[0].port",
                "extra"
            ],
        );
    }

    /// A list that carries an anchor is kept whole by the parser; its items count all the
    /// same.
    #[test]
    fn anchored_room_and_route_lists_are_read_like_any_other() {
        let src = "version: v1\nlisten: {http: 127.0.0.1:0}\nrooms: &r\n  - {name: a}\n  - {name: b}\nroutes: &x [{domain: a.test, room: a, port: 80}]\n";
        let file = parse(src).unwrap();
        assert_eq!(file.rooms.len(), 2);
        assert_eq!(file.routes.len(), 1);
        let errors = parse("rooms: &r\n  - {name: a, bogus: 1}\n").unwrap_err();
        assert_eq!(
            errors.0[0].to_string().split(':').next(),
            Some("rooms[0].bogus")
        );
    }

    fn errors_with_max_headers(n: usize) -> Vec<String> {
        let src =
            format!("version: v1\nlisten: {{http: 127.0.0.1:0}}\nlimits: {{max_headers: {n}}}\n");
        match parse(&src).and_then(|file| check(file, &LoadContext::default())) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// Security: the HTTP/1 framing watch reads at most 512 headers; a config letting the
    /// server accept more would let a 513-header request switch the watch off.
    #[test]
    fn max_headers_above_what_the_framing_watch_reads_is_an_error() {
        assert_eq!(
            errors_with_max_headers(Limits::MAX_HEADERS_CAP),
            Vec::<String>::new()
        );
        assert_eq!(errors_with_max_headers(1), Vec::<String>::new());
        for bad in [Limits::MAX_HEADERS_CAP + 1, 10_000, 0] {
            let errors = errors_with_max_headers(bad);
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(
                errors[0].starts_with("limits.max_headers: must be between 1 and 512"),
                "{bad}: {errors:?}"
            );
        }
    }

    fn errors_with_iap_ttls(session: &str, idle: &str) -> Vec<String> {
        let src = format!(
            "version: v1\nlisten: {{http: 127.0.0.1:0}}\niap:\n  auth_url: https://auth.test\n  \
             provider: static\n  static: {{users: []}}\n  cookie_keys: [{{value: \"{}\"}}]\n  \
             session_ttl: {session}\n  idle_ttl: {idle}\n",
            "k".repeat(44)
        );
        match parse(&src).and_then(|file| check(file, &LoadContext::default())) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// A zero or seconds-long session or idle lifetime would end every session before
    /// its sign-in finished; `roomgate check` says so instead of serving it.
    #[test]
    fn iap_lifetimes_under_a_minute_are_errors() {
        assert_eq!(errors_with_iap_ttls("1h", "1m"), Vec::<String>::new());
        assert_eq!(
            errors_with_iap_ttls("12h", "0s"),
            ["iap.idle_ttl: must be at least 1m"]
        );
        assert_eq!(
            errors_with_iap_ttls("59s", "59s"),
            [
                "iap.session_ttl: must be at least 1m",
                "iap.idle_ttl: must be at least 1m"
            ]
        );
    }

    #[test]
    fn an_auth_url_loses_its_default_port_trailing_slash_and_case() {
        for (raw, want) in [
            ("https://auth.test", "https://auth.test"),
            ("https://auth.test/", "https://auth.test"),
            ("https://auth.test:443", "https://auth.test"),
            ("HTTPS://Auth.Test:443/", "https://auth.test"),
            ("http://auth.test:80", "http://auth.test"),
            ("https://auth.test:8443", "https://auth.test:8443"),
            ("http://auth.test:443", "http://auth.test:443"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(normalize_auth_url(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn an_auth_url_with_a_path_query_user_or_other_scheme_is_refused() {
        for raw in [
            "https://auth.test/sso",
            "https://auth.test/sso/",
            "https://auth.test/?x=1",
            "https://auth.test#f",
            "https://user@auth.test",
            "ftp://auth.test",
            "auth.test",
            "/sso",
            "https://",
            "",
        ] {
            assert!(normalize_auth_url(raw).is_err(), "{raw}");
        }
        let e = normalize_auth_url("https://auth.test/sso").unwrap_err();
        assert!(e.contains("/sso") && e.contains("no path"), "{e}");
    }

    #[test]
    fn a_config_with_an_auth_url_path_names_iap_auth_url_and_a_default_port_is_dropped() {
        let yaml = |url: &str| {
            format!(
                "version: v1\nlisten: {{http: 127.0.0.1:8080}}\niap:\n  auth_url: {url}\n  provider: static\n  static: {{users: []}}\n  cookie_keys: [{{value: \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"}}]\n"
            )
        };
        let ctx = LoadContext {
            vars: Default::default(),
            base_dir: std::env::temp_dir(),
        };
        let errors = Config::from_yaml_str(&yaml("https://auth.test/sso"), &ctx).unwrap_err();
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.to_string().contains("iap.auth_url")),
            "{errors}"
        );
        let config = Config::from_yaml_str(&yaml("https://auth.test:443"), &ctx).unwrap();
        assert_eq!(config.file.iap.unwrap().auth_url, "https://auth.test");
    }
}
