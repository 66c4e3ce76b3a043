#!/usr/bin/env python3
"""Open N keep-alive connections, send one GET on each, read the response, hold them idle.

    python3 idle_client.py PORT N HOST HOLD_SECONDS [silent]

With `silent`, each connection is opened and sends nothing: the memory a connection costs
before its first byte.

Prints "ready <open> <seconds to open>" once every connection has had its response (run.sh
samples the server's RSS then), holds them for HOLD_SECONDS, then prints
"alive <still open> of <N>" (a connection the server closed reads EOF) and exits, closing
all of them. Needs `ulimit -n` above N.
"""
import asyncio
import sys
import time


async def one(port, host, sem, silent):
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if silent:
            return reader, writer
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"status {status!r}")
        return reader, writer


async def main():
    port, n, host, hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    silent = sys.argv[5:6] == ["silent"]
    sem = asyncio.Semaphore(200)  # connections being opened at once (listen backlog)
    t0 = time.monotonic()
    conns = await asyncio.gather(*(one(port, host, sem, silent) for _ in range(n)))
    print(f"ready {len(conns)} {time.monotonic() - t0:.2f}", flush=True)
    await asyncio.sleep(hold)
    # the transport keeps reading: a connection the server closed has seen EOF (or an error)
    alive = sum(1 for reader, _ in conns if not reader.at_eof() and reader.exception() is None)
    print(f"alive {alive} of {n}", flush=True)
    for _, writer in conns:
        writer.close()


asyncio.run(main())
