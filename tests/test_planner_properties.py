"""Planner invariants, property-tested for every built-in splitter and both estimators:
lossless ordered cover, every segment within the maximum (recounted exactly),
paragraphs never crossed, boundaries well-formed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqopt_core import PlannerSettings, SegmentPlanner
from seqopt_core.testing import assert_plan_invariants, make_host

SPLITTERS = ["regex", "nltk", "spacy", "pysbd"]

WORDS = st.sampled_from([
    "the", "a", "Dr.", "Mr.", "e.g.", "U.S.", "3.14", "10:45", "a.m.", "1,000", "$5",
    "https://example.com/x.y?z=1", "mail@example.org", "[laughter]", "[clear_throat]",
    "don't", "\u201cquoted\u201d", "(aside)", "caf\u00e9", "extraordinary", "I", "we",
    "running", "v2.0.1", "\u2014", "-", "...", "\u2026", "42",
])
ENDINGS = st.sampled_from([".", "!", "?", "...", ";", ",", ":", "", ".\u201d", "?)", "!!"])
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\t", " \n \n "])


@st.composite
def texts(draw):
    parts = []
    for _ in range(draw(st.integers(1, 14))):
        words = draw(st.lists(WORDS, min_size=1, max_size=18))
        parts.append(" ".join(words) + draw(ENDINGS))
        parts.append(draw(SEPARATORS))
    text = "".join(parts)
    if not text.strip():
        text = "word"
    return text


@pytest.fixture(scope="module")
def host():
    return make_host()


@pytest.mark.parametrize("splitter_name", SPLITTERS)
def test_plan_invariants_exact(splitter_name, host, exact_estimator):
    splitter = host.create("splitter", splitter_name)
    planner = SegmentPlanner(splitter, exact_estimator, PlannerSettings(target_tokens=24, max_tokens=40),
                             splitter_name=splitter_name, estimator_name="chatterbox")

    @given(texts())
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(text):
        plan = planner.plan(text)
        assert_plan_invariants(plan, text, exact_estimator)
        # paragraphs are never crossed (a text under the threshold stays whole)
        if len(plan) > 1:
            for seg in plan.segments:
                assert "\n\n" not in seg.text and "\n \n" not in seg.text

    check()


@pytest.mark.parametrize("splitter_name", SPLITTERS)
def test_plan_invariants_ratio(splitter_name, host):
    from seqopt_plugins.estimators.ratio import RatioEstimator

    est = RatioEstimator()
    splitter = host.create("splitter", splitter_name)
    planner = SegmentPlanner(splitter, est, PlannerSettings(target_tokens=20, max_tokens=30),
                             splitter_name=splitter_name, estimator_name="ratio")

    @given(texts())
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(text):
        assert_plan_invariants(planner.plan(text), text, est)

    check()
