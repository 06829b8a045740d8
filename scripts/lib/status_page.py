#!/usr/bin/env python3
"""Drives headless Chromium (Debian's `chromium`) over the DevTools protocol
(python3-websockets) against hafront's status page, for scripts/lab/test_status_page.sh.

    status_page.py --url http://127.0.0.1:9165/status --token TOKEN --dir DIR \
        --instance web --node-name NAME [--screenshot PNG] [--phone-screenshot PNG]

1. Opens the page the way a person does: the daemon answers 401 with a Basic
   challenge and the browser answers it with the token as the password
   (Fetch.authRequired); JavaScript on.
2. Checks what the page shows: the instance's card in state BACKUP, the node name
   (which holds markup) shown as text in the title and the header, no element or
   script from the data, no CSP violation, no horizontal scroll at phone width.
3. Writes DIR/page-ready and waits for DIR/page-go (the test kills the master
   then), then polls the DOM of the page that stays open (never reloaded) until the
   card says MASTER, and prints the wall-clock time it did as JSON.
4. Loads the page again with JavaScript disabled: the server-rendered page alone
   shows the instance.
5. Screenshots (desktop, phone).
Exit code 0 when every check passed; each failure is printed.
"""
import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets


class Cdp:
    """One DevTools websocket (a page target): calls and event handlers."""

    def __init__(self, ws):
        self.ws = ws
        self.next = 0
        self.pending = {}
        self.handlers = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut and not fut.done():
                    fut.set_result(msg)
            elif msg.get("method") in self.handlers:
                asyncio.ensure_future(self.handlers[msg["method"]](msg.get("params", {})))

    async def call(self, method, **params):
        self.next += 1
        fut = asyncio.get_event_loop().create_future()
        self.pending[self.next] = fut
        await self.ws.send(json.dumps({"id": self.next, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 20)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    async def js(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")


def http_json(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def open_target(port, url="about:blank"):
    info = http_json(f"http://127.0.0.1:{port}/json/new?{url}", method="PUT")
    ws = await websockets.connect(info["webSocketDebuggerUrl"], max_size=None)
    return Cdp(ws)


async def load(cdp, url, timeout=15):
    done = asyncio.get_event_loop().create_future()

    async def loaded(_):
        if not done.done():
            done.set_result(True)

    cdp.handlers["Page.loadEventFired"] = loaded
    await cdp.call("Page.enable")
    await cdp.call("Page.navigate", url=url)
    await asyncio.wait_for(done, timeout)


CARD = "document.querySelector('[data-instance=\"%s\"]')"


async def run(a):
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures.append(what)

    profile = tempfile.mkdtemp(prefix="hafront-chromium-")
    browser = subprocess.Popen(
        [a.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--metrics-recording-only",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(a.dir, "chromium.log"), "w"))
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if browser.poll() is not None:
                raise RuntimeError(f"chromium exited ({browser.returncode}), see chromium.log")
            await asyncio.sleep(0.1)
        port = int(open(port_file).read().split()[0])

        page = await open_target(port)
        challenges = []
        csp = []

        async def auth(p):
            challenges.append(p["request"]["url"])
            await page.call("Fetch.continueWithAuth", requestId=p["requestId"], authChallengeResponse={
                "response": "ProvideCredentials", "username": "operator", "password": a.token})

        requested = []

        async def paused(p):
            requested.append(p["request"]["url"])
            await page.call("Fetch.continueRequest", requestId=p["requestId"])

        async def console(p):
            text = json.dumps(p)
            if "Content Security Policy" in text or "Content-Security-Policy" in text:
                csp.append(text)

        page.handlers["Fetch.authRequired"] = auth
        page.handlers["Fetch.requestPaused"] = paused
        page.handlers["Log.entryAdded"] = console
        page.handlers["Runtime.consoleAPICalled"] = console
        page.handlers["Runtime.exceptionThrown"] = console
        await page.call("Log.enable")
        await page.call("Runtime.enable")
        await page.call("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}])
        await load(page, a.url)
        check(len(challenges) >= 1, f"the page asked for credentials (Basic challenge) and took the token: {challenges[:1]}")
        card = CARD % a.instance
        state = await page.js(f"{card} && {card}.dataset.state")
        check(state == "backup", f"instance {a.instance} shows backup before the failover (shows {state!r})")
        await page.js("window.__sameDocument = 'yes'")
        title = await page.js("document.title")
        check(title == f"{a.node_name} · hafront", f"title shows the node name as text: {title!r}")
        node = await page.js("document.querySelector('h1 .node').textContent")
        check(node == a.node_name, f"header shows the node name as text: {node!r}")
        check(await page.js("document.querySelectorAll('script').length") == 1,
              "only the page's own script element")
        check(await page.js("document.querySelectorAll('img').length") == 0, "no element from the data (img)")
        check(await page.js("typeof window.pwned") == "undefined", "no script from the data ran")
        # Self-refresh running: the live part is replaced every second (the render time moves).
        t0 = await page.js("document.querySelector('header time').dataset.unixMs")
        await asyncio.sleep(2.2)
        t1 = await page.js("document.querySelector('header time').dataset.unixMs")
        check(t0 != t1, f"the live part re-rendered by itself ({t0} -> {t1})")
        conn = await page.js("document.getElementById('conn').textContent")
        check(conn.startswith("live"), f"connection indicator: {conn!r}")
        # Only one challenge: later requests reuse the credentials.
        n_challenges = len(challenges)

        # --- the failover, seen on the page that stays open --------------------------------
        open(os.path.join(a.dir, "page-ready"), "w").close()
        go = os.path.join(a.dir, "page-go")
        deadline = time.time() + 30
        while not os.path.exists(go):
            if time.time() > deadline:
                raise RuntimeError("page-go never came")
            await asyncio.sleep(0.01)
        seen = None
        polls = 0
        deadline = time.time() + a.wait
        while time.time() < deadline:
            polls += 1
            if await page.js(f"{card} && {card}.dataset.state") == "master":
                seen = time.time()
                break
            await asyncio.sleep(0.02)
        check(seen is not None, f"instance {a.instance} shows MASTER within {a.wait} s of the kill ({polls} DOM polls)")
        check(await page.js("window.__sameDocument") == "yes", "the same document throughout (no reload)")
        nav = await page.js("performance.getEntriesByType('navigation').length")
        check(nav == 1, f"one navigation: {nav}")
        check(len(challenges) == n_challenges, f"no new credential prompts while refreshing ({len(challenges) - n_challenges})")
        timeline = await page.js(f"{card}.querySelector('.timeline li').textContent")
        check("BACKUP → MASTER" in (timeline or ""), f"newest timeline entry: {timeline!r}")
        check(not csp, f"no CSP violations: {csp[:2]}")
        # The page names its icon (/status/icon.svg, a page path): a browser that asked
        # for /favicon.ico would get a 401, not a page path, on every visit.
        stray = [u for u in requested if u.split("?")[0].endswith("/favicon.ico")]
        check(not stray, f"no request for /favicon.ico: {stray[:1]}")
        check(any(u.endswith("/status/icon.svg") for u in requested), f"the page's icon was fetched: {requested[:8]}")

        # --- phone width: nothing wider than the screen ------------------------------------
        await asyncio.sleep(1.2)
        await page.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
        await asyncio.sleep(1.2)  # a refresh at that width
        widths = await page.js("[document.documentElement.scrollWidth, window.innerWidth]")
        check(widths[0] <= widths[1], f"no horizontal scroll at phone width (content {widths[0]} px, screen {widths[1]} px)")
        if a.phone_screenshot:
            shot = await page.call("Page.captureScreenshot", format="png")
            open(a.phone_screenshot, "wb").write(base64.b64decode(shot["data"]))
        await page.call("Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1, mobile=False)
        await asyncio.sleep(1.2)
        if a.screenshot:
            h = await page.js("document.documentElement.scrollHeight")
            await page.call("Emulation.setDeviceMetricsOverride", width=1200, height=min(int(h), 2400),
                            deviceScaleFactor=1, mobile=False)
            await asyncio.sleep(0.3)
            shot = await page.call("Page.captureScreenshot", format="png")
            open(a.screenshot, "wb").write(base64.b64decode(shot["data"]))

        # --- without JavaScript: the server-rendered page alone -----------------------------
        nojs = await open_target(port)
        cred = base64.b64encode(f"operator:{a.token}".encode()).decode()
        await nojs.call("Network.enable")
        await nojs.call("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {cred}"})
        await nojs.call("Emulation.setScriptExecutionDisabled", value=True)
        await load(nojs, a.url)
        state = await nojs.js(f"{card} && {card}.dataset.state")
        check(state == "master", f"without JavaScript the page shows {a.instance} master (shows {state!r})")
        refresh = await nojs.js("document.querySelector('noscript') !== null")
        check(refresh, "a <noscript> refresh is in the page")

        print(json.dumps({"seen_master_unix_ms": round(seen * 1000) if seen else None, "polls": polls,
                          "challenges": len(challenges)}), flush=True)
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--instance", required=True)
    p.add_argument("--node-name", required=True)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--chromium", default="chromium")
    p.add_argument("--screenshot")
    p.add_argument("--phone-screenshot")
    a = p.parse_args()
    sys.exit(asyncio.run(run(a)))


if __name__ == "__main__":
    main()
