"""What the browser test of `seqopt serve`'s page needs: a real server process and a real
headless Chromium (Debian's, driven by Playwright), with errors that say how to install what
is missing. Not a test module itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

def chromium_path() -> Path | None:
    """The `chromium` on the PATH (Debian's, `apt-get install -y chromium`, is /usr/bin/chromium),
    or None. Playwright's own browser downloads are not used: they need a host the test
    machines cannot reach."""
    found = shutil.which("chromium")
    return Path(found) if found else None


#: Flags that make Chromium run headless as root on a machine without a display, GPU, sound
#: card or internet, and play audio without a click first. Playwright gives every launch a
#: fresh temporary profile (its own --user-data-dir).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)

INSTALL_HINT = (
    "the README's first set-up command installs both: "
    "`.venv/bin/pip install -e '.[all]'` brings playwright (the `dev` extra) and "
    "`apt-get install -y chromium` brings the browser (never `playwright install`)"
)


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium from Playwright's `playwright` object, or a failure saying how to
    install the browser."""
    chromium = chromium_path()
    if chromium is None:
        pytest.fail("the browser test needs Chromium, and there is no `chromium` on the PATH; "
                    + INSTALL_HINT, pytrace=False)
    return playwright.chromium.launch(executable_path=str(chromium), args=list(CHROMIUM_FLAGS))


def sync_playwright() -> Any:
    """Playwright's synchronous entry point, or a test failure that says how to install it."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError as exc:
        pytest.fail(f"the browser test needs the Python package playwright ({exc}); {INSTALL_HINT}",
                    pytrace=False)
    return start


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_json(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """GET (or POST `body` as JSON to) `url`; returns the status and the decoded JSON reply."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as reply:
        return reply.code, json.loads(reply.read())


class ServeProcess:
    """One `seqopt serve` process on a free loopback port, its output kept in a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")
        command = [sys.executable, "-m", "seqopt_core.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), *args]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_until_healthy(self, timeout_s: float = 300.0) -> None:
        """Until GET /health answers {"status": "ok"}; fails with the server's log if it ends first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"`seqopt serve` ended with status {self.process.returncode} before it was "
                            f"healthy:\n{self.log()}", pytrace=False)
            try:
                status, body = request_json(self.url + "/health")
                if status == 200 and body.get("status") == "ok":
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        pytest.fail(f"`seqopt serve` was not healthy after {timeout_s:.0f} s:\n{self.log()}", pytrace=False)

    def stop(self) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL if it has not ended after a minute."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()
