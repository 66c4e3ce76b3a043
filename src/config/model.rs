//! The config file's schema, field by field: these structs are the operator's manual.
//!
//! Every struct denies unknown fields, so a typo is an error at load rather than a
//! silently ignored setting. Cross-field rules live in `validate.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::secret_ref::SecretRef;

/// A duration written as `250ms`, `10s`, `2h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parse `250ms`, `10s`, `5m`, `2h`, `1d` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// The whole config file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Schema version; only `v1` exists.
    pub version: String,
    /// Addresses roomgate listens on.
    pub listen: Listen,
    /// Certificates for the HTTPS listener.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Shared state (queues, sessions, secrets). Omitted: embedded single-instance mode.
    #[serde(default)]
    pub redis: Option<Redis>,
    /// Keys that verify participant tokens.
    #[serde(default)]
    pub tokens: Tokens,
    /// Where room secrets live.
    #[serde(default)]
    pub secrets: Secrets,
    /// Timeouts and size limits.
    #[serde(default)]
    pub limits: Limits,
    /// CIDRs whose `X-Forwarded-*` headers are believed. Empty: none.
    #[serde(default)]
    #[schemars(with = "Vec<super::schema::Cidr>")]
    pub trusted_proxies: Vec<IpNet>,
    /// Browser sign-in for `cookie` ports.
    #[serde(default)]
    pub iap: Option<Iap>,
    /// Rooms and their services.
    #[serde(default)]
    pub rooms: Vec<Room>,
    /// Domains (and paths) mapped to a room's published port.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Embed sessions: a backend embeds a room's app in an iframe on its own pages.
    #[serde(default)]
    pub embed: Embed,
    /// Sign every forwarded request's identity as an ES256 JWT (`X-MESHAGENT-ASSERTION`).
    #[serde(default)]
    pub identity_assertion: Option<IdentityAssertion>,
}

/// Lifetimes of embed sessions, their access tokens and launch URLs.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Embed {
    /// Longest life of an embed session (1h); a mint's `ttl` may not exceed it.
    pub session_ttl: HumanDuration,
    /// Life of one access token (15m), never past its session's end.
    pub token_ttl: HumanDuration,
    /// Life of a launch URL (60s); it is used once.
    pub launch_ttl: HumanDuration,
    /// Embedded mode (no `redis`): the file holding management keys' SHA-256 digests,
    /// written by `roomgate keys` (relative to the config file; `embed-keys.json`).
    pub keys_file: PathBuf,
}

impl Default for Embed {
    fn default() -> Self {
        Embed {
            session_ttl: HumanDuration(Duration::from_secs(3600)),
            token_ttl: HumanDuration(Duration::from_secs(900)),
            launch_ttl: HumanDuration(Duration::from_secs(60)),
            keys_file: PathBuf::from("embed-keys.json"),
        }
    }
}

/// Keys that sign the identity assertion; the first signs, all are published.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityAssertion {
    /// ES256 (P-256) private keys, PEM (SEC1 or PKCS#8), each with the `kid` services
    /// find it under in the JWKS.
    pub keys: Vec<AssertionKey>,
    /// Life of one assertion (60s).
    #[serde(default = "default_assertion_ttl")]
    pub ttl: HumanDuration,
}

fn default_assertion_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionKey {
    /// The key id services find this key under in the JWKS.
    pub kid: String,
    /// The PEM private key; usually `{file: assertion-es256.pem}`.
    pub private_key: SecretRef,
}

/// Addresses roomgate listens on; at least one of `http` and `https`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Plain HTTP listener (HTTP/1.1 and h2c prior knowledge).
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// TLS listener (HTTP/1.1 and h2 through ALPN); needs `tls.certificates`.
    #[serde(default)]
    pub https: Option<SocketAddr>,
    /// Admin listener: `/healthz`, `/readyz`, `/metrics`, `/ports`. Keep it on loopback.
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Answer every plain-HTTP request with a redirect to HTTPS.
    #[serde(default)]
    pub redirect_http_to_https: bool,
}

/// Certificates for the HTTPS listener.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chains and keys; SNI picks by the names in each certificate.
    pub certificates: Vec<CertificatePair>,
    /// Index into `certificates` served when SNI is absent or unknown. Omitted: the
    /// handshake fails for unknown names.
    #[serde(default)]
    pub default_certificate: Option<usize>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificatePair {
    /// The PEM certificate chain (relative to the config file).
    pub cert: PathBuf,
    /// The PEM private key, RSA or ECDSA, matching the certificate.
    pub key: PathBuf,
}

/// The Redis every instance shares: exactly one of `url`, `cluster` or `sentinel`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    /// One primary: `redis://[user:password@]host:port/db`; usually
    /// `{env: ROOMGATE_REDIS_URL}`.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// A Redis Cluster, found through its seed nodes.
    #[serde(default)]
    pub cluster: Option<RedisCluster>,
    /// A primary that Redis Sentinel watches and replaces on failure.
    #[serde(default)]
    pub sentinel: Option<RedisSentinel>,
    /// How many replicas must hold a queued entry before roomgate answers 202.
    #[serde(default)]
    pub durability: Durability,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisCluster {
    /// Seed nodes, `redis://host:port` (plain strings, no password): the rest of the
    /// cluster is discovered from them, and a seed that is down is skipped.
    pub nodes: Vec<String>,
    /// The nodes' password (`requirepass`), when they ask for one.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisSentinel {
    /// The name the sentinels know the primary by (`sentinel monitor <master> ...`).
    pub master: String,
    /// Sentinels, `redis://host:port` (plain strings, no password); any one that answers
    /// is enough.
    pub nodes: Vec<String>,
    /// The data nodes' password (`requirepass`), when they ask for one. The sentinels
    /// themselves are asked without one.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

/// Before a 202, how many replicas must hold the entry, and how long to wait for them.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Durability {
    /// `WAIT` for this many replicas after each enqueue; 0 acknowledges once the primary
    /// has the entry (a failover may then lose the latest entries).
    #[serde(default)]
    pub replicas: u32,
    /// `WAIT`'s budget; when it passes with fewer replicas, the answer is 503
    /// `queue_unavailable` and the provider's retry is deduplicated.
    #[serde(default = "default_durability_timeout")]
    pub timeout: HumanDuration,
}

fn default_durability_timeout() -> HumanDuration {
    HumanDuration(Duration::from_millis(500))
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            replicas: 0,
            timeout: default_durability_timeout(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    /// HS256 keys, chosen by the token's `kid`. The first one mints.
    #[serde(default)]
    pub keys: Vec<TokenKey>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenKey {
    /// The key id a token names in its `kid` claim.
    pub kid: String,
    /// The HS256 key, at least 32 bytes.
    pub secret: SecretRef,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretsBackend {
    /// Values in a YAML file, as `{env}`/`{file}`/`{value}`.
    #[default]
    File,
    /// Values in Redis, encrypted at rest with the key below.
    Redis,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// `file` (default) or `redis`.
    #[serde(default)]
    pub backend: SecretsBackend,
    /// The secrets file for the `file` backend (relative to the config file).
    #[serde(default = "default_secrets_file")]
    pub file: PathBuf,
    /// AEAD key for the `redis` backend: 32 random bytes, base64.
    #[serde(default)]
    pub key: Option<SecretRef>,
    /// How long a read secret is cached before it is read again.
    #[serde(default = "default_secret_cache_ttl")]
    pub cache_ttl: HumanDuration,
}

fn default_secrets_file() -> PathBuf {
    PathBuf::from("secrets.yaml")
}

fn default_secret_cache_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets {
            backend: SecretsBackend::File,
            file: default_secrets_file(),
            key: None,
            cache_ttl: default_secret_cache_ttl(),
        }
    }
}

/// Limits; each default is what the field's doc says.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Time a client has to send a complete request head (10s).
    pub header_read_timeout: HumanDuration,
    /// Idle keep-alive connections are closed after this (60s).
    pub idle_timeout: HumanDuration,
    /// Concurrent client connections per listener (10000).
    pub max_connections: usize,
    /// Largest request head in bytes (65536); larger gets 431.
    pub max_header_bytes: usize,
    /// Largest number of request headers (100); more gets 431. At most
    /// [`Limits::MAX_HEADERS_CAP`] (512): the HTTP/1 framing watch reads no more than that.
    pub max_headers: usize,
    /// Largest body roomgate buffers: webhooks and cold-start replays (1048576).
    pub max_body_bytes: u64,
    /// Requests served on one client connection before it is closed (10000).
    pub max_requests_per_connection: u64,
    /// Concurrent HTTP/2 streams per client connection (100).
    pub max_concurrent_streams: u32,
    /// Time to open a connection to a service (5s).
    pub upstream_connect_timeout: HumanDuration,
    /// Time for a service to send its response head (60s).
    pub upstream_timeout: HumanDuration,
    /// Interval between liveness polls during a cold start (250ms).
    pub liveness_interval: HumanDuration,
    /// Longest wait for a cold service to become live (30s).
    pub liveness_wait: HumanDuration,
    /// Time in-flight requests get to finish on shutdown (30s).
    pub shutdown_grace: HumanDuration,
    /// Time for a TLS handshake to complete (10s).
    pub tls_handshake_timeout: HumanDuration,
}

impl Limits {
    /// The highest `max_headers`: the HTTP/1 framing watch parses a head with this many
    /// header slots, so a head the server accepts is never one the watch cannot read.
    pub const MAX_HEADERS_CAP: usize = 512;
}

impl Default for Limits {
    fn default() -> Self {
        let s = |n| HumanDuration(Duration::from_secs(n));
        Limits {
            header_read_timeout: s(10),
            idle_timeout: s(60),
            max_connections: 10_000,
            max_header_bytes: 65_536,
            max_headers: 100,
            max_body_bytes: 1_048_576,
            max_requests_per_connection: 10_000,
            max_concurrent_streams: 100,
            upstream_connect_timeout: s(5),
            upstream_timeout: s(60),
            liveness_interval: HumanDuration(Duration::from_millis(250)),
            liveness_wait: s(30),
            shutdown_grace: s(30),
            tls_handshake_timeout: s(10),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IapProvider {
    /// Any OpenID Provider (discovery, code flow with PKCE).
    #[default]
    Oidc,
    /// Users with argon2id password hashes in this file, for local use.
    Static,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Iap {
    /// Public base URL of the central sign-in host.
    pub auth_url: String,
    /// Who signs users in: `oidc` (default) or `static`.
    #[serde(default)]
    pub provider: IapProvider,
    /// The OpenID Provider, for `provider: oidc`.
    #[serde(default)]
    pub oidc: Option<Oidc>,
    /// Local users, for `provider: static`.
    #[serde(default, rename = "static")]
    pub static_users: Option<StaticUsers>,
    /// Cookie and state keys (32+ bytes, base64); the first signs, all verify.
    pub cookie_keys: Vec<SecretRef>,
    /// Absolute session lifetime (12h).
    #[serde(default = "default_session_ttl")]
    pub session_ttl: HumanDuration,
    /// A session unused for this long ends (2h).
    #[serde(default = "default_idle_ttl")]
    pub idle_ttl: HumanDuration,
    /// Mark cookies `Secure`; false only for plain-HTTP local use.
    #[serde(default = "default_true")]
    pub secure_cookies: bool,
}

fn default_session_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(12 * 3600))
}

fn default_idle_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(2 * 3600))
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    /// Issuer URL; `{issuer}/.well-known/openid-configuration` is fetched at start.
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: SecretRef,
    /// Scopes asked for (`openid`, `email`, `profile`); must include `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// ID-token claim holding the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

fn default_groups_claim() -> String {
    "groups".into()
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticUsers {
    /// The users who may sign in with a password.
    pub users: Vec<StaticUser>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticUser {
    /// The user's email, as services see it in `X-MESHAGENT-USER`.
    pub email: String,
    /// `$argon2id$v=19$...`
    pub password_hash: String,
    /// The user's groups, matched by `participants[].groups`.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Room {
    /// Letters, digits, `-`, `_` and `.`; used in Redis keys.
    pub name: String,
    /// Where this room's services listen (a service may override).
    #[serde(default = "default_host")]
    pub host: String,
    /// Who is a participant through IAP; first match wins.
    #[serde(default)]
    pub participants: Vec<ParticipantRule>,
    /// The room's services and their ports.
    #[serde(default)]
    pub services: Vec<Service>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantRule {
    /// Exact email addresses (compared lowercased).
    #[serde(default)]
    pub emails: Vec<String>,
    /// Email domains: the part after the one `@`, exactly (no suffix matching).
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Groups from the identity provider's groups claim.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The participant's api scope, sent as `X-MESHAGENT-API-SCOPE`.
    #[serde(default)]
    pub api: Option<serde_json::Value>,
}

impl ParticipantRule {
    /// Put the rule's emails and domains in the form requests are compared in (trimmed,
    /// lowercased); done once, at config load. An email that is not well-formed is left
    /// as written (config validation refuses it).
    pub fn normalize(&mut self) {
        for e in &mut self.emails {
            if let Some(n) = crate::canonical::normalize_email(e) {
                *e = n;
            }
        }
        for d in &mut self.email_domains {
            *d = d.trim().to_ascii_lowercase();
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service's name; the default processor identity of its webhook endpoints.
    pub name: String,
    /// Overrides the room's host.
    #[serde(default)]
    pub host: Option<String>,
    /// The ports the service listens on.
    #[serde(default)]
    pub ports: Vec<Port>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The port number the service listens on.
    pub num: u16,
    /// Routable at all.
    #[serde(default)]
    pub published: bool,
    /// Forward without authentication when no validation method applies. Omitted: private.
    #[serde(default)]
    pub public: bool,
    /// Path polled during a cold start (`GET`, 2xx means live).
    #[serde(default)]
    pub liveness: Option<String>,
    /// Speak HTTP/2 cleartext to this service (gRPC).
    #[serde(default)]
    pub h2c: bool,
    /// The port's policy.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::annotations")]
    pub annotations: BTreeMap<String, String>,
    /// Path-specific policies; the longest matching `path` wins.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Segment prefix of request paths this endpoint covers; longest wins.
    pub path: String,
    /// Override the port's annotations key by key.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::annotations")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `app.example.test` or a one-label wildcard `*.apps.example.test`.
    pub domain: String,
    /// The room this domain serves.
    pub room: String,
    /// Port for every path not matched by `paths`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Path-specific ports; longest match wins.
    #[serde(default)]
    pub paths: Vec<RoutePath>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathMatch {
    /// The path and everything below it, on segment boundaries.
    #[default]
    Prefix,
    /// Only this path.
    Exact,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePath {
    /// A path starting with `/`.
    pub path: String,
    /// `prefix` (default, on segment boundaries) or `exact`.
    #[serde(default, rename = "match")]
    pub match_: PathMatch,
    /// The published port that serves this path.
    pub port: u16,
}
