"""The core never depends on the built-in plugins, and never imports torch.

``seqopt_core`` talks to every strategy, the engine included, through the plugin
host; the built-ins (``seqopt_plugins``) are plugins like any other. So no module
under ``seqopt_core/`` may import ``seqopt_plugins``, not even inside a
function, and importing the core (its pipeline, scheduler and CLI too) must not
import torch.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "seqopt_core"
FORBIDDEN = "seqopt_plugins"


def _plugin_imports(path: Path, root: Path = CORE.parent) -> list[str]:
    """``file:line: statement`` for every import of ``seqopt_plugins`` anywhere in ``path``
    (module level, functions, ``importlib.import_module("seqopt_plugins...")``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            names = [node.args[0].value]
        for name in names:
            if name == FORBIDDEN or name.startswith(FORBIDDEN + "."):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_every_kind_of_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n"
                      "def f():\n    from seqopt_plugins.chatterbox import engine\n"
                      "    import json, seqopt_plugins\n"
                      "    import importlib; importlib.import_module('seqopt_plugins.attention')\n"
                      "from seqopt_pluginsx import y\n"
                      "from . import seqopt_plugins\n", encoding="utf-8")
    hits = _plugin_imports(sample, tmp_path)
    assert [h.split(":")[1] for h in hits] == ["3", "4", "5"], hits


def test_seqopt_core_never_imports_the_builtin_plugins():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10 and CORE / "pipeline.py" in files and CORE / "scheduler.py" in files
    offending = [hit for path in files for hit in _plugin_imports(path)]
    assert not offending, "seqopt_core must not import seqopt_plugins:\n" + "\n".join(offending)


@pytest.mark.parametrize("module", ["seqopt_core", "seqopt_core.pipeline", "seqopt_core.scheduler",
                                    "seqopt_core.engine", "seqopt_core.cli"])
def test_importing_the_core_does_not_import_torch(module):
    code = (f"import json, sys\nimport {module}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'transformers', 'chatterbox', 'seqopt_plugins'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded if m.split(".")[0] in ("torch", "transformers", "chatterbox")]
    assert not heavy, f"importing {module} imported {heavy}"
    if module != "seqopt_core.cli":  # the CLI may load plugins through their entry points
        assert not loaded, f"importing {module} imported the built-in plugins: {loaded}"
