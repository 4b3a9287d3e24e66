"""The CLI as a new user meets it: a light install, a second plugin, stdin, flags.

Each test runs the real ``seqopt`` process (``python -m seqopt_core.cli``), with
a wide terminal so rich does not fold the lines being checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_library_errors import LIGHT

REPO = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    from seqopt_core import SentenceSplitterSpec, Span, hookimpl

    class Whole:
        def __init__(self, options):
            pass

        def split(self, text):
            return [Span(len(text) - len(text.lstrip()), len(text.rstrip()))]

    @hookimpl
    def seqopt_sentence_splitters():
        return [
            SentenceSplitterSpec(name="regex", factory=Whole, description="a second regex"),
            SentenceSplitterSpec(name="fancy", factory=Whole, requires=("no_such_module_xyz",),
                                 install="pip install 'fancy[extra]'",
                                 description="[bold]bracketed[/bold] text stays as written"),
        ]
''')


@pytest.fixture
def clash_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "seqopt_clash_demo.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "seqopt_clash_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqopt-clash-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqopt]\nclash_demo = seqopt_clash_demo\n")
    return site


def seqopt(*args: str, input: str | None = None, site: Path | None = None, light: bool = False,
           **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("SEQOPT_BLOCK_PLUGINS", "SEQOPT_DISABLE_PLUGIN_AUTOLOAD")}
    environ.update(COLUMNS="400", **env)
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join([str(site), environ.get("PYTHONPATH", "")])
    code = (LIGHT if light else "") + "from seqopt_core.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], input=input, capture_output=True,
                          text=True, env=environ, timeout=180)


# --- defect 1: rich never eats brackets --------------------------------------------


def test_light_install_shows_the_real_install_command():
    listed = seqopt("plugins", light=True)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "sdpa_aligned" in line]
    assert rows and "disabled: missing Python package(s): torch, transformers" in rows[0]
    assert "(pip install 'seqopt[chatterbox]')" in rows[0]
    as_json = json.loads(seqopt("plugins", "--json", light=True).stdout)
    row = next(s for s in as_json["strategies"]["attention"] if s["name"] == "sdpa_aligned")
    assert row["install"] == "pip install 'seqopt[chatterbox]'" and not row["enabled"]


def test_plugin_strings_and_text_are_printed_literally(clash_site):
    listed = seqopt("plugins", site=clash_site)
    assert "[bold]bracketed[/bold] text stays as written" in listed.stdout
    assert "(pip install 'fancy[extra]')" in listed.stdout
    planned = seqopt("plan", "Great! [laughter] [bold]So[/bold] we met.", "--estimator", "ratio",
                     "--splitter", "nltk", site=clash_site)
    assert planned.returncode == 0, planned.stderr
    assert "[laughter] [bold]So[/bold] we met." in planned.stdout
    said = seqopt("sentences", "A [red]tag[/red] here. Next.", "--splitter", "nltk", site=clash_site)
    assert "A [red]tag[/red] here." in said.stdout


# --- defect 4: a clash is shown, and fails only what needs the name ----------------


def test_a_clash_is_listed_and_breaks_only_its_name(clash_site):
    listed = seqopt("plugins", site=clash_site)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if re.search(r"\bregex\b", line)]
    assert len(rows) == 2 and all("clash" in r for r in rows)
    assert any("also provided by clash_demo" in r for r in rows)
    assert any("also provided by regex_splitter" in r for r in rows)
    data = json.loads(seqopt("plugins", "--json", site=clash_site).stdout)
    clashing = [s for s in data["strategies"]["splitter"] if s["name"] == "regex"]
    assert sorted(s["provider"] for s in clashing) == ["clash_demo", "regex_splitter"]
    assert all(s["clash"] and not s["enabled"] for s in clashing)

    other = seqopt("plan", "One. Two.", "--splitter", "nltk", "--estimator", "ratio", site=clash_site)
    assert other.returncode == 0, other.stderr
    default = seqopt("plan", "One. Two.", "--estimator", "ratio", site=clash_site)
    assert default.returncode == 2 and "Traceback" not in default.stderr
    assert "splitter.name: two plugins provide the splitter strategy 'regex'" in default.stderr
    assert "estimator.name" not in default.stderr
    assert "SEQOPT_BLOCK_PLUGINS=clash_demo" in default.stderr
    blocked = seqopt("plan", "One. Two.", "--estimator", "ratio", site=clash_site,
                     SEQOPT_BLOCK_PLUGINS="clash_demo")
    assert blocked.returncode == 0, blocked.stderr


# --- defect 5: the flag is blamed, and the fix is named ----------------------------


def test_max_below_the_profiles_target_names_the_flag_and_the_fix():
    done = seqopt("plan", "Hello there.", "--max", "64")
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]
    assert first.startswith("error: --max 64 (over profile 'rtx4090')")
    assert "target_tokens (96) must not exceed max_tokens (64)" in done.stderr
    assert "--target sets target_tokens" in done.stderr
    assert seqopt("plan", "Hello there.", "--max", "64", "--target", "60").returncode == 0


def test_a_misspelled_splitter_flag_is_blamed_on_the_flag():
    done = seqopt("plan", "Hello there.", "--splitter", "regexp")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --splitter regexp (over profile 'rtx4090'): splitter.name:")


# --- defect 13: a bare - is standard input ------------------------------------------


@pytest.mark.parametrize("command", ["plan", "sentences"])
def test_dash_reads_stdin(command):
    text = "First sentence here. Second one follows."
    from_stdin = seqopt(command, "-", "--json", input=text)
    assert from_stdin.returncode == 0, from_stdin.stderr
    from_arg = seqopt(command, text, "--json")
    assert json.loads(from_stdin.stdout) == json.loads(from_arg.stdout)
    assert '"-"' not in from_stdin.stdout


def test_speak_dash_reads_stdin(tiny_checkpoint, tmp_path):
    wav = tmp_path / "out.wav"
    done = seqopt("speak", "-", "-o", str(wav), "--checkpoint", str(tiny_checkpoint), "--seed", "1",
                  "--metrics", str(tmp_path / "m.json"), input="Hello from standard input.")
    assert done.returncode == 0, done.stderr
    assert wav.stat().st_size > 44
    spoken = sum(s["text_tokens"] for s in json.loads((tmp_path / "m.json").read_text())["segments"])
    planned = json.loads(seqopt("plan", "Hello from standard input.", "--json").stdout)
    assert spoken == planned["total_tokens"] > 5  # the text from stdin, not the one-character "-"


# --- defect 15: counts read as English ----------------------------------------------


def test_one_segment_is_singular():
    done = seqopt("plan", "Hello there.", "--estimator", "ratio")
    assert "1 segment," in done.stdout and "1 segments" not in done.stdout


# --- defect 14: the README says what each extra brings -----------------------------


def test_readme_lists_every_extra_and_planning_without_the_model():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for extra in extras:
        assert f"`{extra}`" in readme, f"README explains the {extra} extra"
    assert "pip install -e '.[nltk,spacy,pysbd,dev]'" in readme  # planning only, no model
