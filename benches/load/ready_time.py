#!/usr/bin/env python3
"""Seconds from starting `roomgate serve` until a routed GET answers 200, and its RSS.

    python3 benches/load/ready_time.py BIN CONFIG HTTP_PORT [HOST]

Starts BIN serve --config CONFIG, sends `GET /` with Host HOST (default
r0.room0.example.test, a route of benches/load/bigconfig.py) every 10 ms until one answers
200, prints the time, the CPU time (user + system) the process had used, its RSS and
peak RSS then (on a shared machine the CPU time is the steadier figure), and stops it (SIGTERM).
"""

import http.client
import os
import signal
import subprocess
import sys
import time

bin_, config, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = sys.argv[4] if len(sys.argv) > 4 else "r0.room0.example.test"
env = dict(os.environ, ROOMGATE_LOG="error")
start = time.monotonic()
p = subprocess.Popen([bin_, "serve", "--config", config], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
status = None
while status != 200:
    if p.poll() is not None:
        sys.exit(f"roomgate exited with {p.returncode}")
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/", headers={"Host": host})
        status = c.getresponse().status
        c.close()
    except OSError:
        time.sleep(0.01)
took = time.monotonic() - start
mem = {}
with open(f"/proc/{p.pid}/status") as f:
    for line in f:
        k, _, v = line.partition(":")
        mem[k] = v.strip()
with open(f"/proc/{p.pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
print(f"ready_after={took:.3f}s cpu={cpu:.2f}s rss={mem['VmRSS']} peak_rss={mem['VmHWM']}")
p.send_signal(signal.SIGTERM)
p.wait()
