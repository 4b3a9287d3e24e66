from __future__ import annotations

import types

import pytest

from seqopt_core import (
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
        host.strategies("splitter")
    assert "'first_plugin'" in str(err.value) and "'second_plugin'" in str(err.value)
    assert "'dup'" in str(err.value)


def test_duplicate_of_a_builtin_is_rejected():
    host = make_host(splitter_plugin("clash", "regex"))
    with pytest.raises(DuplicateStrategyError, match="regex_splitter.*clash"):
        host.strategies("splitter")


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
    host = make_host(module, builtins=False)
    with pytest.raises(PluginError, match="must return SentenceSplitterSpec records"):
        host.strategies("splitter")


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
    from pydantic import ValidationError

    policy = seqopt_host.create("chunk_policy", "fixed", {"chunk_size": 7})
    assert policy.chunk_size(100, 3, 0) == 7
    with pytest.raises(ValidationError):
        seqopt_host.create("chunk_policy", "fixed", {"chunk_size": -1})


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
