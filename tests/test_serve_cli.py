"""The real `seqopt serve` process: it refuses to listen beyond loopback without a key,
reports bad options and a bad checkpoint clearly (no traceback), starts and answers
/health, and on SIGTERM lets the stream that runs finish, then exits with status 0.

The started servers run the test suite's sine engine, registered in the subprocess as
an installed plugin is (a ``*.dist-info`` with an entry point on its ``sys.path``), so
that no model loads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from seqopt_core import Pipeline
from serve_browser_support import ServeProcess
from serve_support import LONG_TEXT, sine_host

TESTS = Path(__file__).resolve().parent
SINE_CONFIG = """\
extends = "rtx4090"

[engine]
name = "sine"
options = { step_sleep_seconds = 0.01 }

[estimator]
name = "ratio"

[chunk_policy]
name = "fixed"
options = { chunk_size = 4 }

[planner]
target_tokens = 12
max_tokens = 40

[synthesis]
seed = 7
"""


@pytest.fixture(scope="module")
def sine_site(tmp_path_factory) -> Path:
    """A folder that makes tests/sine_engine.py an installed plugin when on PYTHONPATH."""
    site = tmp_path_factory.mktemp("sine_site")
    info = site / "seqopt_test_sine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqopt-test-sine\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[seqopt]\nsine_engine = sine_engine\n", encoding="utf-8")
    return site


@pytest.fixture(scope="module")
def sine_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sine_config") / "sine.toml"
    path.write_text(SINE_CONFIG, encoding="utf-8")
    return path


def sine_env(site: Path) -> dict[str, str]:
    paths = [str(site), str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "SEQOPT_DISABLE_PLUGIN_AUTOLOAD": "",
            "SEQOPT_BLOCK_PLUGINS": ""}


def seqopt(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqopt_core.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def assert_clean_error(done: subprocess.CompletedProcess, *fragments: str, status: int = 2) -> None:
    assert done.returncode == status, (done.returncode, done.stderr)
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_it_refuses_to_listen_beyond_loopback_without_a_key(host):
    done = seqopt("serve", "--host", host)
    assert_clean_error(done, f"host {host!r}", "--api-key-env", "127.0.0.1")


def test_an_api_key_variable_that_is_unset_or_empty_is_an_error():
    done = seqopt("serve", "--api-key-env", "SEQOPT_TEST_NO_SUCH_KEY", env={"SEQOPT_TEST_NO_SUCH_KEY": ""})
    assert_clean_error(done, "SEQOPT_TEST_NO_SUCH_KEY", "empty or not set")


def test_a_missing_voices_folder_is_an_error():
    done = seqopt("serve", "--voices", "/nonexistent/voices")
    assert_clean_error(done, "/nonexistent/voices", "does not exist")


def test_a_bad_checkpoint_is_a_clear_error_without_a_traceback(tmp_path):
    done = seqopt("serve", "--checkpoint", str(tmp_path / "missing"), "--device", "cpu", timeout=300)
    assert done.returncode != 0
    assert "missing" in done.stderr and "does not exist" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_importing_the_cli_and_the_server_package_needs_no_web_framework():
    code = ("import json, sys\nimport seqopt_core.cli, seqopt_core.server, seqopt_core.server.service, "
            "seqopt_core.server.protocol, seqopt_core.server.voices, seqopt_core.server.settings\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'uvicorn', 'starlette', 'torch'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_it_starts_answers_and_on_sigterm_finishes_the_stream_then_exits_0(tmp_path, sine_site, sine_config):
    server = ServeProcess(["--config", str(sine_config), "--shutdown-grace", "120"], tmp_path / "serve.log",
                          env=sine_env(sine_site))
    try:
        server.wait_until_healthy(timeout_s=120)
        health = httpx.get(server.url + "/health").json()
        assert (health["engine"], health["profiles"][0]) == ("sine", "rtx4090")
        models = httpx.get(server.url + "/v1/models").json()["data"]
        assert [m["id"] for m in models if m["id"] == m["profile"]] == ["rtx4090", "baseline"]

        received: list[bytes] = []
        first = threading.Event()
        outcome: dict[str, object] = {}

        def listen() -> None:
            try:
                with httpx.stream("POST", server.url + "/v1/audio/speech", timeout=300,
                                  json={"input": LONG_TEXT, "response_format": "pcm", "seed": 1}) as response:
                    outcome["status"] = response.status_code
                    for piece in response.iter_raw():
                        received.append(piece)
                        first.set()
            except httpx.HTTPError as exc:
                outcome["error"] = exc
            first.set()

        listener = threading.Thread(target=listen)
        listener.start()
        assert first.wait(120) and outcome.get("status") == 200, outcome
        server.process.send_signal(signal.SIGTERM)
        listener.join(300)
        assert server.process.wait(timeout=300) == 0, server.log()
        assert "error" not in outcome, outcome
    finally:
        server.stop()
    log = server.log()
    assert "listening on http://127.0.0.1:" in log and "Traceback" not in log
    assert "shutting down: 1 active streams may finish" in log  # the signal came mid-stream
    # The stream ran to its end: all of its audio, as the pipeline makes it alone.
    pipeline = Pipeline.from_config(sine_config, host=sine_host())
    with pipeline.stream(LONG_TEXT, seed=1) as stream:
        samples = sum(len(chunk.audio) for chunk in stream)
    assert sum(len(piece) for piece in received) == 2 * samples
    assert np.frombuffer(b"".join(received), "<i2").size == samples
