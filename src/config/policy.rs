//! What an endpoint's annotations mean, decided once at load.
//!
//! Annotations are strings in the YAML; the request path never re-reads them. Each port and
//! endpoint gets a [`Policy`]: how callers are authenticated, where the body goes, and the
//! limits that apply.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use super::annotations;
use crate::webhook::Provider;

/// `bearer`/`jwt`, `cookie`, or a provider name.
pub const METHOD: &str = "meshagent.request.validation.method";
/// Id of the room secret used to verify a webhook signature.
pub const SECRET: &str = "meshagent.request.validation.secret";
/// Id of the room secret compared with a subscription handshake token (WhatsApp/Meta).
pub const CHALLENGE_SECRET: &str = "meshagent.request.validation.challenge_secret";
/// Queue (Redis stream) that receives verified bodies.
pub const QUEUE: &str = "meshagent.request.queue";
/// Identity whose secrets verify this endpoint and who consumes its queue.
pub const PROCESSOR: &str = "meshagent.request.processor";
/// Signature timestamp window, overriding the provider's default (e.g. `300s`).
pub const TOLERANCE: &str = "roomgate.validation.tolerance";
/// Largest body accepted on this endpoint, in bytes.
pub const MAX_BODY_BYTES: &str = "roomgate.request.max_body_bytes";
/// A port annotation: routes and endpoint policies match paths ASCII case-insensitively,
/// for services that fold case themselves (Express by default, ASP.NET).
pub const PATH_CASE_INSENSITIVE: &str = "roomgate.path.case_insensitive";

/// `"true"`: the port (or endpoint) serves embed sessions: a request carrying the embed
/// cookie or `X-Roomgate-Embed-Token` is judged as embed only; others by the usual method.
pub const EMBED: &str = "roomgate.embed";
/// Requests per caller and window: `"120/m"` (also `/s`, `/h`).
pub const RATE_LIMIT: &str = "roomgate.rate_limit";
/// Requests per caller and UTC calendar day: `"10000"`.
pub const QUOTA_DAILY: &str = "roomgate.quota.daily";
/// `"true"`: the `Authorization` header roomgate verified (a participant or embed token)
/// is forwarded to the service; by default it is removed.
pub const FORWARD_AUTHORIZATION: &str = "roomgate.forward_authorization";

/// A `"true"`/`"false"` annotation (absent or empty: false).
pub fn flag(annotations: &BTreeMap<String, String>, key: &str) -> Result<bool, String> {
    match annotations.get(key).map(|v| v.trim()) {
        None | Some("") => Ok(false),
        Some(v) => annotations::flag(v).map_err(|e| format!("{key}: {e}")),
    }
}

/// Addresses a webhook endpoint accepts calls from: `"CIDR,CIDR"` (a bare address is a
/// single host). The client address honours `trusted_proxies`.
pub const SOURCE_IPS: &str = "roomgate.validation.source_ips";
/// `"true"`: a `hubspot` endpoint also accepts HubSpot's v1/v2 signatures, which carry
/// no timestamp and can be replayed.
pub const HUBSPOT_LEGACY: &str = "roomgate.hubspot.legacy_signatures";

/// How callers of an endpoint are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Public port, no method: forwarded as is.
    Public,
    /// Participant token in `Authorization: Bearer`.
    Bearer,
    /// Browser session through IAP (a participant token also passes).
    Cookie,
    /// Provider signature verified with a room secret.
    Webhook(Provider),
}

/// The effective rules of one port or endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub validation: Validation,
    /// Room secret id for webhook verification.
    pub secret_id: Option<String>,
    /// Room secret id for subscription handshakes.
    pub challenge_secret_id: Option<String>,
    /// Identity owning the secrets and the queue.
    pub processor: String,
    pub queue: Option<String>,
    pub tolerance: Option<Duration>,
    pub max_body_bytes: u64,
    /// Webhook callers' allowed addresses; empty: any address.
    pub source_ips: Vec<IpNet>,
    /// HubSpot v1/v2 signatures accepted (`hubspot` endpoints only).
    pub hubspot_legacy: bool,
    /// Embed sessions are served here (`roomgate.embed`).
    pub embed: bool,
    /// Requests allowed per caller and window (`roomgate.rate_limit`).
    pub rate_limit: Option<Rate>,
    /// Requests allowed per caller and UTC day (`roomgate.quota.daily`).
    pub quota_daily: Option<u64>,
    /// The verified `Authorization` goes on to the service (`roomgate.forward_authorization`).
    pub forward_authorization: bool,
}

/// `count` requests per `period`, spread evenly (GCRA: a full burst of `count`, then one
/// every `period / count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    /// `"120/m"`, `"5/s"`, `"1000/h"`.
    fn from_str(s: &str) -> Result<Rate, String> {
        let shape = || format!("{s:?} is not a rate like \"120/m\" (per s, m or h)");
        let (count, unit) = s.trim().split_once('/').ok_or_else(shape)?;
        let count: u32 = count.trim().parse().map_err(|_| shape())?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(shape()),
        };
        if !(1..=1_000_000).contains(&count) {
            return Err(format!("{s:?}: the count must be between 1 and 1000000"));
        }
        Ok(Rate { count, period })
    }
}

/// Merge endpoint annotations over the port's, key by key.
pub fn effective_annotations(
    port: &BTreeMap<String, String>,
    endpoint: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut merged = port.clone();
    if let Some(ep) = endpoint {
        for (k, v) in ep {
            merged.insert(k.clone(), v.clone());
        }
    }
    merged
}

/// Decide the policy for merged annotations; every problem is returned as a message.
/// Values are checked against the annotation registry first; a value that does not fit
/// its kind is reported there once and counts as absent here.
pub fn decide(
    annotations: &BTreeMap<String, String>,
    public_port: bool,
    service_name: &str,
    default_max_body: u64,
) -> Result<Policy, Vec<String>> {
    let mut errors = annotations::check_values(annotations);
    let get = |k: &str| {
        annotations
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let method = get(METHOD);
    let parsed_method = method.map(annotations::method);
    // After an unknown method (already reported) the validation is a placeholder.
    let unknown_method = matches!(parsed_method, Some(Err(_)));
    let validation = match parsed_method {
        None if public_port => Validation::Public,
        None | Some(Err(_)) => Validation::Bearer,
        Some(Ok(v)) => v,
    };
    let queue = get(QUEUE).map(str::to_owned);
    if let Some(q) = &queue {
        if method.is_none() {
            errors.push(format!(
                "queue {q:?} has no {METHOD}: queue routes never run unauthenticated"
            ));
        }
    }
    if queue.is_some()
        && !unknown_method
        && method.is_some()
        && matches!(validation, Validation::Bearer | Validation::Cookie)
    {
        errors.push(format!(
            "queue endpoints take webhook bodies: {METHOD} must name a provider, not {:?}",
            method.unwrap_or_default()
        ));
    }
    let secret_id = get(SECRET).map(str::to_owned);
    if matches!(validation, Validation::Webhook(_)) && secret_id.is_none() {
        errors.push(format!("a webhook validation method needs {SECRET}"));
    }
    let tolerance = get(TOLERANCE).and_then(|t| super::model::parse_duration(t).ok());
    let max_body_bytes = get(MAX_BODY_BYTES)
        .and_then(|v| annotations::bytes(v).ok())
        .unwrap_or(default_max_body);
    let webhook = matches!(validation, Validation::Webhook(_));
    let source_ips = match get(SOURCE_IPS) {
        None => Vec::new(),
        Some(list) => {
            if !webhook {
                errors.push(format!("{SOURCE_IPS} applies to webhook endpoints only"));
            }
            annotations::cidrs(list).unwrap_or_default()
        }
    };
    let on = |key| flag(annotations, key).unwrap_or(false);
    let hubspot_legacy = on(HUBSPOT_LEGACY);
    if hubspot_legacy && validation != Validation::Webhook(Provider::Hubspot) && !unknown_method {
        errors.push(format!(
            "{HUBSPOT_LEGACY} applies to hubspot endpoints only"
        ));
    }
    let embed = on(EMBED);
    let rate_limit = get(RATE_LIMIT).and_then(|v| v.parse::<Rate>().ok());
    let quota_daily = get(QUOTA_DAILY).and_then(|v| annotations::count(v).ok());
    if webhook {
        for (key, set) in [
            (EMBED, embed),
            (RATE_LIMIT, rate_limit.is_some()),
            (QUOTA_DAILY, quota_daily.is_some()),
        ] {
            if set {
                errors.push(format!(
                    "{key} applies to forwarded endpoints, not webhook endpoints"
                ));
            }
        }
    }
    let forward_authorization = on(FORWARD_AUTHORIZATION);
    let processor = get(PROCESSOR).unwrap_or(service_name).to_owned();
    if errors.is_empty() {
        Ok(Policy {
            validation,
            secret_id,
            challenge_secret_id: get(CHALLENGE_SECRET).map(str::to_owned),
            processor,
            queue,
            tolerance,
            max_body_bytes,
            source_ips,
            hubspot_legacy,
            embed,
            rate_limit,
            quota_daily,
            forward_authorization,
        })
    } else {
        Err(errors)
    }
}

/// Names that end up in Redis keys: no braces, colons or spaces.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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
    fn private_port_without_method_requires_a_token() {
        let p = decide(&ann(&[]), false, "web", 10).unwrap();
        assert_eq!(p.validation, Validation::Bearer);
    }

    #[test]
    fn public_port_without_method_is_public() {
        let p = decide(&ann(&[]), true, "web", 10).unwrap();
        assert_eq!(p.validation, Validation::Public);
    }

    #[test]
    fn queue_without_method_is_rejected_even_on_a_public_port() {
        let e = decide(&ann(&[(QUEUE, "q")]), true, "web", 10).unwrap_err();
        assert!(e[0].contains("never run unauthenticated"), "{e:?}");
    }

    #[test]
    fn unknown_method_is_rejected() {
        let e = decide(&ann(&[(METHOD, "carrier-pigeon")]), false, "web", 10).unwrap_err();
        assert!(e[0].contains("unknown validation method"));
    }

    #[test]
    fn endpoint_annotations_override_port_annotations_key_by_key() {
        let port = ann(&[(METHOD, "cookie"), (PROCESSOR, "worker")]);
        let ep = ann(&[(METHOD, "github"), (SECRET, "gh")]);
        let merged = effective_annotations(&port, Some(&ep));
        let p = decide(&merged, false, "web", 10).unwrap();
        assert_eq!(p.validation, Validation::Webhook(Provider::Github));
        assert_eq!(p.processor, "worker");
        assert_eq!(p.secret_id.as_deref(), Some("gh"));
    }

    #[test]
    fn queue_endpoints_need_a_provider_method() {
        let e = decide(&ann(&[(QUEUE, "q"), (METHOD, "bearer")]), false, "web", 10).unwrap_err();
        assert!(e[0].contains("must name a provider"), "{e:?}");
        let e = decide(&ann(&[(QUEUE, "q"), (METHOD, "nope")]), false, "web", 10).unwrap_err();
        assert_eq!(e.len(), 1, "an unknown method is reported once: {e:?}");
    }

    #[test]
    fn processor_defaults_to_the_service_name() {
        let p = decide(&ann(&[(METHOD, "stripe"), (SECRET, "s")]), false, "web", 10).unwrap();
        assert_eq!(p.processor, "web");
    }

    #[test]
    fn source_ips_are_parsed_as_cidrs_at_load() {
        let p = decide(
            &ann(&[
                (METHOD, "postmark"),
                (SECRET, "pm"),
                (SOURCE_IPS, "3.134.147.250/32, 50.31.156.6,2001:db8::/32"),
            ]),
            true,
            "web",
            10,
        )
        .unwrap();
        let expected: Vec<IpNet> = ["3.134.147.250/32", "50.31.156.6/32", "2001:db8::/32"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(p.source_ips, expected);
        let none = decide(
            &ann(&[(METHOD, "postmark"), (SECRET, "pm")]),
            true,
            "web",
            10,
        );
        assert!(none.unwrap().source_ips.is_empty());
    }

    #[test]
    fn a_bad_source_ip_or_one_on_a_non_webhook_endpoint_is_an_error() {
        let e = decide(
            &ann(&[
                (METHOD, "postmark"),
                (SECRET, "pm"),
                (SOURCE_IPS, "10.0.0.0/8,nope"),
            ]),
            true,
            "web",
            10,
        )
        .unwrap_err();
        assert!(e[0].contains("\"nope\" is not a CIDR"), "{e:?}");
        let e = decide(&ann(&[(SOURCE_IPS, "10.0.0.0/8")]), false, "web", 10).unwrap_err();
        assert!(e[0].contains("webhook endpoints only"), "{e:?}");
        let e = decide(
            &ann(&[(METHOD, "postmark"), (SECRET, "pm"), (SOURCE_IPS, "")]),
            true,
            "web",
            10,
        );
        assert!(
            e.unwrap().source_ips.is_empty(),
            "an empty annotation is no list"
        );
    }

    #[test]
    fn rates_are_a_count_per_second_minute_or_hour() {
        assert_eq!(
            "120/m".parse::<Rate>(),
            Ok(Rate {
                count: 120,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(
            "5/s".parse::<Rate>().unwrap().period,
            Duration::from_secs(1)
        );
        assert_eq!(" 7 / h ".parse::<Rate>().unwrap().count, 7);
        for bad in [
            "120",
            "0/m",
            "-1/m",
            "120/d",
            "x/m",
            "120/",
            "/m",
            "2000000/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn embed_rate_limit_and_quota_annotations_are_decided_at_load() {
        let p = decide(
            &ann(&[
                (METHOD, "cookie"),
                (EMBED, "true"),
                (RATE_LIMIT, "10/s"),
                (QUOTA_DAILY, "500"),
            ]),
            false,
            "web",
            10,
        )
        .unwrap();
        assert!(p.embed);
        assert_eq!(p.rate_limit.map(|r| r.count), Some(10));
        assert_eq!(p.quota_daily, Some(500));
        let e = decide(
            &ann(&[(EMBED, "yes"), (RATE_LIMIT, "fast"), (QUOTA_DAILY, "0")]),
            false,
            "web",
            10,
        )
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        let e = decide(
            &ann(&[(METHOD, "github"), (SECRET, "gh"), (RATE_LIMIT, "1/s")]),
            true,
            "web",
            10,
        )
        .unwrap_err();
        assert!(e[0].contains("not webhook endpoints"), "{e:?}");
    }

    #[test]
    fn hubspot_legacy_signatures_are_an_explicit_hubspot_opt_in() {
        let hubspot = |value| {
            decide(
                &ann(&[(METHOD, "hubspot"), (SECRET, "hs"), (HUBSPOT_LEGACY, value)]),
                true,
                "web",
                10,
            )
        };
        assert!(hubspot("true").unwrap().hubspot_legacy);
        assert!(!hubspot("false").unwrap().hubspot_legacy);
        let e = hubspot("yes").unwrap_err();
        assert!(e[0].contains("is not \"true\""), "{e:?}");
        let default = decide(
            &ann(&[(METHOD, "hubspot"), (SECRET, "hs")]),
            true,
            "web",
            10,
        );
        assert!(!default.unwrap().hubspot_legacy);
        let e = decide(
            &ann(&[(METHOD, "github"), (SECRET, "gh"), (HUBSPOT_LEGACY, "true")]),
            true,
            "web",
            10,
        )
        .unwrap_err();
        assert!(e[0].contains("hubspot endpoints only"), "{e:?}");
    }
}
