"""A minimal headless-Chromium driver over the DevTools protocol on a pipe (``--remote-debugging-pipe``): stdlib only.

Used by the report and dashboard browser tests to open a page from disk, collect console errors, exceptions,
failed loads and network requests, evaluate JavaScript (audio metadata, plot geometry) and take a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--remote-debugging-pipe",
]


def chromium_path() -> str | None:
    """The Chromium binary, or None (install it with scripts/bootstrap.sh).

    Debian's ``/usr/bin/chromium`` is a shell launcher; the real binary beside it is used when present so the
    DevTools pipe descriptors reach the browser untouched.
    """
    for real in ("/usr/lib/chromium/chromium",):
        if os.access(real, os.X_OK):
            return real
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with a fresh profile, driven over the DevTools pipe."""

    def __init__(self, binary: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="xtts_qa-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # the child expects commands on fd 3 and writes replies on fd 4
            r, w = os.dup(to_child_r), os.dup(from_child_w)  # copies first: either end may already sit on 3 or 4
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=wire,
            close_fds=False,
        )  # fds 3 and 4 must survive
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # -- protocol ------------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from chromium")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError(
                        "chromium closed the DevTools pipe: "
                        + (self.proc.stderr.read().decode()[-2000:] if self.proc.stderr else "")
                    )
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        """Send a command and wait for its reply (events that arrive meanwhile are kept in ``events``)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(
        self, method: str | tuple[str, ...], timeout: float | None = None, *, since: int = 0
    ) -> dict[str, Any]:
        """The first event named ``method`` (or one of them) at or after index ``since`` of ``events``, waiting for it
        if need be."""
        methods = (method,) if isinstance(method, str) else method
        deadline = time.monotonic() + (timeout or self.timeout)
        for event in self.events[since:]:
            if event.get("method") in methods:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") in methods:
                return event

    # -- page ----------------------------------------------------------------------------------------
    def open(self, path: Path, width: int = 1400, height: int = 1000) -> None:
        """Attach to the page target, enable the domains that report problems, and load ``path`` from disk."""
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}, session=False
        )["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            self.send(domain)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.navigate(path)

    def navigate(self, path: Path, *, wait: str = "Page.loadEventFired") -> None:
        """Load ``path`` in the page opened by :meth:`open` and wait for the ``wait`` event of this navigation."""
        since = len(self.events)
        self.send("Page.navigate", {"url": path.resolve().as_uri()})
        dialog = "Page.javascriptDialogOpening"
        event = self.wait_for((wait, dialog), since=since)
        if event["method"] != wait:  # an open dialog blocks the load event: say so instead of timing out
            raise RuntimeError(f"{path} opened a JavaScript dialog ({event['params'].get('message')!r}) while loading")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, out: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and failed loads seen so far."""
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", ""))
            elif method == "Network.loadingFailed":
                out.append("load failed: " + p.get("errorText", ""))
        return out

    def dialogs(self) -> list[str]:
        """Messages of every JavaScript dialog (``alert``, ``confirm``, ``prompt``) a page opened so far."""
        return [
            str(e["params"].get("message")) for e in self.events if e.get("method") == "Page.javascriptDialogOpening"
        ]

    def dismiss_dialog(self) -> None:
        """Close the open JavaScript dialog (an open ``alert`` blocks the page's load event)."""
        self.send("Page.handleJavaScriptDialog", {"accept": True})

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: loads every <audio> element's metadata and reports what the browser made of it
AUDIO_PROBE = """
(async () => {
  const probe = (a) => new Promise((resolve) => {
    const done = () => resolve({src: a.currentSrc || a.src, readyState: a.readyState, duration: a.duration,
                                error: a.error ? a.error.code : null, canPlay: a.canPlayType('audio/wav')});
    if (a.readyState >= 1) return done();
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
    setTimeout(done, 8000);
    a.load();
  });
  return Promise.all([...document.querySelectorAll('audio')].map(probe));
})()
"""

#: the size of every plot and how many marks (bars, points, lines) it drew
PLOT_PROBE = """
[...document.querySelectorAll('svg.plot')].map((s) => {
  const box = s.getBoundingClientRect();
  return {kind: s.dataset.kind, width: box.width, height: box.height,
          marks: s.querySelectorAll('rect.bar, circle.point, polyline.line').length};
})
"""

#: what a page holds that could run script, and the text a reader sees (page title, body text, SVG labels)
SCRIPT_PROBE = """
(() => {
  const all = [...document.querySelectorAll('*')];
  return {
    title: document.title,
    text: document.body.innerText,
    allText: document.body.textContent,
    svgText: [...document.querySelectorAll('svg text, svg title')].map((t) => t.textContent),
    attributes: [...document.querySelectorAll('[title]')].map((e) => e.getAttribute('title')),
    scripts: document.querySelectorAll('script').length,
    images: document.querySelectorAll('img').length,
    handlers: all.filter((e) => [...e.attributes].some((a) => a.name.toLowerCase().startsWith('on')))
                 .map((e) => e.outerHTML.slice(0, 200)),
    tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))].sort(),
  };
})()
"""
