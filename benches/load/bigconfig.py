#!/usr/bin/env python3
"""Write a large roomgate config: ROOMS rooms and ROUTES routes (default 10 000 and 100 000).

    python3 benches/load/bigconfig.py > /tmp/big.yaml
    python3 benches/load/bigconfig.py --rooms 2000 --routes 20000 --port 5002 --http 127.0.0.1:8080

Every room has a public service (port PORT) and a private one (PORT+1) with an endpoint
that carries annotations, so validation decides two policies per room. Routes are spread
evenly over the rooms: one in ten is a one-label wildcard, one in three has a `paths`
list. Domains are `r<route>.room<room>.example.test` and `*.w<route>.room<room>.example.test`;
`r0.room0.example.test` always routes to the public port.
"""

import argparse
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=10_000)
    ap.add_argument("--routes", type=int, default=100_000)
    ap.add_argument("--port", type=int, default=5002, help="the public upstream port")
    ap.add_argument("--http", default="127.0.0.1:0", help="listen.http")
    ap.add_argument("--admin", default=None, help="listen.admin")
    a = ap.parse_args()
    if a.rooms < 1 or a.routes < 1:
        sys.exit("--rooms and --routes must be at least 1")

    out = []
    w = out.append
    w("version: v1\n")
    w(f"listen:\n  http: {a.http}\n")
    if a.admin:
        w(f"  admin: {a.admin}\n")
    w("tokens:\n  keys:\n")
    w('    - {kid: k1, secret: {value: "bench-only-token-secret-0123456789abcdef"}}\n')
    w("rooms:\n")
    pub, priv = a.port, a.port + 1
    for r in range(a.rooms):
        w(f"  - name: room{r}\n    host: 127.0.0.1\n")
        w(f"    participants:\n      - {{email_domains: [room{r}.example.test]}}\n")
        w("    services:\n")
        w(f"      - name: web\n        ports:\n          - {{num: {pub}, published: true, public: true}}\n")
        w(f"      - name: api\n        ports:\n          - num: {priv}\n            published: true\n")
        w("            annotations: {roomgate.rate_limit: \"600/m\"}\n")
        w("            endpoints:\n")
        w("              - path: /admin\n")
        w("                annotations: {roomgate.request.max_body_bytes: \"65536\"}\n")
    w("routes:\n")
    for i in range(a.routes):
        room = i % a.rooms
        if i % 10 == 9:
            domain = f'"*.w{i}.room{room}.example.test"'
        else:
            domain = f"r{i}.room{room}.example.test"
        if i % 3 == 2:
            w(f"  - domain: {domain}\n    room: room{room}\n    port: {pub}\n")
            w(f"    paths: [{{path: /api, port: {priv}}}, {{path: /api/health, match: exact, port: {pub}}}]\n")
        else:
            w(f"  - {{domain: {domain}, room: room{room}, port: {pub}}}\n")
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
