//! The annotations roomgate reads: one table of keys, the kind of value each takes, its
//! default and what it does.
//!
//! Both the checks and the error suggestions use [`REGISTRY`]. Keys in the `meshagent.` and
//! `roomgate.` namespaces belong to roomgate: one it does not know is an error naming the
//! closest known key. Keys in any other namespace are left to the operator.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::policy::{self, Rate, Validation};
use crate::webhook::Provider;

/// The namespaces roomgate owns.
pub const RESERVED_PREFIXES: [&str; 2] = ["meshagent.", "roomgate."];

/// Where an annotation may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// On a port or on one of its endpoints (an endpoint's value overrides the port's).
    PortOrEndpoint,
    /// On a port only.
    Port,
}

/// The value an annotation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `bearer` (or `jwt`), `cookie`, or a webhook provider name.
    Method,
    /// The id of a room secret.
    SecretId,
    /// A name that ends up in Redis keys: letters, digits, `-`, `_`, `.`.
    Name,
    /// A duration such as `300s` or `5m`.
    Duration,
    /// A number of bytes.
    Bytes,
    /// `"true"` or `"false"`.
    Flag,
    /// Comma-separated CIDRs or addresses.
    Cidrs,
    /// A rate such as `120/m` (per `s`, `m` or `h`).
    Rate,
    /// A positive number of requests.
    Count,
}

impl Kind {
    /// How the value is written, for the reference.
    pub fn syntax(self) -> &'static str {
        match self {
            Kind::Method => "`bearer`, `jwt`, `cookie` or a provider name",
            Kind::SecretId => "a room secret id",
            Kind::Name => "a name (letters, digits, `-`, `_`, `.`)",
            Kind::Duration => "a duration (`300s`, `5m`)",
            Kind::Bytes => "a byte count",
            Kind::Flag => "`\"true\"` or `\"false\"`",
            Kind::Cidrs => "CIDRs or addresses, comma-separated",
            Kind::Rate => "a rate (`120/m`; per `s`, `m` or `h`)",
            Kind::Count => "a positive count",
        }
    }

    /// Check a (trimmed, non-empty) value; the message starts with the key.
    fn check(self, key: &str, value: &str) -> Result<(), String> {
        match self {
            Kind::Method => method(value).map(drop),
            Kind::SecretId => Ok(()),
            Kind::Name if policy::valid_name(value) => Ok(()),
            Kind::Name => Err(format!(
                "{key}: {value:?} may hold only letters, digits, '-', '_', '.'"
            )),
            Kind::Duration => super::model::parse_duration(value)
                .map(drop)
                .map_err(|e| format!("{key}: {e}")),
            Kind::Bytes => bytes(value).map(drop).map_err(|e| format!("{key}: {e}")),
            Kind::Flag => flag(value).map(drop).map_err(|e| format!("{key}: {e}")),
            Kind::Cidrs => cidrs(value).map(drop).map_err(|e| format!("{key}: {e}")),
            Kind::Rate => value
                .parse::<Rate>()
                .map(drop)
                .map_err(|e| format!("{key}: {e}")),
            Kind::Count => count(value).map(drop).map_err(|e| format!("{key}: {e}")),
        }
    }
}

/// One annotation roomgate reads.
#[derive(Clone, Copy, Debug)]
pub struct Annotation {
    pub key: &'static str,
    pub kind: Kind,
    pub scope: Scope,
    /// What applies when the annotation is absent.
    pub default: &'static str,
    /// What it does, in one line.
    pub description: &'static str,
}

const fn entry(
    key: &'static str,
    kind: Kind,
    default: &'static str,
    description: &'static str,
) -> Annotation {
    Annotation {
        key,
        kind,
        scope: Scope::PortOrEndpoint,
        default,
        description,
    }
}

/// Every annotation roomgate reads.
pub const REGISTRY: &[Annotation] = &[
    entry(
        policy::METHOD,
        Kind::Method,
        "`bearer` on a private port; none on a public port",
        "How callers are authenticated: a participant token, a browser session, or a provider's signature.",
    ),
    entry(
        policy::SECRET,
        Kind::SecretId,
        "none (required by a provider method)",
        "The room secret that verifies a webhook signature.",
    ),
    entry(
        policy::CHALLENGE_SECRET,
        Kind::SecretId,
        "none",
        "The room secret compared with a subscription handshake token (WhatsApp, Meta).",
    ),
    entry(
        policy::QUEUE,
        Kind::Name,
        "none: verified requests are forwarded",
        "The queue (Redis stream) that receives verified webhook bodies instead of the service.",
    ),
    entry(
        policy::PROCESSOR,
        Kind::Name,
        "the service's name",
        "The identity whose secrets verify the endpoint and who consumes its queue.",
    ),
    entry(
        policy::TOLERANCE,
        Kind::Duration,
        "the provider's own window",
        "How far a signature's timestamp may be from now.",
    ),
    entry(
        policy::MAX_BODY_BYTES,
        Kind::Bytes,
        "`limits.max_body_bytes`",
        "The largest request body accepted.",
    ),
    entry(
        policy::SOURCE_IPS,
        Kind::Cidrs,
        "any address",
        "The addresses a webhook endpoint accepts calls from (the client address honours `trusted_proxies`).",
    ),
    entry(
        policy::HUBSPOT_LEGACY,
        Kind::Flag,
        "`false`",
        "A `hubspot` endpoint also accepts HubSpot's v1/v2 signatures, which carry no timestamp.",
    ),
    entry(
        policy::EMBED,
        Kind::Flag,
        "`false`",
        "Serve embed sessions: a request with the embed cookie or token is judged as embed only.",
    ),
    entry(
        policy::RATE_LIMIT,
        Kind::Rate,
        "none",
        "Requests allowed per caller and window.",
    ),
    entry(
        policy::QUOTA_DAILY,
        Kind::Count,
        "none",
        "Requests allowed per caller and UTC day.",
    ),
    entry(
        policy::FORWARD_AUTHORIZATION,
        Kind::Flag,
        "`false`",
        "Forward the `Authorization` header roomgate consumed (a participant or embed token) to the service.",
    ),
    Annotation {
        scope: Scope::Port,
        ..entry(
            policy::PATH_CASE_INSENSITIVE,
            Kind::Flag,
            "`false`",
            "Routes and endpoints of the port match paths ASCII case-insensitively.",
        )
    },
];

/// The registry entry of `key`.
pub fn lookup(key: &str) -> Option<&'static Annotation> {
    REGISTRY.iter().find(|a| a.key == key)
}

/// True when `key` is in a namespace roomgate owns.
pub fn reserved(key: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The known key nearest to `key` by edit distance.
pub fn closest(key: &str) -> &'static str {
    REGISTRY
        .iter()
        .map(|a| (strsim::levenshtein(key, a.key), a.key))
        .min()
        .map(|(_, k)| k)
        .unwrap_or_default()
}

/// Problems with the keys written in one place (`at_port`: on a port rather than an
/// endpoint), each as (key, message): unknown keys in roomgate's namespaces and port-only
/// keys on an endpoint. Values are checked by [`check_values`].
pub fn check_keys(annotations: &BTreeMap<String, String>, at_port: bool) -> Vec<(&str, String)> {
    let mut problems = Vec::new();
    for key in annotations.keys() {
        match lookup(key) {
            Some(a) if a.scope == Scope::Port && !at_port => {
                problems.push((key.as_str(), format!("{key} is a port annotation")))
            }
            Some(_) => {}
            None if reserved(key) => problems.push((
                key.as_str(),
                format!(
                    "unknown annotation {key:?}; the closest known key is {:?}",
                    closest(key)
                ),
            )),
            None => {}
        }
    }
    problems
}

/// A message for every known annotation whose value does not fit its kind. An empty
/// value counts as absent.
pub fn check_values(annotations: &BTreeMap<String, String>) -> Vec<String> {
    annotations
        .iter()
        .filter_map(|(k, v)| {
            let v = v.trim();
            let a = lookup(k)?;
            if v.is_empty() {
                return None;
            }
            a.kind.check(k, v).err()
        })
        .collect()
}

/// `bearer`/`jwt`, `cookie` or a provider, ASCII case-insensitively.
pub fn method(value: &str) -> Result<Validation, String> {
    match value.to_ascii_lowercase().as_str() {
        "bearer" | "jwt" => Ok(Validation::Bearer),
        "cookie" => Ok(Validation::Cookie),
        other => Provider::from_str(other)
            .map(Validation::Webhook)
            .map_err(|()| {
                let near = ["bearer", "jwt", "cookie"]
                    .into_iter()
                    .chain(Provider::ALL.iter().map(|p| p.as_str()))
                    .min_by_key(|m| strsim::levenshtein(other, m))
                    .unwrap_or_default();
                format!(
                    "unknown validation method {value:?} in {}; the closest known method is {near:?}",
                    policy::METHOD
                )
            }),
    }
}

/// `"true"` or `"false"`, ASCII case-insensitively.
pub fn flag(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("{value:?} is not \"true\" or \"false\""))
    }
}

/// A byte count.
pub fn bytes(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a byte count"))
}

/// A positive count of requests.
pub fn count(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{value:?} is not a positive count of requests")),
    }
}

/// `"CIDR, CIDR"` → networks; a bare address is a single host. Empty items are errors.
pub fn cidrs(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{item:?} is not a CIDR or an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_key_is_listed_once_in_a_reserved_namespace() {
        let mut keys: Vec<&str> = REGISTRY.iter().map(|a| a.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), REGISTRY.len());
        assert!(keys.iter().all(|k| reserved(k)), "{keys:?}");
        assert!(lookup(policy::FORWARD_AUTHORIZATION).is_some());
    }

    #[test]
    fn a_misspelt_key_names_the_closest_known_key() {
        let map = ann(&[
            ("meshagent.request.validation.methd", "github"),
            ("roomgate.validation.tolerence", "10s"),
            ("example.com/owner", "team-a"),
            ("roomgate.embed", "true"),
        ]);
        let problems = check_keys(&map, true);
        let text: Vec<String> = problems.iter().map(|(_, m)| m.clone()).collect();
        assert_eq!(
            text,
            [
                "unknown annotation \"meshagent.request.validation.methd\"; the closest known key is \"meshagent.request.validation.method\"",
                "unknown annotation \"roomgate.validation.tolerence\"; the closest known key is \"roomgate.validation.tolerance\"",
            ]
        );
    }

    #[test]
    fn a_port_only_key_on_an_endpoint_is_a_problem() {
        let map = ann(&[(policy::PATH_CASE_INSENSITIVE, "true")]);
        assert!(check_keys(&map, true).is_empty());
        assert_eq!(check_keys(&map, false).len(), 1);
    }

    #[test]
    fn values_are_checked_by_kind_and_empty_values_are_absent() {
        let errors = check_values(&ann(&[
            (policy::METHOD, "githb"),
            (policy::TOLERANCE, "10 parsecs"),
            (policy::FORWARD_AUTHORIZATION, "yes"),
            (policy::QUEUE, "a queue"),
            (policy::MAX_BODY_BYTES, "1MB"),
            (policy::SOURCE_IPS, ""),
            ("other.example/free", "anything"),
        ]));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("closest known method is \"github\"")),
            "{errors:?}"
        );
        assert!(errors
            .iter()
            .any(|e| e.starts_with("roomgate.forward_authorization: \"yes\"")));
        assert!(check_values(&ann(&[
            (policy::METHOD, "Stripe"),
            (policy::FORWARD_AUTHORIZATION, "TRUE"),
            (policy::RATE_LIMIT, "5/s"),
        ]))
        .is_empty());
    }
}
