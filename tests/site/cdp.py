"""A small Chrome DevTools Protocol client for the browser tests, with no dependency.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages (JSON,
each ended by a NUL byte) on its file descriptor 3 and writes its answers and events on
descriptor 4. This is how Playwright talks to it too; no websocket and no port are
needed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time

# The flags this machine's closed network needs (without the background-networking ones
# Chromium keeps trying to reach Google's hosts), plus headless rendering at a fixed
# scale.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
    "--mute-audio",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium; `page()` opens a tab that records console errors and
    requests."""

    def __init__(self, executable: str, user_data_dir: str, timeout: float = 60.0):
        self.timeout = timeout
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Move the child's ends above 10 so that putting them on 3 and 4 cannot clobber
        # either.
        child_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def on_3_and_4():
            os.dup2(
                child_r, 3
            )  # dup2 makes them inheritable; every other pipe end is close-on-exec
            os.dup2(child_w, 4)

        self.process = subprocess.Popen(
            [
                executable,
                *FLAGS,
                f"--user-data-dir={user_data_dir}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=on_3_and_4,
        )
        os.close(child_r)
        os.close(child_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._answers: dict[int, queue.Queue] = {}
        self._listeners: dict[str, list] = {}  # sessionId -> list of event lists
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.version = self.send("Browser.getVersion")["product"]

    # -- protocol
    # -----------------------------------------------------------------------------
    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for answer in list(self._answers.values()):
                    answer.put({"error": {"message": "the browser closed its pipe"}})
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    answer = self._answers.get(message["id"])
                    if answer is not None:
                        answer.put(message)
                else:
                    for events in self._listeners.get(message.get("sessionId", ""), []):
                        events.append(message)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float | None = None,
    ):
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._answers[ident] = answer = queue.Queue()
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        try:
            reply = answer.get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise CDPError(
                f"{method}: no answer from the browser in {timeout or self.timeout} s"
            ) from None
        finally:
            self._answers.pop(ident, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def page(self, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        return Page(self, target, session, width, height)

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except CDPError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)


class Page:
    """A tab. `events` holds every protocol event of the tab since the last `goto`."""

    def __init__(
        self, browser: Browser, target: str, session: str, width: int, height: int
    ):
        self.browser, self.target, self.session = browser, target, session
        self.width, self.height = width, height
        self.events: list[dict] = []
        browser._listeners.setdefault(session, []).append(self.events)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def send(
        self, method: str, params: dict | None = None, timeout: float | None = None
    ):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str, timeout: float = 60.0):
        """Load `url` and wait for its load event."""
        self.events.clear()
        reply = self.send("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise CDPError(f"{url}: {reply['errorText']}")
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in list(self.events)):
            if time.monotonic() > deadline:
                raise CDPError(f"{url}: no load event in {timeout} s")
            time.sleep(0.05)

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        reply = self.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
                "timeout": timeout * 1000,
            },
            timeout=timeout + 5,
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            what = details.get("exception", {}).get("description") or details.get(
                "text"
            )
            raise CDPError(f"{expression[:80]!r} threw: {what}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"{expression!r} still false after {timeout} s")
            time.sleep(0.1)

    def screenshot(self, path, full_page: bool = True, max_height: int = 30000):
        """Save a PNG of the page, the whole scrolled length when full_page."""
        height = self.height
        if full_page:
            height = min(
                int(self.evaluate("document.documentElement.scrollHeight")), max_height
            )
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": self.width,
                    "height": height,
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
            )
        try:
            data = self.send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": self.width,
                        "height": height,
                        "scale": 1,
                    },
                    "captureBeyondViewport": True,
                },
                timeout=120,
            )["data"]
        finally:
            if full_page:
                self.send(
                    "Emulation.setDeviceMetricsOverride",
                    {
                        "width": self.width,
                        "height": self.height,
                        "deviceScaleFactor": 1,
                        "mobile": False,
                    },
                )
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        self.browser._listeners.get(self.session, []).remove(self.events)
        self.browser.send("Target.closeTarget", {"targetId": self.target})
