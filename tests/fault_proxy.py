#!/usr/bin/env python3
"""A fault-injecting TCP proxy for the fleet tests: the kernel here has no netem qdisc.

It sits between one test host (a network namespace) and the S3 cluster, listens on LISTEN and
forwards each connection to the first upstream that accepts it (a client-side balancer: a
killed node is skipped, as a load balancer's health check would), starting from the next
upstream each time so connections spread over the nodes.

Faults are set at run time through a line protocol on the control address (one command per
connection, answered with one line):

    delay MS      add MS milliseconds to every chunk, in each direction (latency, not rate)
    reset         reset (RST) every open connection now
    reset-every N reset one connection in N when its first answer bytes come back (the server
                  did the request, the client never hears it), until `heal`
    stall         the connections open now freeze for good (a half-dead TCP connection: no
                  reset, no data); new connections work
    heal          no more faults for new bytes and connections (delay 0, no resets)
    stats         counters: connections, resets, bytes each way, upstream failures

Usage: fault_proxy.py --listen HOST:PORT --control HOST:PORT --upstream HOST:PORT [...]
Prints "ready" on stdout once both addresses listen.
"""

import argparse
import asyncio
import socket
import struct
import sys
import time


class Faults:
    def __init__(self):
        self.delay = 0.0
        self.reset_every = 0
        self.conns = set()
        self.stats = {"connections": 0, "resets": 0, "up_bytes": 0, "down_bytes": 0, "upstream_failures": 0}


def hard_close(writer):
    """Closes with RST: SO_LINGER on, timeout 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def pump(reader, writer, faults, counter, doomed, flowing):
    """Copies reader to writer, each chunk held for the delay, in order; stops moving bytes
    for good when `flowing` is cleared."""
    queue = asyncio.Queue()

    async def read():
        try:
            while True:
                data = await reader.read(65536)
                await queue.put((time.monotonic() + faults.delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((0, b""))

    async def write():
        first = True
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await flowing.wait()
            if not data:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            if first and doomed:
                faults.stats["resets"] += 1
                raise ConnectionResetError("injected reset")
            first = False
            writer.write(data)
            faults.stats[counter] += len(data)
            await writer.drain()

    reading = asyncio.ensure_future(read())
    try:
        await write()
    finally:
        reading.cancel()


async def handle(client_reader, client_writer, upstreams, faults, turn):
    faults.stats["connections"] += 1
    n = faults.stats["connections"]
    doomed = faults.reset_every > 0 and n % faults.reset_every == 0
    start = next(turn)
    up = None
    for i in range(len(upstreams)):
        host, port = upstreams[(start + i) % len(upstreams)]
        try:
            up = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
            break
        except (OSError, asyncio.TimeoutError):
            faults.stats["upstream_failures"] += 1
    if up is None:
        hard_close(client_writer)
        return
    up_reader, up_writer = up
    flowing = asyncio.Event()
    flowing.set()
    pair = (client_writer, up_writer, flowing)
    faults.conns.add(pair)
    tasks = [
        # A doomed connection dies when the answer comes: the server has done the request
        # (stored the object), the client never hears it, and must retry it safely.
        asyncio.ensure_future(pump(client_reader, up_writer, faults, "up_bytes", False, flowing)),
        asyncio.ensure_future(pump(up_reader, client_writer, faults, "down_bytes", doomed, flowing)),
    ]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if any(t.exception() for t in done if not t.cancelled()):
            for t in pending:
                t.cancel()
            hard_close(client_writer)
            hard_close(up_writer)
        else:
            await asyncio.gather(*pending, return_exceptions=True)
            client_writer.close()
            up_writer.close()
    except (ConnectionError, OSError):
        hard_close(client_writer)
        hard_close(up_writer)
    finally:
        faults.conns.discard(pair)


async def control(reader, writer, faults):
    line = (await reader.readline()).decode().strip()
    words = line.split()
    answer = "ok"
    if not words:
        answer = "error: empty command"
    elif words[0] == "delay" and len(words) == 2:
        faults.delay = float(words[1]) / 1000.0
    elif words[0] == "reset":
        for client, upstream, _ in list(faults.conns):
            faults.stats["resets"] += 1
            hard_close(client)
            hard_close(upstream)
    elif words[0] == "reset-every" and len(words) == 2:
        faults.reset_every = int(words[1])
    elif words[0] == "stall":
        for _, _, flowing in list(faults.conns):
            flowing.clear()
        faults.stats["stalled"] = faults.stats.get("stalled", 0) + len(faults.conns)
    elif words[0] == "heal":
        faults.delay = 0.0
        faults.reset_every = 0
    elif words[0] == "stats":
        answer = " ".join(f"{k}={v}" for k, v in faults.stats.items())
    else:
        answer = f"error: unknown command '{line}'"
    writer.write((answer + "\n").encode())
    await writer.drain()
    writer.close()


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def die_with_parent():
    """The proxy must not outlive the test that started it (a killed test leaves no proxy)."""
    try:
        import ctypes
        import signal as sig

        ctypes.CDLL("libc.so.6").prctl(1, int(sig.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        pass


async def main():
    die_with_parent()
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True, type=address)
    p.add_argument("--control", required=True, type=address)
    p.add_argument("--upstream", required=True, action="append", type=address)
    a = p.parse_args()
    faults = Faults()
    counter = iter(range(1 << 62))
    turn = (i % len(a.upstream) for i in counter)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, a.upstream, faults, turn), a.listen[0], a.listen[1]
    )
    ctl = await asyncio.start_server(lambda r, w: control(r, w, faults), a.control[0], a.control[1])
    print("ready", flush=True)
    async with server, ctl:
        await asyncio.gather(server.serve_forever(), ctl.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
