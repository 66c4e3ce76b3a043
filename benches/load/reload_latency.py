#!/usr/bin/env python3
"""Latency of a concurrent client while roomgate reloads (or not).

    python3 benches/load/reload_latency.py --addr 127.0.0.1:8080 --seconds 20 \
        [--hup-pid PID --hup-every 4]

CONNS threads each keep one HTTP/1.1 connection open and send GETs back to back, cycling
through the hosts of benches/load/bigconfig.py (`r<i>.room<i % ROOMS>.example.test`,
i not 2 mod 3 nor 9 mod 10, so the route has no paths and is exact). With --hup-pid, the
script sends SIGHUP to that process every --hup-every seconds (the first after one
interval), so the figures cover reloads. Prints requests, errors, p50/p99/p99.9/max in ms
and the number of reloads sent. Any status but 200 counts as an error.
"""

import argparse
import http.client
import os
import signal
import threading
import time


def hosts(routes: int, rooms: int):
    return [
        f"r{i}.room{i % rooms}.example.test"
        for i in range(routes)
        if i % 3 != 2 and i % 10 != 9
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--rooms", type=int, default=10_000)
    ap.add_argument("--routes", type=int, default=100_000)
    ap.add_argument("--hup-pid", type=int)
    ap.add_argument("--hup-every", type=float, default=4)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    names = hosts(a.routes, a.rooms)
    end = time.monotonic() + a.seconds
    lat: list[list[float]] = [[] for _ in range(a.conns)]
    errors = [0] * a.conns

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        i = n
        while time.monotonic() < end:
            name = names[(i * 7919) % len(names)]
            i += a.conns
            t = time.perf_counter()
            try:
                conn.request("GET", "/", headers={"Host": name})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            lat[n].append(time.perf_counter() - t)
            if not ok:
                errors[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(a.conns)]
    for t in threads:
        t.start()
    hups = 0
    if a.hup_pid:
        next_hup = time.monotonic() + a.hup_every
        while time.monotonic() < end - a.hup_every / 2:
            time.sleep(max(0.0, next_hup - time.monotonic()))
            os.kill(a.hup_pid, signal.SIGHUP)
            hups += 1
            next_hup += a.hup_every
    for t in threads:
        t.join()
    all_lat = sorted(x for l in lat for x in l)
    if not all_lat:
        raise SystemExit("no requests completed")

    def pct(p: float) -> float:
        return all_lat[min(len(all_lat) - 1, int(p / 100 * len(all_lat)))] * 1000

    print(
        f"requests={len(all_lat)} errors={sum(errors)} reloads_sent={hups} "
        f"p50={pct(50):.2f}ms p99={pct(99):.2f}ms p99.9={pct(99.9):.2f}ms "
        f"max={all_lat[-1] * 1000:.2f}ms"
    )


if __name__ == "__main__":
    main()
