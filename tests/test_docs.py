"""The documentation matches the code: every strategy and option is documented, and
the plugin guide's example plugin and tests really run."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from seqopt_core import SLOTS
from seqopt_core.testing import make_host

REPO = Path(__file__).resolve().parents[1]


def _strategies():
    host = make_host()
    return [(slot, info) for slot in SLOTS for info in host.strategies(slot)]


@pytest.mark.parametrize("slot, info", _strategies(), ids=lambda v: getattr(v, "name", v))
def test_every_builtin_strategy_and_option_is_in_config_md(slot, info):
    doc = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    section = doc.split(f"### `{slot}`", 1)
    assert len(section) == 2, f"docs/config.md has a section for slot {slot}"
    body = section[1].split("\n### ", 1)[0]
    assert f"`{info.name}`" in body
    for option in info.spec.options.model_fields:
        assert f"`{option}`" in body, f"{slot} {info.name}: option {option} is documented"


def _code_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_plugin_guide_example_runs(tmp_path, monkeypatch):
    blocks = _code_blocks(REPO / "docs" / "plugin-guide.md")
    plugin_src = next(b for b in blocks if b.startswith("# my_splitters.py"))
    test_src = next(b for b in blocks if b.startswith("# test_my_splitters.py"))
    (tmp_path / "my_splitters.py").write_text(plugin_src, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = types.ModuleType("test_my_splitters")
    exec(compile(test_src, "test_my_splitters.py", "exec"), module.__dict__)
    tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test(make_host)  # the make_seqopt_host fixture is this factory


def test_library_examples_use_the_public_api():
    import seqopt_core

    names = set()
    for block in _code_blocks(REPO / "docs" / "library.md"):
        for m in re.finditer(r"from seqopt_core import ([^\n]+)", block):
            names.update(n.strip(" ()") for n in m.group(1).split(","))
    assert names and all(hasattr(seqopt_core, n) for n in names), names
