from __future__ import annotations

import types

import pytest

from seqopt_core import (
    ConfigError,
    DuplicateStrategyError,
    PluginError,
    PluginHost,
    SentenceSplitterSpec,
    Span,
    StrategyUnavailableError,
    TokenEstimatorSpec,
    UnknownStrategyError,
    hookimpl,
)
from seqopt_core.plugins import BLOCK_ENV
from seqopt_core.strategies import SLOTS
from seqopt_core.testing import make_host

BUILTIN_STRATEGIES = {
    "estimator": {"ratio", "chatterbox"},
    "splitter": {"regex", "nltk", "spacy", "pysbd"},
    "chunk_policy": {"fixed", "adaptive"},
    "context_policy": {"fixed", "adaptive"},
    "segment_context": {"voice", "speech_tail"},
    "attention": {"eager", "sdpa", "sdpa_aligned"},
}


class WholeText:
    def __init__(self, options=None):
        pass

    def split(self, text):
        return [Span(0, len(text.rstrip()))] if text.strip() else []


def splitter_plugin(name: str, strategy: str = "whole", **spec_kw) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def seqopt_sentence_splitters():
        return [SentenceSplitterSpec(name=strategy, factory=WholeText, description="test", **spec_kw)]

    module.seqopt_sentence_splitters = seqopt_sentence_splitters
    return module


def test_every_builtin_strategy_is_registered_and_enabled(seqopt_host):
    for slot, names in BUILTIN_STRATEGIES.items():
        infos = {s.name: s for s in seqopt_host.strategies(slot)}
        assert names <= set(infos), slot
        for name in names:
            assert infos[name].enabled, (slot, name, infos[name].availability)
            assert infos[name].provider  # provider plugin name is recorded


def test_builtins_load_through_entry_points(seqopt_host):
    infos = seqopt_host.plugin_infos()
    assert infos and all(i.builtin and i.distribution == "seqopt" for i in infos)
    assert all(i.status == "loaded" for i in infos), [i for i in infos if i.status != "loaded"]


def test_block_env_blocks_a_builtin(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "pysbd_splitter")
    host = PluginHost.discover()
    blocked = [i for i in host.plugin_infos() if i.status == "blocked"]
    assert [i.name for i in blocked] == ["pysbd_splitter"]
    assert "pysbd" not in {s.name for s in host.strategies("splitter")}
    with pytest.raises(UnknownStrategyError, match="Valid choices: nltk, regex, spacy"):
        host.strategy("splitter", "pysbd")


def test_block_argument(monkeypatch):
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    host = PluginHost.discover(block=["nltk_splitter"])
    assert "nltk" not in {s.name for s in host.strategies("splitter")}


def test_duplicate_strategy_names_name_both_providers():
    host = make_host(builtins=False)
    host.register(splitter_plugin("first_plugin", "dup"), name="first_plugin")
    host.register(splitter_plugin("second_plugin", "dup"), name="second_plugin")
    with pytest.raises(DuplicateStrategyError) as err:
        host.strategy("splitter", "dup")
    assert "'first_plugin'" in str(err.value) and "'second_plugin'" in str(err.value)
    assert "'dup'" in str(err.value)
    # listing still works, and shows the clash on both entries
    listed = [(s.provider, s.clash, s.enabled) for s in host.strategies("splitter")]
    assert listed == [("first_plugin", ("second_plugin",), False), ("second_plugin", ("first_plugin",), False)]


def test_duplicate_of_a_builtin_is_rejected():
    host = make_host(splitter_plugin("clash", "regex"))
    with pytest.raises(DuplicateStrategyError, match="regex_splitter.*clash") as err:
        host.strategy("splitter", "regex")
    assert "SEQOPT_BLOCK_PLUGINS=clash" in str(err.value)  # the third-party one is the one to block
    # only the clashing name fails: the other splitters and slots still work
    assert host.create("splitter", "nltk") is not None
    assert host.strategy("estimator", "ratio").enabled


def test_misspelled_hook_is_rejected_with_a_suggestion():
    module = types.ModuleType("typo_plugin")

    @hookimpl
    def seqopt_sentence_spliters():
        return []

    module.seqopt_sentence_spliters = seqopt_sentence_spliters
    host = make_host(builtins=False)
    with pytest.raises(PluginError) as err:
        host.register(module, name="typo_plugin")
    assert "seqopt_sentence_spliters" in str(err.value)
    assert "did you mean 'seqopt_sentence_splitters'" in str(err.value)


def test_wrong_record_type_is_reported():
    module = types.ModuleType("wrong_record")

    @hookimpl
    def seqopt_sentence_splitters():
        return [TokenEstimatorSpec(name="x", factory=object, description="")]

    module.seqopt_sentence_splitters = seqopt_sentence_splitters
    host = make_host(module, splitter_plugin("good", "fine"), builtins=False)
    assert [s.name for s in host.strategies("splitter")] == ["fine"]  # the others still listed
    info = next(i for i in host.plugin_infos() if i.name == "wrong_record")
    assert info.status == "error" and "must return SentenceSplitterSpec records" in info.detail
    with pytest.raises(UnknownStrategyError, match="wrong_record.*must return SentenceSplitterSpec"):
        host.strategy("splitter", "x")


def test_a_raising_registry_hook_marks_only_its_plugin():
    module = types.ModuleType("raising")

    @hookimpl
    def seqopt_sentence_splitters():
        raise RuntimeError("boom")

    module.seqopt_sentence_splitters = seqopt_sentence_splitters
    host = make_host(module)
    assert "regex" in {s.name for s in host.strategies("splitter")}
    info = next(i for i in host.plugin_infos() if i.name == "raising")
    assert info.status == "error" and "RuntimeError: boom" in info.detail


def test_missing_dependency_shows_disabled_with_reason_and_install():
    host = make_host(splitter_plugin("needs_dep", "fancy", requires=("no_such_module_xyz",),
                                     install="pip install fancy-splitter"))
    info = host.strategy("splitter", "fancy")
    assert not info.enabled
    assert "no_such_module_xyz" in info.availability.reason
    assert info.availability.install == "pip install fancy-splitter"
    with pytest.raises(StrategyUnavailableError, match="pip install fancy-splitter"):
        host.create("splitter", "fancy")


def test_check_callable_can_disable_a_strategy():
    host = make_host(splitter_plugin("gpu_only", "gpu", check=lambda: "needs a CUDA device"))
    assert host.strategy("splitter", "gpu").availability.reason == "needs a CUDA device"


def test_unknown_slot():
    with pytest.raises(UnknownStrategyError, match="slots are"):
        make_host().strategies("nope")


def test_create_validates_options(seqopt_host):
    policy = seqopt_host.create("chunk_policy", "fixed", {"chunk_size": 7})
    assert policy.chunk_size(100, 3, 0) == 7
    with pytest.raises(ConfigError, match="chunk_policy.options.chunk_size: Input should be greater"):
        seqopt_host.create("chunk_policy", "fixed", {"chunk_size": -1})


def test_create_gives_a_seqopt_error_naming_strategy_key_and_allowed_keys(seqopt_host):
    from pydantic import ValidationError

    with pytest.raises(ConfigError) as err:
        seqopt_host.create("splitter", "regex", {"split_on_newline": True})
    assert not isinstance(err.value, ValidationError)
    msg = str(err.value)
    assert "splitter 'regex'" in msg and "splitter.options.split_on_newline: unknown key" in msg
    assert "did you mean 'split_on_newlines'" in msg and "accepts: " in msg
    assert "split_on_newlines (default False)" in msg
    with pytest.raises(ConfigError, match="must be a dict"):
        seqopt_host.create("splitter", "regex", ["split_on_newlines"])


def test_lifecycle_hooks_reach_observers(seqopt_host, simple_splitter, exact_estimator):
    from seqopt_core import ChunkEvent, SegmentPlanner

    seen = []
    observer = types.ModuleType("observer")

    @hookimpl
    def seqopt_segment_planned(segment, plan):
        seen.append(("planned", segment.index))

    @hookimpl
    def seqopt_chunk_emitted(event):
        seen.append(("chunk", event.chunk_index))

    observer.seqopt_segment_planned = seqopt_segment_planned
    observer.seqopt_chunk_emitted = seqopt_chunk_emitted
    seqopt_host.register(observer, name="observer")
    planner = SegmentPlanner(simple_splitter, exact_estimator, on_plan=seqopt_host.segment_planned)
    planner.plan("One. Two.")
    seqopt_host.chunk_emitted(ChunkEvent(0, 4, 25, 1.0, 0.5, 0.6))
    assert seen == [("planned", 0), ("chunk", 4)]


def test_every_slot_has_a_registry_hook_and_record():
    from seqopt_core import hookspecs

    for slot in SLOTS.values():
        assert slot.hook in hookspecs.REGISTRY_HOOKS
        assert getattr(hookspecs, slot.hook).__annotations__["return"] == f"list[{slot.record.__name__}]"
