//! Routes: each domain once, each naming a room and a published port of it.
//!
//! Rooms and ports are looked up through indexes built once, so checking grows linearly
//! with the number of routes (100 000 routes over 10 000 rooms is one pass).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::model::*;
use super::validate::Checker;
use super::validate_rooms::check_path;
use super::PortSpec;
use crate::canonical::DomainPattern;

pub(super) fn check_routes(c: &mut Checker<'_>, file: &FileConfig, ports: &[Arc<PortSpec>]) {
    let rooms: HashSet<&str> = file.rooms.iter().map(|r| r.name.as_str()).collect();
    let published: HashMap<(&str, u16), bool> = ports
        .iter()
        .map(|p| ((p.room.as_str(), p.num), p.published))
        .collect();
    let mut domains: HashMap<String, usize> = HashMap::with_capacity(file.routes.len());
    for (i, route) in file.routes.iter().enumerate() {
        let rpath = || format!("routes[{i}]");
        match DomainPattern::parse(&route.domain) {
            Ok(d) => {
                if let Some(first) = domains.insert(d.to_string(), i) {
                    c.err(
                        format!("{}.domain", rpath()),
                        format!("duplicate domain {:?} (also routes[{first}])", route.domain),
                    );
                }
            }
            Err(m) => c.err(format!("{}.domain", rpath()), m),
        }
        if !rooms.contains(route.room.as_str()) {
            c.err(
                format!("{}.room", rpath()),
                format!("unknown room {:?}", route.room),
            );
            continue;
        }
        if route.port.is_none() && route.paths.is_empty() {
            c.err(rpath(), "a route needs a port or paths");
        }
        let check_port = |c: &mut Checker<'_>, path: &dyn Fn() -> String, num: u16| match published
            .get(&(route.room.as_str(), num))
        {
            None => c.err(path(), format!("room {:?} has no port {num}", route.room)),
            Some(false) => c.err(
                path(),
                format!("port {num} of room {:?} is not published", route.room),
            ),
            Some(true) => {}
        };
        if let Some(num) = route.port {
            check_port(c, &|| format!("{}.port", rpath()), num);
        }
        let mut seen = HashSet::new();
        for (pi, p) in route.paths.iter().enumerate() {
            let ppath = || format!("{}.paths[{pi}]", rpath());
            check_path(c, || format!("{}.path", ppath()), &p.path);
            if !seen.insert((p.path.trim_end_matches('/'), p.match_)) {
                c.err(
                    format!("{}.path", ppath()),
                    format!("duplicate path {:?}", p.path),
                );
            }
            check_port(c, &|| format!("{}.port", ppath()), p.port);
        }
    }
}
