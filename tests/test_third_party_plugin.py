"""A throwaway third-party distribution with an entry point in the ``seqopt`` group
is discovered, listed, selectable by config, and blocked by the block settings.

The distribution is real as far as importlib.metadata is concerned: a module plus
a ``*.dist-info`` folder (METADATA, entry_points.txt) on ``sys.path``, which is
what ``pip install`` leaves in site-packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from seqopt_core import PluginHost, UnknownStrategyError, build_planner

PLUGIN_SOURCE = textwrap.dedent('''
    import re
    from pydantic import BaseModel
    from seqopt_core import SentenceSplitterSpec, Span, hookimpl

    class LinesOptions(BaseModel):
        keep_empty: bool = False

    class LineSplitter:
        def __init__(self, options):
            self.options = options

        def split(self, text):
            out = []
            for m in re.finditer(r"[^\\n]+", text):
                piece = m.group()
                if piece.strip():
                    start = m.start() + len(piece) - len(piece.lstrip())
                    out.append(Span(start, m.start() + len(piece.rstrip())))
            return out

    @hookimpl
    def seqopt_sentence_splitters():
        return [SentenceSplitterSpec(name="lines", factory=LineSplitter, options=LinesOptions,
                                     description="one sentence per line (demo plugin)")]
''')


@pytest.fixture
def demo_dist(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    (root / "seqopt_demo_lines.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    info = root / "seqopt_demo_lines-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: seqopt-demo-lines\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[seqopt]\ndemo_lines = seqopt_demo_lines\n",
                                           encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("SEQOPT_BLOCK_PLUGINS", raising=False)
    monkeypatch.delenv("SEQOPT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    yield root
    sys.modules.pop("seqopt_demo_lines", None)


def _env(root, **extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    env.pop("SEQOPT_BLOCK_PLUGINS", None)
    env.pop("SEQOPT_DISABLE_PLUGIN_AUTOLOAD", None)
    env.update(extra)
    return env


def _seqopt(root, *args, **env):
    return subprocess.run([sys.executable, "-m", "seqopt_core.cli", *args], capture_output=True,
                          text=True, env=_env(root, **env), timeout=120)


def test_discovered_and_listed(demo_dist):
    host = PluginHost.discover()
    info = next(i for i in host.plugin_infos() if i.name == "demo_lines")
    assert (info.status, info.distribution, info.builtin) == ("loaded", "seqopt-demo-lines", False)
    lines = host.strategy("splitter", "lines")
    assert lines.provider == "demo_lines" and lines.enabled


def test_selectable_by_config(demo_dist, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('extends = "rtx4090"\n[splitter]\nname = "lines"\n'
                   '[estimator]\nname = "ratio"\n[planner]\ntarget_tokens = 5\nmax_tokens = 40\n')
    plan = build_planner(cfg).plan("first line here\nsecond line here\nthird")
    assert plan.splitter == "lines"
    assert [s.text for s in plan.segments] == ["first line here", "second line here", "third"]


def test_blocked_by_config_and_env(demo_dist, tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('extends = "rtx4090"\n[splitter]\nname = "lines"\n[plugins]\nblock = ["demo_lines"]\n')
    with pytest.raises(UnknownStrategyError, match="unknown splitter 'lines'"):
        build_planner(cfg)
    monkeypatch.setenv("SEQOPT_BLOCK_PLUGINS", "demo_lines")
    host = PluginHost.discover()
    assert next(i for i in host.plugin_infos() if i.name == "demo_lines").status == "blocked"


def test_autoload_off_keeps_builtins(demo_dist, monkeypatch):
    monkeypatch.setenv("SEQOPT_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = PluginHost.discover()
    assert next(i for i in host.plugin_infos() if i.name == "demo_lines").status == "not loaded"
    assert "regex" in {s.name for s in host.strategies("splitter")}
    assert "lines" not in {s.name for s in host.strategies("splitter")}


def test_cli_lists_selects_and_blocks(demo_dist):
    listed = _seqopt(demo_dist, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    lines = [s for s in data["strategies"]["splitter"] if s["name"] == "lines"]
    assert lines and lines[0]["provider"] == "demo_lines" and lines[0]["enabled"]

    planned = _seqopt(demo_dist, "plan", "a b c\nd e f", "--splitter", "lines", "--estimator", "ratio",
                      "--target", "3", "--max", "20", "--json")
    assert planned.returncode == 0, planned.stderr
    assert [s["text"] for s in json.loads(planned.stdout)["segments"]] == ["a b c", "d e f"]

    blocked = _seqopt(demo_dist, "plan", "a b c", "--splitter", "lines",
                      SEQOPT_BLOCK_PLUGINS="demo_lines")
    assert blocked.returncode == 2
    assert "unknown splitter 'lines'" in blocked.stderr and "Traceback" not in blocked.stderr


def test_broken_third_party_plugin_does_not_break_discovery(demo_dist):
    (demo_dist / "seqopt_demo_lines.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    host = PluginHost.discover()
    info = next(i for i in host.plugin_infos() if i.name == "demo_lines")
    assert info.status == "error" and "boom" in info.detail
    assert "regex" in {s.name for s in host.strategies("splitter")}
