#!/usr/bin/env python3
"""Smoke test of examples/ws_chat with python3-websockets (ctest label peers).

  ws_chat_smoke.py PATH/TO/ws_chat

Starts ws_chat on a free port; checks GET / serves the page; two clients
exchange a message (both see it, prefixed with the sender's number); a slow
client that never reads is disconnected (close 1008) while the other two
keep chatting without delay; SIGTERM stops the server with status 0.
"""
import asyncio
import http.client
import signal
import subprocess
import sys
import time

import websockets


async def main(binary):
    proc = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    port = int(line.rsplit(":", 1)[1])
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        r = c.getresponse()
        body = r.read().decode()
        assert r.status == 200 and "new WebSocket" in body, (r.status, body[:80])
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/nothing")
        assert c.getresponse().status == 404
        c.close()

        url = f"ws://127.0.0.1:{port}/chat"
        # Readers that keep up: they buffer whatever comes (no max_queue).
        a = await websockets.connect(url, max_queue=None)
        b = await websockets.connect(url, max_queue=None)
        await a.send("hello from a")
        for ws in (a, b):
            m = await asyncio.wait_for(ws.recv(), 5)
            assert m.endswith(": hello from a"), m

        # The slow client: a raw socket with a tiny receive buffer that never
        # reads after the handshake.
        import socket, base64, os
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

        # a floods; b keeps reading; the slow one fills its queue and is dropped.
        big = "x" * 8000
        N = 1500
        t0 = time.monotonic()

        # The sender waits for the two live readers every 50 messages (a
        # chat is paced by people; a flood from one client is not the case
        # here): they keep up, the silent one falls behind and is dropped.
        for batch in range(N // 50):
            for i in range(50):
                await a.send(big)
            for ws in (a, b):
                for i in range(50):
                    await asyncio.wait_for(ws.recv(), 10)
        took = time.monotonic() - t0
        assert took < 8, took
        # The slow client was disconnected: the server reports it on stdout.
        deadline = time.monotonic() + 10
        seen = False
        while time.monotonic() < deadline:
            l = proc.stdout.readline()
            if "too slow" in l:
                seen = True
                break
        assert seen, "slow client not dropped"
        s.close()
        await a.close()
        await b.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
    assert rc == 0, rc
    print("ws_chat smoke OK")


asyncio.run(main(sys.argv[1]))
