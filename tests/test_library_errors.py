"""What an app written from docs/library.md meets when something is wrong: every error a
caller can cause is a SeqoptError that names where the bad value came from and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import seqopt_core
from seqopt_core import (
    ConfigError,
    DuplicateStrategyError,
    InputFileError,
    PlannerSettings,
    SegmentPlanner,
    SentenceSplitterSpec,
    SeqoptError,
    Span,
    TextDecodeError,
    build_planner,
    hookimpl,
    load_config,
    plan_text,
    read_text,
)
from seqopt_core.testing import make_host
from seqopt_plugins.estimators.ratio import RatioEstimator

#: Run Python as on a light install (no torch, transformers or chatterbox): the
#: modules are marked missing before anything imports them.
LIGHT = ("import sys; sys.modules.update(dict.fromkeys(['torch', 'torchaudio', 'transformers', "
         "'chatterbox', 'flash_attn'], None)); ")


def light_python(code: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIGHT + code, *args], capture_output=True, text=True,
                          timeout=120, **kw)


def _write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- slots planning does not use are validated on load (defect 3) ------------------


@pytest.mark.parametrize("body, message", [
    ('[context_policy]\nname = "fixedd"\n', "context_policy.name: unknown context_policy 'fixedd'"),
    ('[chunk_policy]\nname = "fixed"\noptions = { chunk_size = "big" }\n',
     "chunk_policy.options.chunk_size: Input should be a valid integer"),
    ('[attention]\nname = "sdpa_alignd"\n', "Did you mean 'sdpa_aligned'"),
])
def test_every_slot_is_checked_when_a_config_is_loaded(tmp_path, body, message):
    path = _write(tmp_path, 'extends = "rtx4090"\n' + body)
    for load in (lambda: load_config(path), lambda: build_planner(path),
                 lambda: plan_text("Hello there.", path)):
        with pytest.raises(ConfigError) as err:
            load()
        assert message in str(err.value) and str(path) in str(err.value)


def test_load_errors_match_config_validate(tmp_path):
    from click.testing import CliRunner

    from seqopt_core.cli import main

    path = _write(tmp_path, 'extends = "rtx4090"\n[context_policy]\nname = "fixedd"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    validate = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert validate.exit_code == 2
    assert validate.output.strip() == f"error: {err.value}"


# --- errors name the override, not the profile (defect 5) --------------------------


def test_a_bad_override_is_blamed_on_the_override():
    with pytest.raises(ConfigError) as err:
        build_planner(overrides={"splitter": {"name": "regexp"}})
    msg = str(err.value)
    assert msg.startswith("overrides splitter.name = 'regexp' (over profile 'rtx4090'): splitter.name:")
    assert "Did you mean 'regex'" in msg


def test_target_above_an_overridden_max_names_the_override_and_the_fix():
    with pytest.raises(ConfigError) as err:
        build_planner(overrides={"planner": {"max_tokens": 64}})
    msg = str(err.value)
    assert msg.startswith("overrides planner.max_tokens = 64 (over profile 'rtx4090')")
    assert "lower target_tokens to 64 or less" in msg


def test_a_bad_value_in_the_file_is_still_blamed_on_the_file(tmp_path):
    path = _write(tmp_path, 'extends = "rtx4090"\n[splitter]\nname = "regexp"\n')
    with pytest.raises(ConfigError) as err:
        build_planner(path, overrides={"planner": {"target_tokens": 50}})
    assert str(err.value).startswith(f"{path}: splitter.name:")


# --- one name clash breaks only that name (defect 4) -------------------------------


def _splitter_plugin(name: str, strategy: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def seqopt_sentence_splitters():
        return [SentenceSplitterSpec(name=strategy, factory=lambda o: None, description="clash")]

    module.seqopt_sentence_splitters = seqopt_sentence_splitters
    return module


def test_a_clash_fails_only_what_needs_the_name_and_the_prefix_names_the_slot():
    host = make_host(_splitter_plugin("other_regex", "regex"))
    assert build_planner(overrides={"splitter": {"name": "nltk"}}, host=host).plan("Hi. Yes.")
    with pytest.raises(DuplicateStrategyError) as err:
        build_planner(host=host)
    msg = str(err.value)
    assert "splitter.name: two plugins provide the splitter strategy 'regex'" in msg
    assert "estimator.name" not in msg and "other_regex" in msg and "regex_splitter" in msg


# --- skipped plugins are named when a name is unknown (defect 6) -------------------


def test_unknown_name_mentions_installed_plugins_that_were_not_loaded(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "seqopt_skipped_demo.py").write_text(
        "from seqopt_core import SentenceSplitterSpec, hookimpl\n"
        "@hookimpl\ndef seqopt_sentence_splitters():\n"
        "    return [SentenceSplitterSpec(name='lines', factory=lambda o: None, description='d')]\n")
    info = site / "seqopt_skipped_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqopt-skipped-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqopt]\nskipped_demo = seqopt_skipped_demo\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SEQOPT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with pytest.raises(ConfigError) as err:
        build_planner(overrides={"splitter": {"name": "lines"}})
    msg = str(err.value)
    assert "skipped_demo (seqopt-skipped-demo)" in msg and "third-party autoload is off" in msg
    assert "unset SEQOPT_DISABLE_PLUGIN_AUTOLOAD" in msg
    monkeypatch.delenv("SEQOPT_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("SEQOPT_BLOCK_PLUGINS", "skipped_demo")
    with pytest.raises(ConfigError, match="remove it from SEQOPT_BLOCK_PLUGINS"):
        build_planner(overrides={"splitter": {"name": "lines"}})


# --- the planner names what it was given (defects 7, 8) ----------------------------


class SkippingSplitter:
    """Breaks the contract: drops the last word."""

    def split(self, text: str) -> list[Span]:
        return [Span(0, max(1, text.rfind(" ")))]


def test_a_broken_splitter_is_named_by_its_class():
    planner = SegmentPlanner(SkippingSplitter(), RatioEstimator(), PlannerSettings(target_tokens=3, max_tokens=40))
    with pytest.raises(SeqoptError) as err:
        planner.plan("one two three four five six seven eight nine ten")
    assert "'SkippingSplitter'" in str(err.value) and "'custom'" not in str(err.value)
    assert planner.estimator_name == "RatioEstimator"


@pytest.mark.parametrize("text", [
    "Para one is here. It goes on.\n\nPara two is here. It goes on too.\n",
    "Para one.\n\nPara two.\n\n\n  \n",
    "Short.\n",
])
def test_progress_ends_at_total(text):
    calls: list[tuple[int, int]] = []
    planner = SegmentPlanner(make_host().create("splitter", "regex"), RatioEstimator(),
                             PlannerSettings(target_tokens=4, max_tokens=60))
    planner.plan(text, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (len(text), len(text))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# --- reading files and detecting the engine (defects 11, 12) -----------------------


def test_read_text_is_the_clis_reader(tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes("\ufeffCaf\u00e9 au lait.\n".encode())
    assert read_text(good) == "Caf\u00e9 au lait.\n"
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\u00e9 au lait.".encode("latin-1"))
    with pytest.raises(TextDecodeError, match=r"not valid UTF-8: byte 0xe9 at offset 3 \(line 1\)"):
        read_text(bad)
    with pytest.raises(InputFileError, match="does not exist") as err:
        read_text(tmp_path / "missing.txt")
    assert isinstance(err.value, OSError) and isinstance(err.value, SeqoptError)
    with pytest.raises(InputFileError, match="is a directory"):
        read_text(tmp_path)


def test_engine_names_import_on_a_light_install_and_fail_clearly_when_used():
    # Pipeline is engine-agnostic core code now: the real class imports on any install
    # (so ``if seqopt_core.Pipeline:`` no longer detects the engine; docs/library.md says
    # to ask engine_available()), and using it without the engine's packages fails clearly.
    code = ("import seqopt_core, json\n"
            "out = {'hasattr': hasattr(seqopt_core, 'Pipeline'), 'is_class': isinstance(seqopt_core.Pipeline, type),\n"
            "       'available': seqopt_core.engine_available(),\n"
            "       'named': seqopt_core.engine_available('chatterbox')}\n"
            "from seqopt_core import Pipeline\n"
            "try:\n    Pipeline.from_config()\n"
            "except Exception as exc:\n"
            "    out.update(seqopt=isinstance(exc, seqopt_core.SeqoptError), importerror=isinstance(exc, ImportError),\n"
            "               unavailable=isinstance(exc, seqopt_core.EngineUnavailableError), message=str(exc))\n"
            "print(json.dumps(out))\n")
    done = light_python(code)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["hasattr"] is True and out["is_class"] is True
    assert out["available"] is False and out["named"] is False
    assert out["seqopt"] and out["importerror"] and out["unavailable"]
    assert "pip install 'seqopt[chatterbox]'" in out["message"] and "chatterbox" in out["message"]


def test_engine_is_available_on_a_full_install():
    assert seqopt_core.engine_available() and seqopt_core.Pipeline.__name__ == "Pipeline"
