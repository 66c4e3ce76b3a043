//! Load-time checks of the `embed` and `identity_assertion` blocks.
//!
//! Returns every problem with its YAML path, and the parsed assertion keys; the request
//! path never re-reads either block's strings.

use std::sync::Arc;
use std::time::Duration;

use super::model::{Embed, IdentityAssertion};
use super::LoadContext;
use crate::assertion::Asserter;

/// The shortest embed session, and the longest launch URL life.
const MIN_SESSION_TTL: Duration = Duration::from_secs(60);
const MAX_LAUNCH_TTL: Duration = Duration::from_secs(600);
/// Assertion lifetimes accepted: long enough for a slow hop, short enough to be
/// worthless when copied.
const ASSERTION_TTL: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(3600));

/// Problems in `embed`, as `(path, message)`.
pub(super) fn check_embed(embed: &Embed) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut err = |path: &str, msg: &str| errors.push((path.to_owned(), msg.to_owned()));
    if embed.session_ttl.0 < MIN_SESSION_TTL {
        err("embed.session_ttl", "must be at least 1m");
    }
    if embed.token_ttl.0 < Duration::from_secs(10) {
        err("embed.token_ttl", "must be at least 10s");
    }
    if embed.token_ttl.0 > embed.session_ttl.0 {
        err("embed.token_ttl", "must not exceed session_ttl");
    }
    if embed.launch_ttl.0 < Duration::from_secs(5) || embed.launch_ttl.0 > MAX_LAUNCH_TTL {
        err("embed.launch_ttl", "must be between 5s and 10m");
    }
    errors
}

/// Parse the assertion keys; problems as `(path, message)`.
pub(super) fn check_assertion(
    ia: &IdentityAssertion,
    ctx: &LoadContext,
) -> Result<Arc<Asserter>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    if ia.keys.is_empty() {
        errors.push((
            "identity_assertion.keys".to_owned(),
            "at least one key is required".to_owned(),
        ));
    }
    let (min, max) = ASSERTION_TTL;
    if ia.ttl.0 < min || ia.ttl.0 > max {
        errors.push((
            "identity_assertion.ttl".to_owned(),
            "must be between 5s and 1h".to_owned(),
        ));
    }
    let mut keys = Vec::new();
    for (i, k) in ia.keys.iter().enumerate() {
        if k.kid.is_empty() || keys.iter().any(|(kid, _)| *kid == k.kid) {
            errors.push((
                format!("identity_assertion.keys[{i}].kid"),
                format!("kid {:?} is empty or repeated", k.kid),
            ));
        }
        match ctx.resolve(&k.private_key) {
            Ok(pem) => keys.push((k.kid.clone(), pem)),
            Err(m) => errors.push((format!("identity_assertion.keys[{i}].private_key"), m)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Asserter::new(&keys, ia.ttl.0)
        .map(Arc::new)
        .map_err(|(i, m)| vec![(format!("identity_assertion.keys[{i}].private_key"), m)])
}

#[cfg(test)]
mod tests {
    use super::super::{Config, LoadContext};

    fn errors(extra: &str) -> Vec<String> {
        let src = format!("version: v1\nlisten: {{http: 127.0.0.1:0}}\n{extra}");
        let ctx = LoadContext {
            vars: Default::default(),
            base_dir: std::env::temp_dir(),
        };
        match Config::from_yaml_str(&src, &ctx) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn embed_lifetimes_are_checked_with_their_paths() {
        assert_eq!(
            errors("embed: {session_ttl: 2h, token_ttl: 5m}\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            errors("embed: {session_ttl: 30s, token_ttl: 1h, launch_ttl: 1h}\n"),
            [
                "embed.session_ttl: must be at least 1m",
                "embed.token_ttl: must not exceed session_ttl",
                "embed.launch_ttl: must be between 5s and 10m"
            ]
        );
        let e = errors("embed: {sesion_ttl: 1h}\n");
        assert!(e[0].contains("unknown field"), "{e:?}");
    }

    #[test]
    fn assertion_keys_must_be_p256_pem_and_kids_unique() {
        let e = errors(
            "identity_assertion:\n  keys:\n    - {kid: a, private_key: {value: \"not pem\"}}\n    - {kid: a, private_key: {env: MISSING}}\n  ttl: 2h\n",
        );
        assert_eq!(
            e,
            [
                "identity_assertion.ttl: must be between 5s and 1h",
                "identity_assertion.keys[1].kid: kid \"a\" is empty or repeated",
                "identity_assertion.keys[1].private_key: environment variable MISSING is not set"
            ]
        );
        let e = errors(
            "identity_assertion:\n  keys:\n    - {kid: a, private_key: {value: \"not pem\"}}\n",
        );
        assert_eq!(
            e,
            ["identity_assertion.keys[0].private_key: not a PEM private key (SEC1 or PKCS#8)"]
        );
        assert_eq!(
            errors("identity_assertion: {keys: []}\n"),
            ["identity_assertion.keys: at least one key is required"]
        );
    }
}
