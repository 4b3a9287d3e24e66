"""The repository keeps its promises to a new user: CI runs the README's commands."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]


def test_ci_runs_exactly_the_readme_setup_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set up and test.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README has a 'Set up and test' section with a bash block"
    readme_cmds = [c for c in block.group(1).splitlines() if c.strip()]
    ci_cmds = [c for c in _commands(REPO / ".ci" / "run") if not c.startswith("#!")]
    assert readme_cmds == ci_cmds
    assert len(readme_cmds) == 2


def test_the_install_command_brings_the_browser_the_page_test_drives():
    """The first set-up command installs Debian's Chromium, only when no `chromium` is on the
    PATH (the one tests/serve_browser_support.py launches), and never Playwright's download."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    install = re.search(r"## Set up and test.*?```bash\n(.*?)\n", readme, re.S).group(1)
    assert install.endswith(
        "&& { command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }; }")
    assert "playwright install" not in install


def test_every_entry_point_module_exists():
    import importlib
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for name, target in project["project"]["entry-points"]["seqopt"].items():
        module = importlib.import_module(target)
        assert any(a.startswith("seqopt_") for a in dir(module)), name
