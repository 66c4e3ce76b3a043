//! Rooms, their services and ports: names, port numbers, paths and the policy each port
//! and endpoint gets from its annotations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::annotations;
use super::model::*;
use super::policy::{self, Policy, Validation};
use super::validate::Checker;
use super::PortSpec;

pub(super) fn check_rooms(c: &mut Checker<'_>, file: &FileConfig) -> Vec<Arc<PortSpec>> {
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
                key_problems(c, &ppath, &port.annotations, true);
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
                    check_path(c, || format!("{epath}.path"), &ep.path);
                    key_problems(c, &epath, &ep.annotations, false);
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

/// Unknown keys in roomgate's namespaces, and port-only keys on an endpoint, at
/// `<at>.annotations.<key>`.
fn key_problems(c: &mut Checker<'_>, at: &str, ann: &BTreeMap<String, String>, at_port: bool) {
    for (key, message) in annotations::check_keys(ann, at_port) {
        c.err(format!("{at}.annotations.{key}"), message);
    }
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

/// Participant emails and domains in the form requests compare them in, once at load
/// rather than on every request.
pub(super) fn normalize_participants(rooms: &mut [Room]) {
    rooms
        .iter_mut()
        .flat_map(|r| r.participants.iter_mut())
        .for_each(ParticipantRule::normalize);
}

/// A route or endpoint path must be written as requests are matched: in canonical form
/// (`/%7Eb` would never match, since requests arrive as `/~b`). A trailing `/` is allowed.
pub(super) fn check_path(c: &mut Checker<'_>, at: impl FnOnce() -> String, path: &str) {
    if !path.starts_with('/') {
        c.err(at(), "must start with /");
        return;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        t => t,
    };
    match crate::canonical::canonical_path(trimmed) {
        Ok(canon) if canon == trimmed => {}
        Ok(canon) => c.err(
            at(),
            format!("must be written in canonical form: {canon:?}"),
        ),
        Err(e) => c.err(at(), format!("is not a valid path: {e}")),
    }
}
