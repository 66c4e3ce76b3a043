//! Route resolution at 10, 1k and 100k domains (an exact domain, and a host that misses
//! every exact domain and falls back to a wildcard), and header hygiene on a realistic set.
//!
//! `cargo bench --bench route`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};
use roomgate::canonical::{canonical_host, canonical_path};
use roomgate::config::{Config, LoadContext};
use roomgate::route::RouteTable;
use roomgate::{forwarded, headers};

/// `domains` routes; one in ten is a wildcard `*.w<i>.tenant<n>.example.test`.
fn config_with(domains: usize) -> Config {
    let mut yaml = String::from(
        "version: v1\nlisten: {http: 127.0.0.1:0}\nrooms:\n  - name: acme\n    services:\n      - name: web\n        ports:\n          - {num: 5002, published: true, public: true}\n          - {num: 5003, published: true}\nroutes:\n",
    );
    for i in 0..domains {
        let domain = if i % 10 == 9 {
            format!("\"*.w{i}.tenant{}.example.test\"", i % 97)
        } else {
            format!("app{i}.tenant{}.example.test", i % 97)
        };
        yaml.push_str(&format!(
            "  - domain: {domain}\n    room: acme\n    port: 5002\n    paths: [{{path: /api, port: 5003}}]\n"
        ));
    }
    Config::from_yaml_str(&yaml, &LoadContext::default()).expect("bench config")
}

fn resolution(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_resolve");
    for n in [10usize, 1_000, 100_000] {
        let table = RouteTable::build(&config_with(n));
        let exact = format!("App{}.Tenant{}.example.test:443", n / 2, (n / 2) % 97);
        let w = n - 1;
        let wildcard = format!("Tenant-X.W{w}.Tenant{}.example.test:443", w % 97);
        for (kind, host) in [("exact", exact), ("wildcard", wildcard)] {
            let h = canonical_host(&host).expect("host");
            assert!(table.resolve(&h, "/api/v1/items").is_some(), "{host}");
            group.bench_with_input(BenchmarkId::new(kind, n), &n, |b, _| {
                b.iter(|| {
                    let h = canonical_host(black_box(&host)).expect("host");
                    let p = canonical_path(black_box("/api/v1/items")).expect("path");
                    black_box(table.resolve(&h, &p).map(|r| r.port.num))
                })
            });
        }
    }
    group.finish();
}

fn realistic_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "app.acme.example.test"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "theme=dark; __meshagent_iap=abcdefabcdefabcdefabcdef; lang=en"),
        ("connection", "keep-alive"),
        ("x-meshagent-user", "mallory"),
        ("x-forwarded-for", "203.0.113.9"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "none"),
        ("upgrade-insecure-requests", "1"),
    ] {
        h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

fn hygiene(c: &mut Criterion) {
    let base = realistic_headers();
    let peer = forwarded::peer_value("198.51.100.7".parse().expect("ip"));
    let host = roomgate::canonical::canonical_host("app.acme.example.test").expect("host");
    c.bench_function("header_hygiene", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |h| {
                let names = headers::Names::of(h);
                assert!(!names.underscore(), "clean names");
                names.strip_identity(h);
                names.strip_hop_by_hop(h, false);
                let fwd = forwarded::decide(
                    h,
                    forwarded::Hop {
                        peer: &peer,
                        tls: true,
                        host: &host,
                        trusted: false,
                    },
                );
                if names.cookie() {
                    roomgate::cookies::strip(h, &roomgate::auth::iap::NOT_FORWARDED_COOKIES);
                }
                fwd
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, resolution, hygiene);
criterion_main!(benches);
