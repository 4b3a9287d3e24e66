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


@pytest.fixture(scope="module")
def estimators(exact_estimator):
    from seqopt_plugins.estimators.ratio import RatioEstimator

    return {"chatterbox": exact_estimator, "ratio": RatioEstimator()}


@pytest.mark.parametrize("estimator_name, target, maximum, examples",
                         [("chatterbox", 24, 40, 100), ("ratio", 20, 30, 60)])
@pytest.mark.parametrize("splitter_name", SPLITTERS)
def test_plan_invariants(splitter_name, estimator_name, target, maximum, examples, host, estimators):
    estimator = estimators[estimator_name]
    planner = SegmentPlanner(host.create("splitter", splitter_name), estimator,
                             PlannerSettings(target_tokens=target, max_tokens=maximum),
                             splitter_name=splitter_name, estimator_name=estimator_name)

    @given(texts())
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(text):
        plan = planner.plan(text)
        assert_plan_invariants(plan, text, estimator)
        # paragraphs are never crossed (a text under the threshold stays whole)
        if len(plan) > 1:
            for seg in plan.segments:
                assert "\n\n" not in seg.text and "\n \n" not in seg.text

    check()
