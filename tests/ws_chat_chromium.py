#!/usr/bin/env python3
"""Headless Chromium check of examples/ws_chat's page (ctest label peers).

  ws_chat_chromium.py PATH/TO/ws_chat

Starts ws_chat and a headless Chromium, drives it over the DevTools
protocol (itself a WebSocket, through python3-websockets): opens the page
in two tabs, waits until both connected, types a message in the first one's
page (its form's send), and waits until the second one's log shows it.
Chromium missing: prints the apt-get command and exits 77 (skipped).
"""
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import websockets


class Cdp:
    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(await self.ws.recv())
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError(r["error"])
                return r["result"]

    async def eval(self, session, expr):
        r = await self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
        return r["result"].get("value")


async def main(binary):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("chromium not installed: apt-get install chromium (skipped)")
        sys.exit(77)
    chat = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, text=True)
    port = int(chat.stdout.readline().rsplit(":", 1)[1])
    profile = tempfile.mkdtemp(prefix="ws-chat-chromium-")
    chrome = subprocess.Popen([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                               "--remote-debugging-port=0", "--user-data-dir=" + profile,
                               "about:blank"], stderr=subprocess.PIPE, text=True)
    try:
        url = None
        while url is None:
            line = chrome.stderr.readline()
            if not line:
                raise RuntimeError("chromium exited")
            m = re.search(r"(ws://\S+/devtools/browser/\S+)", line)
            if m:
                url = m.group(1)
        async with websockets.connect(url, max_size=None) as ws:
            cdp = Cdp(ws)
            page = f"http://127.0.0.1:{port}/"
            sessions = []
            for _ in range(2):
                t = await cdp.call("Target.createTarget", {"url": page})
                s = await cdp.call("Target.attachToTarget",
                                   {"targetId": t["targetId"], "flatten": True})
                sessions.append(s["sessionId"])
            for s in sessions:
                for _ in range(100):
                    if await cdp.eval(s, "document.body && document.body.dataset.open") == "1":
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError("a page did not connect")
            await cdp.eval(sessions[0], "document.getElementById('msg').value = 'hi from tab 1';"
                           "document.getElementById('f').requestSubmit(); 1")
            for _ in range(100):
                text = await cdp.eval(sessions[1], "document.getElementById('log').textContent")
                if text and "hi from tab 1" in text:
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the second tab never saw the message")
    finally:
        chrome.send_signal(signal.SIGTERM)
        try:
            chrome.wait(10)
        except subprocess.TimeoutExpired:
            chrome.kill()
            chrome.wait()
        shutil.rmtree(profile, ignore_errors=True)
        chat.send_signal(signal.SIGTERM)
        chat.wait(10)
    print("ws_chat chromium OK")


asyncio.run(main(sys.argv[1]))
