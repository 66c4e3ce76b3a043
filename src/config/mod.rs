//! The config: YAML in, a validated, typed [`Config`] out.
//!
//! Owns parsing, cross-field validation and the resolution of secret references. A
//! `Config` that exists is valid: the request path never re-checks or re-parses it. This
//! module reads the environment only through the [`LoadContext`] it is given, and never
//! logs the raw config.

pub mod annotations;
pub mod certs;
mod embed;
pub mod model;
pub mod password;
pub mod policy;
pub mod schema;
mod secret_ref;
pub mod source;
mod topology;
mod validate;
mod validate_rooms;
mod validate_routes;
pub mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use model::*;
pub use policy::{Policy, Validation};
pub use secret_ref::SecretRef;
pub use topology::{RedisSettings, Topology};

use crate::sensitive::Secret;

/// Everything a config load may consult besides the YAML text.
#[derive(Clone, Debug, Default)]
pub struct LoadContext {
    /// Environment variables visible to `{env: NAME}`.
    pub vars: HashMap<String, String>,
    /// Directory that relative `{file: PATH}` and certificate paths are relative to.
    pub base_dir: PathBuf,
}

impl LoadContext {
    /// The process environment and the config file's directory.
    pub fn from_env(config_path: &Path) -> Self {
        LoadContext {
            vars: std::env::vars().collect(),
            base_dir: config_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }

    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Read a secret reference; the error names what is missing, never a value.
    ///
    /// A value that is empty or only whitespace (after a file's trailing newlines are
    /// dropped) is an error, never a secret: an empty shared token would admit any request
    /// that sends an empty header, and an empty HMAC key lets anyone sign.
    pub fn resolve(&self, r: &SecretRef) -> Result<Secret, String> {
        let secret = match r {
            SecretRef::Env(name) => match self.vars.get(name) {
                Some(v) => Secret::new(v.as_bytes().to_vec()),
                None => return Err(format!("environment variable {name} is not set")),
            },
            SecretRef::File(path) => {
                let full = self.resolve_path(path);
                let mut bytes = source::read_regular(&full, source::MAX_SECRET_BYTES)
                    .map_err(|e| e.to_string())?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                Secret::new(bytes)
            }
            SecretRef::Value(v) => Secret::new(v.as_bytes().to_vec()),
        };
        if secret.is_blank() {
            return Err(match r {
                SecretRef::Env(name) => format!("environment variable {name} is empty"),
                SecretRef::File(path) => {
                    format!("file {} is empty", self.resolve_path(path).display())
                }
                SecretRef::Value(_) => "the value is empty".to_owned(),
            });
        }
        Ok(secret)
    }
}

/// One problem in a config, with the YAML path it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot read config {path}: {message}")]
    Read { path: String, message: String },
}

impl ConfigError {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        ConfigError::Invalid {
            path: if path.is_empty() {
                "(root)".into()
            } else {
                path
            },
            message: message.into(),
        }
    }
}

/// Every problem found in one load, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A published port of a service, with its policies decided.
#[derive(Debug)]
pub struct PortSpec {
    pub room: String,
    pub service: String,
    pub num: u16,
    /// `host:num` of the service, parsed once at load.
    pub upstream: http::uri::Authority,
    pub published: bool,
    pub public: bool,
    pub liveness: Option<String>,
    pub h2c: bool,
    /// Routes to this port and its endpoint policies match paths ASCII
    /// case-insensitively (`roomgate.path.case_insensitive`).
    pub case_insensitive: bool,
    /// Policy of requests matching no endpoint.
    pub policy: Arc<Policy>,
    /// Endpoint paths and their policies, longest path first.
    pub endpoints: Vec<(String, Arc<Policy>)>,
}

impl PortSpec {
    /// `host:num` of the service.
    pub fn authority(&self) -> &str {
        self.upstream.as_str()
    }

    /// The policy for a (normalised) request path: longest endpoint that is a
    /// segment-prefix of it, else the port's.
    pub fn policy_for(&self, path: &str) -> (&str, &Arc<Policy>) {
        self.endpoints
            .iter()
            .find(|(p, _)| segment_prefix(p, path, self.case_insensitive))
            .map(|(p, pol)| (p.as_str(), pol))
            .unwrap_or(("", &self.policy))
    }
}

/// True when `prefix` equals `path` or is followed in it by a `/`; compared ASCII
/// case-insensitively when `fold`.
pub fn segment_prefix(prefix: &str, path: &str, fold: bool) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix).as_bytes();
    let path = path.as_bytes();
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let same = if fold {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    same && matches!(path.get(prefix.len()), None | Some(b'/'))
}

/// True when `route` and `path` are the same path; compared ASCII case-insensitively
/// when `fold`.
pub fn same_path(route: &str, path: &str, fold: bool) -> bool {
    if fold {
        route.eq_ignore_ascii_case(path)
    } else {
        route == path
    }
}

/// The variables a config was loaded with, kept for secret references read later (the
/// secrets file). Never printed.
#[derive(Clone, Default)]
pub struct Vars(pub HashMap<String, String>);

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} variables]", self.0.len())
    }
}

/// A validated config with its secrets resolved.
#[derive(Debug)]
pub struct Config {
    pub file: FileConfig,
    /// Participant-token keys by kid, in config order (the first mints).
    pub token_keys: Vec<(String, Secret)>,
    /// The Redis every instance shares; `None` in the embedded single-instance mode.
    pub redis: Option<RedisSettings>,
    pub secrets_key: Option<Secret>,
    pub cookie_keys: Vec<Secret>,
    pub oidc_client_secret: Option<Secret>,
    /// The certificate and key of each `tls.certificates` entry, in order, loaded and
    /// matched at load.
    pub certificates: Vec<Arc<rustls::sign::CertifiedKey>>,
    /// Every port of every room's services.
    pub ports: Vec<Arc<PortSpec>>,
    /// The identity assertion's keys, parsed (`identity_assertion`).
    pub assertion: Option<Arc<crate::assertion::Asserter>>,
    /// SHA-256 of the source text, hex (reported by the admin listener; not a secret).
    pub hash: String,
    pub base_dir: PathBuf,
    /// The variables `{env: NAME}` references resolve against.
    pub vars: Vars,
    /// Rooms and their ports by room name, so lookups do not scan 10 000 rooms.
    index: RoomIndex,
}

/// Room name → (index in `file.rooms`, indexes in `ports` of the room's ports).
#[derive(Debug, Default)]
struct RoomIndex(HashMap<String, (usize, Vec<usize>)>);

impl RoomIndex {
    fn build(rooms: &[Room], ports: &[Arc<PortSpec>]) -> RoomIndex {
        let mut index: HashMap<String, (usize, Vec<usize>)> = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), (i, Vec::new())))
            .collect();
        for (i, p) in ports.iter().enumerate() {
            if let Some((_, of_room)) = index.get_mut(&p.room) {
                of_room.push(i);
            }
        }
        RoomIndex(index)
    }
}

impl Config {
    /// Parse and validate a config; returns every problem at once.
    pub fn from_yaml_str(src: &str, ctx: &LoadContext) -> Result<Config, ConfigErrors> {
        yaml::check_size(src, source::MAX_CONFIG_BYTES as usize)
            .map_err(|m| ConfigErrors(vec![ConfigError::at("", m)]))?;
        let file = validate::parse(src)?;
        let mut config = validate::check(file, ctx)?;
        config.hash = hex::encode(Sha256::digest(src.as_bytes()));
        config.base_dir = ctx.base_dir.clone();
        config.vars = Vars(ctx.vars.clone());
        Ok(config)
    }

    /// Read and validate the config at `path` with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let read_error = |message: String| {
            ConfigErrors(vec![ConfigError::Read {
                path: path.display().to_string(),
                message,
            }])
        };
        let bytes = source::read_regular(path, source::MAX_CONFIG_BYTES)
            .map_err(|e| read_error(e.to_string()))?;
        let src = String::from_utf8(bytes).map_err(|_| read_error("not UTF-8 text".into()))?;
        Config::from_yaml_str(&src, &LoadContext::from_env(path))
    }

    pub fn room(&self, name: &str) -> Option<&Room> {
        let (i, _) = self.index.0.get(name)?;
        self.file.rooms.get(*i)
    }

    pub fn port(&self, room: &str, num: u16) -> Option<&Arc<PortSpec>> {
        let (_, ports) = self.index.0.get(room)?;
        ports.iter().map(|&i| &self.ports[i]).find(|p| p.num == num)
    }

    /// The context this config was loaded in, for stores that resolve references later.
    pub fn load_context(&self) -> LoadContext {
        LoadContext {
            vars: self.vars.0.clone(),
            base_dir: self.base_dir.clone(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.file.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(dir: &tempfile::TempDir) -> LoadContext {
        LoadContext {
            vars: HashMap::from([
                ("BLANK".to_owned(), " ".to_owned()),
                (
                    "SET".to_owned(),
                    "from-env-0123456789abcdef0123456789abcdef".to_owned(),
                ),
            ]),
            base_dir: dir.path().to_path_buf(),
        }
    }

    #[test]
    fn a_segment_prefix_ends_at_a_slash_and_folds_case_only_when_asked() {
        assert!(segment_prefix("/admin", "/admin", false));
        assert!(segment_prefix("/admin/", "/admin/x", false));
        assert!(!segment_prefix("/admin", "/administrator", false));
        assert!(!segment_prefix("/admin", "/ADMIN", false));
        assert!(segment_prefix("/admin", "/ADMIN/x", true));
        assert!(!segment_prefix("/admin", "/ADMINISTRATOR", true));
        assert!(!segment_prefix("/admin", "/adm", true));
        assert!(segment_prefix("/", "/anything", false));
        // Non-ASCII is compared as bytes either way.
        assert!(!segment_prefix("/é", "/É", true));
    }

    // Security property: an empty secret is refused where it is written, so it can never
    // become a token or key that anybody matches.
    #[test]
    fn an_empty_literal_value_is_an_error_at_its_yaml_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("newline.txt"), "\n").unwrap();
        let src = "version: v1\nlisten: {http: 127.0.0.1:0}\ntokens:\n  keys:\n    - {kid: a, secret: {value: \"\"}}\n    - {kid: b, secret: {file: newline.txt}}\n    - {kid: c, secret: {env: BLANK}}\n    - {kid: d, secret: {env: SET}}\nrooms: []\nroutes: []\n";
        let errors = Config::from_yaml_str(src, &context(&dir)).unwrap_err().0;
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert_eq!(text[0], "tokens.keys[0].secret: the value is empty");
        assert!(
            text[1].starts_with("tokens.keys[1].secret: file ") && text[1].ends_with(" is empty"),
            "{text:?}"
        );
        assert_eq!(
            text[2],
            "tokens.keys[2].secret: environment variable BLANK is empty"
        );
    }

    #[test]
    fn blank_references_do_not_resolve_and_a_trailing_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(&dir);
        for (name, text) in [("empty", ""), ("crlf", "\r\n"), ("spaces", "  \n")] {
            std::fs::write(dir.path().join(name), text).unwrap();
            assert!(
                ctx.resolve(&SecretRef::File(name.into())).is_err(),
                "{name}"
            );
        }
        assert!(ctx.resolve(&SecretRef::Value(String::new())).is_err());
        std::fs::write(dir.path().join("token"), "tg-token\n").unwrap();
        let secret = ctx.resolve(&SecretRef::File("token".into())).unwrap();
        assert_eq!(secret.expose(), b"tg-token");
        assert_eq!(
            ctx.resolve(&SecretRef::Env("SET".into())).unwrap().expose(),
            b"from-env-0123456789abcdef0123456789abcdef"
        );
    }
}
