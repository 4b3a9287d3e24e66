"""Test helpers for seqopt and for plugin authors.

Use them from pytest by adding to your ``conftest.py``::

    pytest_plugins = ["seqopt_core.testing"]

Fixtures:

* ``seqopt_host``: a fresh :class:`PluginHost` with the built-in plugins only
  (no third-party autoload), new for every test;
* ``make_seqopt_host``: a factory; ``make_seqopt_host(my_plugin_module)`` gives a
  fresh host with the built-ins plus your plugin, registered as a third-party
  plugin would be.

Checks (plain functions, usable with any test runner):

* :func:`assert_splitter_contract`: a splitter's spans honour the contract;
* :func:`assert_plan_invariants`: a plan is lossless, ordered and within limits.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .plugins import PluginHost
from .strategies import SentenceSplitter, TokenEstimator
from .text import check_sentence_spans
from .types import BOUNDARY_KINDS, SegmentPlan


def make_host(*plugins: object, builtins: bool = True) -> PluginHost:
    """A new plugin host: the built-ins (unless ``builtins=False``) plus ``plugins``.

    Third-party entry points are never loaded, so tests see only what they ask for.
    Each plugin is registered under its module name (or class name).
    """
    host = PluginHost.discover(autoload=False) if builtins else PluginHost()
    for plugin in plugins:
        host.register(plugin)
    return host


@pytest.fixture
def seqopt_host() -> PluginHost:
    """A fresh plugin host with the built-in plugins only."""
    return make_host()


@pytest.fixture
def make_seqopt_host() -> Callable[..., PluginHost]:
    """Factory fixture: ``make_seqopt_host(plugin, ...)`` builds a fresh host."""
    return make_host


def assert_splitter_contract(splitter: SentenceSplitter, text: str, name: str = "splitter") -> None:
    """Fail unless ``splitter.split(text)`` returns ordered, trimmed spans that leave
    only whitespace uncovered."""
    spans = splitter.split(text)
    try:
        check_sentence_spans(text, spans, name)
    except ValueError as exc:
        raise AssertionError(str(exc)) from None


def assert_plan_invariants(plan: SegmentPlan, source: str, estimator: TokenEstimator | None = None) -> None:
    """Fail unless ``plan`` is a lossless, ordered cover of ``source`` within its limits.

    With ``estimator``, every segment's token count is recounted and compared.
    """
    pos = 0
    assert plan.segments, "a plan of a non-blank text has at least one segment"
    for i, seg in enumerate(plan.segments):
        assert seg.index == i, f"segment {i} has index {seg.index}"
        assert seg.start >= pos, f"segment {i} overlaps the previous one"
        gap = source[pos:seg.start]
        assert not gap.strip(), f"text lost before segment {i}: {gap!r}"
        assert source[seg.start:seg.end] == seg.text, f"segment {i} text is not source[start:end]"
        assert seg.text == seg.text.strip() and seg.text, f"segment {i} is empty or untrimmed"
        assert seg.tokens <= plan.max_tokens, f"segment {i} has {seg.tokens} > {plan.max_tokens} tokens"
        assert seg.boundary in BOUNDARY_KINDS, f"segment {i} has boundary {seg.boundary!r}"
        if estimator is not None:
            assert estimator.count(seg.text) == seg.tokens, f"segment {i} token count is stale"
        pos = seg.end
    assert not source[pos:].strip(), f"text lost after the last segment: {source[pos:]!r}"
    assert plan.segments[-1].boundary == "end", "the last segment's boundary is 'end'"
