//! Structural parsing and cross-field validation, collecting every error with its path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;

use super::model::*;
use super::policy::{self, Policy, Validation};
use super::secret_ref::{reported, SecretRef};
use super::yaml::{self, Value};
use super::{Config, ConfigError, ConfigErrors, LoadContext, PortSpec};
use crate::canonical::DomainPattern;

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

/// Parse the document section by section (and room by room, route by route) so that
/// structural errors in different places are all reported.
pub(super) fn parse(src: &str) -> Result<FileConfig, ConfigErrors> {
    let doc = yaml::parse_document(src)
        .map_err(|(path, m)| ConfigErrors(vec![ConfigError::at(path, m)]))?;
    let Value::Mapping(map) = doc else {
        return Err(ConfigErrors(vec![ConfigError::at(
            "",
            "the config must be a YAML mapping",
        )]));
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        match key.as_str() {
            Some(k) if TOP_LEVEL.contains(&k) => {}
            Some(k) => errors.push(ConfigError::at(k, "unknown field")),
            None => errors.push(ConfigError::at("", "keys must be strings")),
        }
    }
    for (name, value) in &map {
        let Some(name) = name.as_str() else { continue };
        match (name, value) {
            ("rooms" | "routes", Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{name}[{i}]");
                    let res = if name == "rooms" {
                        yaml::from_value::<Room>(item.clone()).map(|_| ())
                    } else {
                        yaml::from_value::<Route>(item.clone()).map(|_| ())
                    };
                    if let Err((sub, msg)) = res {
                        errors.push(reported(join(&path, &sub), msg));
                    }
                }
            }
            _ if TOP_LEVEL.contains(&name) => {
                let mut single = serde_yaml_mapping();
                single.insert(Value::String(name.into()), value.clone());
                if let Err((sub, msg)) = yaml::from_value::<Partial>(Value::Mapping(single)) {
                    errors.push(reported(sub, msg));
                }
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    yaml::from_value::<FileConfig>(Value::Mapping(map))
        .map_err(|(path, msg)| ConfigErrors(vec![reported(path, msg)]))
}

fn serde_yaml_mapping() -> super::yaml::Mapping {
    super::yaml::Mapping::new()
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
    Ok(Config {
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

fn check_rooms(c: &mut Checker<'_>, file: &FileConfig) -> Vec<Arc<PortSpec>> {
    let mut ports = Vec::new();
    let mut room_names = HashSet::new();
    let max_body = file.limits.max_body_bytes;
    for (ri, room) in file.rooms.iter().enumerate() {
        let rpath = format!("rooms[{ri}]");
        if !policy::valid_name(&room.name) {
            c.err(
                format!("{rpath}.name"),
                "room names may hold only letters, digits, '-', '_', '.'",
            );
        }
        if !room_names.insert(room.name.as_str()) {
            c.err(
                format!("{rpath}.name"),
                format!("duplicate room {:?}", room.name),
            );
        }
        for (pi, rule) in room.participants.iter().enumerate() {
            let ppath = format!("{rpath}.participants[{pi}]");
            if rule.emails.is_empty() && rule.email_domains.is_empty() && rule.groups.is_empty() {
                c.err(&ppath, "a rule needs emails, email_domains or groups");
            }
            for (ei, e) in rule.emails.iter().enumerate() {
                if crate::canonical::normalize_email(e).is_none() {
                    c.err(
                        format!("{ppath}.emails[{ei}]"),
                        format!("{e:?} is not an email"),
                    );
                }
            }
            for (di, d) in rule.email_domains.iter().enumerate() {
                if d.is_empty()
                    || d.contains('@')
                    || d.starts_with('.')
                    || d.contains(char::is_whitespace)
                {
                    c.err(
                        format!("{ppath}.email_domains[{di}]"),
                        format!("{d:?} is not a domain (write acme.test, not @acme.test)"),
                    );
                }
            }
            if let Some(api) = &rule.api {
                if !api.is_object() {
                    c.err(format!("{ppath}.api"), "the api scope must be a mapping");
                }
            }
        }
        let mut port_owner: HashMap<u16, &str> = HashMap::new();
        let mut service_names = HashSet::new();
        for (si, svc) in room.services.iter().enumerate() {
            let spath = format!("{rpath}.services[{si}]");
            if !service_names.insert(svc.name.as_str()) {
                c.err(
                    format!("{spath}.name"),
                    format!("duplicate service {:?}", svc.name),
                );
            }
            let host = svc.host.as_deref().unwrap_or(&room.host);
            for (pi, port) in svc.ports.iter().enumerate() {
                let ppath = format!("{spath}.ports[{pi}]");
                if port.num == 0 {
                    c.err(format!("{ppath}.num"), "port 0 is not a port");
                }
                if let Some(other) = port_owner.insert(port.num, &svc.name) {
                    c.err(
                        format!("{ppath}.num"),
                        format!(
                            "port {} is already used by service {other:?} in room {:?}",
                            port.num, room.name
                        ),
                    );
                }
                if let Some(l) = &port.liveness {
                    if !l.starts_with('/') {
                        c.err(
                            format!("{ppath}.liveness"),
                            "must be a path starting with /",
                        );
                    }
                }
                let port_policy = decide_at(
                    c,
                    &format!("{ppath}.annotations"),
                    &port.annotations,
                    None,
                    port,
                    &svc.name,
                    max_body,
                    file,
                );
                let case_insensitive =
                    policy::flag(&port.annotations, policy::PATH_CASE_INSENSITIVE).unwrap_or_else(
                        |e| {
                            c.err(format!("{ppath}.annotations"), e);
                            false
                        },
                    );
                let mut endpoints = Vec::new();
                let mut seen = HashSet::new();
                for (ei, ep) in port.endpoints.iter().enumerate() {
                    let epath = format!("{ppath}.endpoints[{ei}]");
                    check_path(c, format!("{epath}.path"), &ep.path);
                    if ep.annotations.contains_key(policy::PATH_CASE_INSENSITIVE) {
                        c.err(
                            format!("{epath}.annotations"),
                            format!("{} is a port annotation", policy::PATH_CASE_INSENSITIVE),
                        );
                    }
                    let key = ep.path.trim_end_matches('/');
                    let key = if case_insensitive {
                        key.to_ascii_lowercase()
                    } else {
                        key.to_owned()
                    };
                    if !seen.insert(key) {
                        c.err(
                            format!("{epath}.path"),
                            format!("duplicate endpoint {:?}", ep.path),
                        );
                    }
                    if let Some(p) = decide_at(
                        c,
                        &format!("{epath}.annotations"),
                        &port.annotations,
                        Some(&ep.annotations),
                        port,
                        &svc.name,
                        max_body,
                        file,
                    ) {
                        endpoints.push((ep.path.clone(), Arc::new(p)));
                    }
                }
                endpoints.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
                let authority = authority(host, port.num);
                let upstream = match authority.parse::<http::uri::Authority>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        c.err(format!("{spath}.host"), format!("{host:?} is not a host"));
                        None
                    }
                };
                if let (Some(policy), Some(upstream)) = (port_policy, upstream) {
                    ports.push(Arc::new(PortSpec {
                        room: room.name.clone(),
                        service: svc.name.clone(),
                        num: port.num,
                        upstream,
                        published: port.published,
                        public: port.public,
                        liveness: port.liveness.clone(),
                        h2c: port.h2c,
                        case_insensitive,
                        policy: Arc::new(policy),
                        endpoints,
                    }));
                }
            }
        }
    }
    ports
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_at(
    c: &mut Checker<'_>,
    path: &str,
    port_ann: &BTreeMap<String, String>,
    ep_ann: Option<&BTreeMap<String, String>>,
    port: &Port,
    service: &str,
    max_body: u64,
    file: &FileConfig,
) -> Option<Policy> {
    let merged = policy::effective_annotations(port_ann, ep_ann);
    match policy::decide(&merged, port.public, service, max_body) {
        Ok(p) => {
            if p.validation == Validation::Cookie && file.iap.is_none() {
                c.err(path, "validation method cookie needs an iap block");
            }
            if p.queue.is_some() && !policy::valid_name(service) {
                c.err(
                    path,
                    "service names used as processors must be simple names",
                );
            }
            Some(p)
        }
        Err(msgs) => {
            for m in msgs {
                c.err(path, m);
            }
            None
        }
    }
}

fn check_routes(c: &mut Checker<'_>, file: &FileConfig, ports: &[Arc<PortSpec>]) {
    let mut domains: HashMap<String, usize> = HashMap::new();
    for (i, route) in file.routes.iter().enumerate() {
        let rpath = format!("routes[{i}]");
        match DomainPattern::parse(&route.domain) {
            Ok(d) => {
                if let Some(first) = domains.insert(d.to_string(), i) {
                    c.err(
                        format!("{rpath}.domain"),
                        format!("duplicate domain {:?} (also routes[{first}])", route.domain),
                    );
                }
            }
            Err(m) => c.err(format!("{rpath}.domain"), m),
        }
        if !file.rooms.iter().any(|r| r.name == route.room) {
            c.err(
                format!("{rpath}.room"),
                format!("unknown room {:?}", route.room),
            );
            continue;
        }
        if route.port.is_none() && route.paths.is_empty() {
            c.err(&rpath, "a route needs a port or paths");
        }
        let check_port = |c: &mut Checker<'_>, path: String, num: u16| match ports
            .iter()
            .find(|p| p.room == route.room && p.num == num)
        {
            None => c.err(path, format!("room {:?} has no port {num}", route.room)),
            Some(p) if !p.published => c.err(
                path,
                format!("port {num} of room {:?} is not published", route.room),
            ),
            Some(_) => {}
        };
        if let Some(num) = route.port {
            check_port(c, format!("{rpath}.port"), num);
        }
        let mut seen = HashSet::new();
        for (pi, p) in route.paths.iter().enumerate() {
            let ppath = format!("{rpath}.paths[{pi}]");
            check_path(c, format!("{ppath}.path"), &p.path);
            if !seen.insert((p.path.trim_end_matches('/').to_owned(), p.match_)) {
                c.err(
                    format!("{ppath}.path"),
                    format!("duplicate path {:?}", p.path),
                );
            }
            check_port(c, format!("{ppath}.port"), p.port);
        }
    }
}

/// Participant emails and domains in the form requests compare them in, once at load
/// rather than on every request.
fn normalize_participants(rooms: &mut [Room]) {
    rooms
        .iter_mut()
        .flat_map(|r| r.participants.iter_mut())
        .for_each(ParticipantRule::normalize);
}

/// A route or endpoint path must be written as requests are matched: in canonical form
/// (`/%7Eb` would never match, since requests arrive as `/~b`). A trailing `/` is allowed.
fn check_path(c: &mut Checker<'_>, at: String, path: &str) {
    if !path.starts_with('/') {
        c.err(at, "must start with /");
        return;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        t => t,
    };
    match crate::canonical::canonical_path(trimmed) {
        Ok(canon) if canon == trimmed => {}
        Ok(canon) => c.err(at, format!("must be written in canonical form: {canon:?}")),
        Err(e) => c.err(at, format!("is not a valid path: {e}")),
    }
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
