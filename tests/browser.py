"""Headless Chromium (Debian's `chromium`) driven through the DevTools protocol, for tests that
read a page's DOM: a fresh profile each time, every wait bounded, stopped by the PID started."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed: run 'make apt' (installs Debian's chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--remote-debugging-port=0"]


class Chromium:
    """One headless browser showing one page; `close()` kills it and removes its profile."""

    def __init__(self, url: str, width: int = 1600, height: int = 1000,
                 timeout: float = 30.0) -> None:
        assert CHROMIUM is not None
        self.profile = Path(tempfile.mkdtemp(prefix="chaos-drill-chromium-"))
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        try:
            self.socket = self._connect(timeout)
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> websocket.WebSocket:
        """The page target's DevTools socket, once Chromium wrote its port to the profile."""
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            try:
                port = int(port_file.read_text().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                            timeout=5) as response:
                    targets = json.load(response)
                page = next(t for t in targets if t.get("type") == "page")
                return websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10,
                                                   suppress_origin=True)
            except (OSError, ValueError, IndexError, StopIteration):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"chromium's DevTools did not answer in {timeout}s") \
                        from None
                time.sleep(0.1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result (events in between are skipped)."""
        number = next(self._ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str = "") -> None:
        """Polls EXPRESSION until it is truthy in JavaScript (an exception counts as not yet:
        the page may still be loading); fails the test with what the page shows after TIMEOUT."""
        deadline = time.monotonic() + timeout
        guarded = (f"(() => {{ try {{ return !!({expression}); }} "
                   "catch (e) { return false; } })()")
        while True:
            if self.evaluate(guarded):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the page never showed {what or expression} in {timeout}s; it "
                            f"shows:\n{self.evaluate('document.body.innerText')}")
            time.sleep(0.05)

    def viewport(self, width: int, height: int) -> None:
        """Makes the page exactly WIDTH×HEIGHT CSS pixels, as a projector of that size shows it."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def press(self, key: str) -> None:
        """One key pressed and released on the page, as a keyboard sends it: ArrowRight, " ",
        "r", "s", ... (Input.dispatchKeyEvent)."""
        named = {"ArrowRight": ("ArrowRight", 39), " ": ("Space", 32)}
        code, number = named[key] if key in named else (f"Key{key.upper()}", ord(key.upper()))
        text = {"text": key} if len(key) == 1 else {}
        self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code,
                  windowsVirtualKeyCode=number, **text)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code,
                  windowsVirtualKeyCode=number)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "socket", None) is not None:
                self.socket.close()
        finally:
            self.proc.kill()
            self.proc.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)
