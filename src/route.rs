//! Routing: a request's canonical host and path (see [`crate::canonical`]) to a room's
//! published port and the policy that applies, through a table built once per config.

use std::collections::HashMap;
use std::sync::Arc;

use crate::canonical::{match_view, DomainPattern};
use crate::config::{same_path, segment_prefix, Config, PathMatch, Policy, PortSpec};
use crate::telemetry::RouteMetrics;

#[derive(Debug)]
struct PathRoute {
    path: String,
    exact: bool,
    port: Arc<PortSpec>,
}

#[derive(Debug, Default)]
struct DomainRoutes {
    /// Longest path first.
    paths: Vec<PathRoute>,
    default: Option<Arc<PortSpec>>,
}

impl DomainRoutes {
    fn resolve(&self, path: &str) -> Option<&Arc<PortSpec>> {
        self.paths
            .iter()
            .find(|r| {
                let fold = r.port.case_insensitive;
                if r.exact {
                    same_path(&r.path, path, fold)
                } else {
                    segment_prefix(&r.path, path, fold)
                }
            })
            .map(|r| &r.port)
            .or(self.default.as_ref())
    }
}

/// The result of routing a request.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The domain pattern that matched (for metrics and logs).
    pub domain: &'a Arc<String>,
    /// The domain's request series.
    pub metrics: &'a RouteMetrics,
    pub port: &'a Arc<PortSpec>,
    /// The endpoint path that matched, `""` for the port's own policy.
    pub endpoint: &'a str,
    pub policy: &'a Arc<Policy>,
}

/// Domains to ports, built once per config: O(1) in the number of domains.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Domain, Hasher>,
    wildcard: HashMap<String, Domain, Hasher>,
}

/// One configured domain: its label, its series and its routes.
#[derive(Debug)]
struct Domain {
    name: Arc<String>,
    metrics: RouteMetrics,
    routes: DomainRoutes,
}

/// A fast, randomly seeded hasher: the table is fixed at build and lookups cannot add
/// keys, so SipHash's cost buys nothing here.
type Hasher = foldhash::fast::RandomState;

impl RouteTable {
    /// Build from a validated config (which guarantees every route's port exists).
    pub fn build(config: &Config) -> RouteTable {
        let mut table = RouteTable::default();
        for route in &config.file.routes {
            let Ok(pattern) = DomainPattern::parse(&route.domain) else {
                continue;
            };
            let port_of = |num: u16| config.port(&route.room, num).cloned();
            let mut routes = DomainRoutes {
                default: route.port.and_then(port_of),
                paths: route
                    .paths
                    .iter()
                    .filter_map(|p| {
                        Some(PathRoute {
                            path: p.path.clone(),
                            exact: p.match_ == PathMatch::Exact,
                            port: port_of(p.port)?,
                        })
                    })
                    .collect(),
            };
            // Longest first; at equal length an exact match wins over a prefix.
            routes
                .paths
                .sort_by_key(|r| (std::cmp::Reverse(r.path.len()), !r.exact));
            let domain = Domain {
                name: Arc::new(pattern.to_string()),
                metrics: RouteMetrics::default(),
                routes,
            };
            match pattern {
                DomainPattern::Exact(d) => table.exact.insert(d, domain),
                DomainPattern::Wildcard(d) => table.wildcard.insert(d, domain),
            };
        }
        table
    }

    /// Route a canonical host and path. Exact domains beat wildcards. Paths are matched
    /// as [`match_view`] reads them.
    pub fn resolve(&self, host: &str, path: &str) -> Option<Resolved<'_>> {
        let domain = self.exact.get(host).or_else(|| {
            let dot = host.bytes().position(|b| b == b'.')?;
            self.wildcard.get(&host[dot + 1..])
        })?;
        let path = match_view(path);
        let port = domain.routes.resolve(&path)?;
        let (endpoint, policy) = port.policy_for(&path);
        Some(Resolved {
            domain: &domain.name,
            metrics: &domain.metrics,
            port,
            endpoint,
            policy,
        })
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
