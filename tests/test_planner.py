from __future__ import annotations

import pytest

from seqopt_core import (
    InvalidTextError,
    PlannerSettings,
    PlanningError,
    PluginError,
    SegmentPlanner,
    Span,
)
from seqopt_core.testing import assert_plan_invariants
from seqopt_plugins.estimators.ratio import RatioEstimator

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def planner(splitter, estimator, **settings):
    return SegmentPlanner(splitter, estimator, PlannerSettings(**settings),
                          splitter_name="test", estimator_name="test")


def test_short_text_stays_one_segment(simple_splitter, exact_estimator):
    text = "Hello there. How are you today?"
    plan = planner(simple_splitter, exact_estimator).plan(text)
    assert [s.text for s in plan.segments] == [text]
    assert plan.segments[0].boundary == "end"
    assert plan.segments[0].tokens == exact_estimator.count(text)


def test_long_text_is_packed_near_target_and_within_max(simple_splitter, exact_estimator):
    text = " ".join([SENTENCE] * 40)
    plan = planner(simple_splitter, exact_estimator, target_tokens=96, max_tokens=128).plan(text)
    assert len(plan) > 5
    assert_plan_invariants(plan, text, exact_estimator)
    # all but the last are filled to at least min_fill of the target
    for seg in plan.segments[:-1]:
        assert seg.tokens >= 0.7 * 96
        assert seg.boundary == "sentence"


def test_paragraph_breaks_are_hard_boundaries(simple_splitter, exact_estimator):
    para = " ".join([SENTENCE] * 3)
    text = f"{para}\n\n{para}\n \n\t\n{para}"
    plan = planner(simple_splitter, exact_estimator, target_tokens=200, max_tokens=300).plan(text)
    assert_plan_invariants(plan, text, exact_estimator)
    assert [s.boundary for s in plan.segments] == ["paragraph", "paragraph", "end"]
    assert all("\n" not in s.text for s in plan.segments)


def test_threshold_keeps_text_whole_even_across_paragraphs(simple_splitter, exact_estimator):
    text = "One.\n\nTwo."
    plan = planner(simple_splitter, exact_estimator).plan(text)
    assert [s.text for s in plan.segments] == [text]


def test_overlong_sentence_is_cut_at_clauses_first(simple_splitter, exact_estimator):
    clause = "the cat sat on the mat and looked at the birds"
    text = ", ".join([clause] * 12) + "."
    plan = planner(simple_splitter, exact_estimator, target_tokens=60, max_tokens=80).plan(text)
    assert_plan_invariants(plan, text, exact_estimator)
    assert len(plan) > 1
    assert {s.boundary for s in plan.segments[:-1]} == {"clause"}
    assert all(s.text.endswith(",") for s in plan.segments[:-1])


def test_text_without_punctuation_is_cut_at_words(simple_splitter, exact_estimator):
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 60).strip()
    plan = planner(simple_splitter, exact_estimator, target_tokens=50, max_tokens=64).plan(words)
    assert_plan_invariants(plan, words, exact_estimator)
    assert {s.boundary for s in plan.segments[:-1]} == {"word"}
    rejoined = " ".join(s.text for s in plan.segments)
    assert rejoined == words


def test_words_urls_numbers_and_tags_are_never_cut(simple_splitter, exact_estimator):
    pieces = ["https://example.com/a/very/long/path/index.html?query=1,2,3",
              "1,234,567.89", "[laughter]", "[clear throat]", "supercalifragilistic"]
    text = " ".join(pieces * 20)
    plan = planner(simple_splitter, exact_estimator, target_tokens=60, max_tokens=80).plan(text)
    assert_plan_invariants(plan, text, exact_estimator)
    for seg in plan.segments:
        for piece in ("[clear", "throat]"):
            # the two halves of a spaced tag always stay together
            assert seg.text.count("[clear") == seg.text.count("throat]")
        first, last = seg.text.split()[0], seg.text.split()[-1]
        assert any(first.startswith(p.split()[0]) for p in pieces) or first == "throat]"
        assert any(last.endswith(p.split()[-1]) for p in pieces)


def test_single_giant_word_is_a_clear_error(simple_splitter, exact_estimator):
    text = "Intro sentence here. " + "x" * 3000 + " and more words."
    with pytest.raises(PlanningError) as err:
        planner(simple_splitter, exact_estimator).plan(text)
    message = str(err.value)
    assert "3000 characters" in message and "offset 21" in message and "max_tokens" in message


class CharEstimator:
    """One token per character: word sizes in tokens are exactly their lengths."""

    def count(self, text: str) -> int:
        return len(text)


@pytest.mark.parametrize("word, max_tokens, raise_to", [
    (300, 128, 300),     # raising max_tokens helps: say to what
    (2500, 2048, None),  # max is already the model's limit
    (3000, 128, None),   # no limit the model takes would let it through
])
def test_giant_word_advice_can_be_followed(simple_splitter, word, max_tokens, raise_to):
    text = "Intro here. " + "x" * word + " more."
    with pytest.raises(PlanningError) as err:
        planner(simple_splitter, CharEstimator(), target_tokens=min(96, max_tokens),
                max_tokens=max_tokens).plan(text)
    message = str(err.value)
    if raise_to is None:
        assert "raise planner.max_tokens" not in message
        assert "cannot be spoken as one segment (the model takes at most 2048 tokens)" in message
        assert "break it up" in message
    else:
        assert f"raise planner.max_tokens to {raise_to} or more (at most 2048" in message


def test_giant_word_fits_when_the_limit_allows(simple_splitter):
    text = "x" * 3000
    est = RatioEstimator()
    plan = planner(simple_splitter, est, target_tokens=2000, max_tokens=2048).plan(text)
    assert [s.text for s in plan.segments] == [text]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t  \n"])
def test_empty_text_is_refused(simple_splitter, exact_estimator, text):
    with pytest.raises(InvalidTextError, match="empty"):
        planner(simple_splitter, exact_estimator).plan(text)


def test_control_characters_are_refused_with_their_position(simple_splitter, exact_estimator):
    with pytest.raises(InvalidTextError) as err:
        planner(simple_splitter, exact_estimator).plan("Hello.\nWor\x07ld.")
    assert "U+0007" in str(err.value) and "offset 10" in str(err.value) and "line 2" in str(err.value)


def test_form_feeds_and_tabs_are_whitespace(simple_splitter, exact_estimator):
    text = "Page one ends here.\x0cPage two\tstarts here."
    plan = planner(simple_splitter, exact_estimator, target_tokens=8, max_tokens=30).plan(text)
    assert_plan_invariants(plan, text, exact_estimator)


def test_a_splitter_that_loses_text_is_reported(exact_estimator):
    class Lossy:
        def split(self, text):
            return [Span(0, 3)]

    with pytest.raises(PluginError, match="skipped text"):
        SegmentPlanner(Lossy(), exact_estimator, splitter_name="lossy").plan(
            " ".join([SENTENCE] * 10))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="target_tokens"):
        PlannerSettings(target_tokens=200, max_tokens=100)


def test_observer_sees_every_plan(simple_splitter, exact_estimator):
    seen = []
    p = SegmentPlanner(simple_splitter, exact_estimator, on_plan=seen.append)
    plan = p.plan("Hello.")
    assert seen == [plan]


def test_progress_is_reported_per_paragraph(simple_splitter, exact_estimator):
    para = " ".join([SENTENCE] * 3)
    text = "\n\n".join([para] * 4)
    calls = []
    planner(simple_splitter, exact_estimator).plan(text, progress=lambda d, t: calls.append((d, t)))
    assert len(calls) == 4 and calls[-1][0] == len(text) and all(t == len(text) for _, t in calls)


def test_large_text_without_punctuation_plans(simple_splitter, exact_estimator):
    text = ("word " * 200_000).strip()  # 1 MB, one paragraph, no sentence end
    plan = planner(simple_splitter, exact_estimator).plan(text)
    assert_plan_invariants(plan, text)
    assert sum(len(s.text.split()) for s in plan.segments) == 200_000
