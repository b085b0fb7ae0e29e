#!/usr/bin/env python3
"""WebSocket peer for tests/test_ws_peers.c, on Debian's python3-websockets.

  ws_peer.py server           echo server on a free port; prints "READY <port>"
  ws_peer.py client URL       drives a tide echo server; prints "OK" or fails
  ws_peer.py smoke BINARY     starts examples/ws_echo (BINARY 0), drives it as
                              client does (no subprotocol), stops it with SIGTERM
"""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for m in ws:
            if m == "close-4000":
                await ws.close(4000, "as asked")
                return
            await ws.send(m)
    except websockets.ConnectionClosed:
        pass


async def serve():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=2**24) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("READY", port, flush=True)
        await asyncio.Future()


async def client(url, proto=True):
    async with websockets.connect(url, max_size=2**24,
                                  subprotocols=["x", "echo"] if proto else None) as ws:
        assert ws.subprotocol == ("echo" if proto else None), ws.subprotocol
        cases = ["", "hello", "κόσμε €𐍈", b"", b"\x00\xff" * 5, "x" * 125, "y" * 126,
                 b"z" * 65535, b"w" * 65536, "é" * 100000]
        for m in cases:
            await ws.send(m)
            r = await ws.recv()
            assert r == m and type(r) == type(m), (len(r), len(m))
        # A fragmented message, text then binary.
        await ws.send(iter(["frag", "ment", "ed"]))
        assert await ws.recv() == "fragmented"
        await ws.send(iter([b"a", b"", b"b"]))
        assert await ws.recv() == b"ab"
        # Pings with payloads, answered with the same payload.
        for p in [b"", b"p" * 125]:
            w = await ws.ping(p)
            await asyncio.wait_for(w, 5)
        # Many messages in flight at once.
        for i in range(200):
            await ws.send("m%d" % i)
        for i in range(200):
            assert await ws.recv() == "m%d" % i
        await ws.close(1000, "bye")
        assert ws.close_code == 1000, ws.close_code
    print("OK", flush=True)


def smoke(binary):
    import signal
    import subprocess
    proc = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        asyncio.run(client(f"ws://127.0.0.1:{port}/any/path", proto=False))
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
    assert rc == 0, rc


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve())
    elif sys.argv[1] == "smoke":
        smoke(sys.argv[2])
    else:
        asyncio.run(client(sys.argv[2]))
