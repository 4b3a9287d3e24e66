"""Tests of the built-in ``regex`` sentence splitter (seqopt_plugins.splitters.regex)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from splitter_cases import HARD_CASES, SplitterCase, gold_spans

from seqopt_core import PluginHost, SentenceSplitter, Span
from seqopt_core.errors import ConfigError
from seqopt_core.text import TAG_RE, check_sentence_spans
from seqopt_plugins.splitters.regex import (
    RegexSentenceSplitter,
    RegexSplitterOptions,
    seqopt_sentence_splitters,
)

SPLITTER = RegexSentenceSplitter()


def sentences(text: str, splitter: RegexSentenceSplitter = SPLITTER) -> list[str]:
    spans = splitter.split(text)
    check_sentence_spans(text, spans, "regex")
    return [s.text(text) for s in spans]


# --- the shared hard cases -------------------------------------------------------------


def test_fixture_is_well_formed() -> None:
    assert len(HARD_CASES) >= 40
    ids = [c.id for c in HARD_CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in HARD_CASES:
        assert isinstance(case, SplitterCase)
        assert case.sentences and case.note
        for s in case.sentences:
            assert s == s.strip() and s, f"{case.id}: gold sentence {s!r} is not trimmed"
        spans = gold_spans(case)
        # gold sentences cover the text with only whitespace between them
        check_sentence_spans(case.text, spans, f"gold:{case.id}")
        assert [s.text(case.text) for s in spans] == list(case.sentences)


@pytest.mark.parametrize("case", HARD_CASES, ids=[c.id for c in HARD_CASES])
def test_hard_case(case: SplitterCase) -> None:
    got = SPLITTER.split(case.text)
    check_sentence_spans(case.text, got, "regex")
    assert [s.text(case.text) for s in got] == list(case.sentences), case.note
    assert got == gold_spans(case)


def test_gold_spans_rejects_a_missing_sentence() -> None:
    case = SplitterCase("x", "One. Two.", ("Two.", "One."), "out of order")
    with pytest.raises(ValueError):
        gold_spans(case)


# --- specific behaviour -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world.", ["Hello world."]),
        ("One. Two. Three.", ["One.", "Two.", "Three."]),
        ("Wait... what?", ["Wait... what?"]),
        ("He paused... Then he left.", ["He paused...", "Then he left."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("(He left.) [Then he sat.] Done.", ["(He left.)", "[Then he sat.]", "Done."]),
        ("He won\u2019t. \u201cNo.\u201d She left \u00bbnow.\u00bb Bye.",
         ["He won\u2019t.", "\u201cNo.\u201d", "She left \u00bbnow.\u00bb", "Bye."]),
        ("at 10:45 a.m. We left", ["at 10:45 a.m.", "We left"]),
        ("1. Buy milk", ["1. Buy milk"]),
        ("1. First item 2. Second item", ["1. First item", "2. Second item"]),
        ("Great! [laughter] So anyway.", ["Great! [laughter]", "So anyway."]),
        ("Oops. [clear_throat]", ["Oops. [clear_throat]"]),
        ("Line one\nline two", ["Line one\nline two"]),
        ("Line one.\nLine two", ["Line one.", "Line two"]),
        ("Para one\n\nPara two", ["Para one", "Para two"]),
        ("Para one\n \t\n\n\nPara two", ["Para one", "Para two"]),
        ("\u4f60\u597d\u3002\u518d\u89c1\u3002", ["\u4f60\u597d\u3002", "\u518d\u89c1\u3002"]),
        ("Is it https://example.com/? Yes.", ["Is it https://example.com/?", "Yes."]),
        ("[clear throat. Then cough] ok", ["[clear throat. Then cough] ok"]),
        ("\u0915\u094d\u092f\u093e \u0939\u093e\u0932 \u0939\u0948\u0964 \u0920\u0940\u0915 "
         "\u0939\u0948\u0964", ["\u0915\u094d\u092f\u093e \u0939\u093e\u0932 \u0939\u0948\u0964",
                                 "\u0920\u0940\u0915 \u0939\u0948\u0964"]),
    ],
)
def test_examples(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # list markers: "N.)", "N)", bullets before numbers, lettered lists
        ("1.) The first item 2.) The second item", ["1.) The first item", "2.) The second item"]),
        ("1) The first item 2) The second item", ["1) The first item", "2) The second item"]),
        ("1) Red. 2) Blue.", ["1) Red.", "2) Blue."]),
        ("1) red\n2) blue 3) green", ["1) red", "2) blue", "3) green"]),
        ("Options: 1) red 2) blue", ["Options: 1) red 2) blue"]),  # no list opened a line
        ("\u2022 9. The first item \u2022 10. The second item",
         ["\u2022 9. The first item", "\u2022 10. The second item"]),
        ("\u20439. The first item \u204310. The second item",
         ["\u20439. The first item", "\u204310. The second item"]),
        ("a. The first item b. The second item", ["a. The first item", "b. The second item"]),
        ("a. One\nb. Two\nc. Three", ["a. One", "b. Two", "c. Three"]),
        ("A. Lincoln and B. Obama met.", ["A. Lincoln and B. Obama met."]),  # initials, not a list
        # a.m./p.m. after an opening time phrase
        ("At 5 a.m. Mr. Smith left. He came back.", ["At 5 a.m. Mr. Smith left.", "He came back."]),
        ("By 9a.m. Everyone was there.", ["By 9a.m. Everyone was there."]),
        ("He left at 6 P.M. Mr. Smith stayed.", ["He left at 6 P.M.", "Mr. Smith stayed."]),
        ("Call me at 9a.m. Then go.", ["Call me at 9a.m.", "Then go."]),
        # the pronoun I, and initials
        ("You and I. Then.", ["You and I.", "Then."]),
        ("Louis I. Smith came.", ["Louis I. Smith came."]),
        ("We left the U.S. Did you stay?", ["We left the U.S.", "Did you stay?"]),
        # ellipses: before the pronoun I, in brackets, spaced, after a period
        ("I thought... I don't know.", ["I thought... I don't know."]),
        ("the thing is . . . I didn\u2019t mean it.", ["the thing is . . . I didn\u2019t mean it."]),
        ("He stopped . . . Then he ran.", ["He stopped . . .", "Then he ran."]),
        ('"Bohr [...] used stairways [...]" (Smith 55).',
         ['"Bohr [...] used stairways [...]" (Smith 55).']),
        ("compounds. . . . The practice ended.", ["compounds.", ". . . The practice ended."]),
        ("a period . . . . Next sentence.", ["a period . . . .", "Next sentence."]),
        ("that.... She left.", ["that....", "She left."]),
        # a title glued to the word before still never ends a sentence
        ("Hello world.Today is Tuesday.Mr. Smith went.", ["Hello world.Today is Tuesday.Mr. Smith went."]),
        # N° before a number
        ("It is at N\u00b0. 1026.253.553. That is all.", ["It is at N\u00b0. 1026.253.553.", "That is all."]),
    ],
)
def test_golden_rule_behaviour(text: str, expected: list[str]) -> None:
    """The rules added for the public Golden Rules, and the false boundaries they avoid."""
    assert sentences(text) == expected


def test_spans_point_into_the_original_text() -> None:
    text = "  Mr. Smith arrived.\t\tHe sat down!  "
    spans = SPLITTER.split(text)
    assert spans == [Span(2, 20), Span(22, 34)]


# --- contract on edge inputs ------------------------------------------------------------


EDGE_INPUTS = [
    "",
    " ",
    "\n\n\t ",
    "a",
    ".",
    "...!?",
    "   word   ",
    "a" * 100_000,
    "." * 10_000,
    "." * 10_000 + "a",
    ". " * 5_000,
    "a." * 20_000,
    "A. " * 5_000,
    "Mr. " * 5_000,
    "[" * 5_000,
    "]" * 5_000,
    "[laughter] " * 2_000,
    "\n" * 5_000 + "x",
    "1. " * 3_000,
    "\u00e9t\u00e9. \u00c9t\u00e9! \u00bfQu\u00e9? \u4f60\u597d\u3002\U0001f389 \u2026 \u201c\u201d",
    "\u3002" * 1_000,
    "\U0001f600" * 1_000,
    "\u200b\u00a0\u2028\u2029x\u3000y",
    ".)\"'" * 2_000 + " X",
    "#\n# \n#  x\n##",
]


@pytest.mark.parametrize("text", EDGE_INPUTS, ids=lambda t: repr(t[:20]) + f"...[{len(t)}]")
def test_contract_on_edge_inputs(text: str) -> None:
    spans = SPLITTER.split(text)
    check_sentence_spans(text, spans, "regex")
    assert all(isinstance(s, Span) and len(s) > 0 for s in spans)
    if text.strip():
        assert spans
    else:
        assert spans == []


def test_pathological_inputs_are_fast() -> None:
    """No catastrophic backtracking: each of these is far beyond anything quadratic."""
    for text in [
        "." * 200_000 + "a",
        "a" * 200_000,
        "a." * 100_000,
        "." * 100_000 + " " * 100_000 + "x",
        ".)" * 100_000 + "x",
        "[" + "a" * 200_000,
        "\n " * 100_000 + "x",
        "A. " * 60_000,
        "1. " * 60_000,
        # the list, ellipsis, pronoun and time-phrase rules
        "and I. Did " * 20_000,
        ". . . . The " * 20_000,
        "x. . . . I " * 20_000,
        "1) a 2) b " * 20_000,
        "\u2022 1. " * 40_000,
        "a. The b. The " * 20_000,
        "At 5 a.m. Mr. " * 20_000,
        "(...) X " * 30_000,
        " " * 200_000 + "I. X",
    ]:
        start = time.perf_counter()
        spans = SPLITTER.split(text)
        elapsed = time.perf_counter() - start
        check_sentence_spans(text, spans, "regex")
        assert elapsed < 2.0, f"{text[:10]!r}... took {elapsed:.2f}s"


def test_throughput_on_a_megabyte() -> None:
    text = " ".join(c.text for c in HARD_CASES) + "\n\n"
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    start = time.perf_counter()
    spans = SPLITTER.split(text)
    elapsed = time.perf_counter() - start
    check_sentence_spans(text, spans, "regex")
    # about 0.1 s here; the bound only catches super-linear regressions
    assert elapsed < 3.0, f"1 MB took {elapsed:.2f}s"


# --- property test ----------------------------------------------------------------------

_ALPHABET = "aZq09 \n\t.!?,;:\"'()[]\u2026\u201c\u201d\u2019\u00bf\u3002#-*\u00e9\u00a0"
_FRAGMENTS = [
    "Mr.", "e.g.", "[laughter]", "[clear throat]", "http://a.b/c.d", "3.14", "U.S.",
    "a.m.", "1. ", "2. ", "...", "\n\n", " The", " he", "\U0001f389", "No. 5", "J. R.",
]
_TEXTS = st.lists(
    st.one_of(st.text(alphabet=_ALPHABET, max_size=6), st.sampled_from(_FRAGMENTS)),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_property_contract_holds(text: str) -> None:
    spans = SPLITTER.split(text)
    check_sentence_spans(text, spans, "regex")
    # never cut inside a bracketed tag
    for tag in TAG_RE.finditer(text):
        for s in spans:
            assert not (tag.start() < s.start < tag.end()), (text, s)
            assert not (tag.start() < s.end < tag.end()), (text, s)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_property_contract_holds_on_any_unicode(text: str) -> None:
    check_sentence_spans(text, SPLITTER.split(text), "regex")


@settings(max_examples=100, deadline=None)
@given(_TEXTS)
def test_property_split_on_newlines_contract(text: str) -> None:
    splitter = RegexSentenceSplitter(RegexSplitterOptions(split_on_newlines=True))
    spans = splitter.split(text)
    check_sentence_spans(text, spans, "regex")
    assert all("\n" not in s.text(text) for s in spans)


# --- options ----------------------------------------------------------------------------


def test_extra_abbreviations() -> None:
    text = "Ask Insp. Morse about it. He knows."
    assert sentences(text) == ["Ask Insp.", "Morse about it.", "He knows."]
    for spelling in (["Insp"], ["insp."], ["INSP."]):
        splitter = RegexSentenceSplitter(RegexSplitterOptions(extra_abbreviations=spelling))
        assert sentences(text, splitter) == ["Ask Insp. Morse about it.", "He knows."]


def test_extra_abbreviations_ignore_blank_entries() -> None:
    splitter = RegexSentenceSplitter(RegexSplitterOptions(extra_abbreviations=["", " . "]))
    assert sentences("One. Two.", splitter) == ["One.", "Two."]


def test_split_on_newlines() -> None:
    text = "first line\nsecond line\n\nthird"
    assert sentences(text) == ["first line\nsecond line", "third"]
    splitter = RegexSentenceSplitter(RegexSplitterOptions(split_on_newlines=True))
    assert sentences(text, splitter) == ["first line", "second line", "third"]


def test_default_options() -> None:
    options = RegexSplitterOptions()
    assert options.extra_abbreviations == []
    assert options.split_on_newlines is False
    assert RegexSentenceSplitter().options == options


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ValidationError):
        RegexSplitterOptions(abbreviations=["x"])  # type: ignore[call-arg]
    (spec,) = seqopt_sentence_splitters()
    # the registry record wraps pydantic's error in a ConfigError naming the strategy
    with pytest.raises(ConfigError, match="split_on_newline: unknown key"):
        spec.create({"split_on_newline": True})


# --- registration -----------------------------------------------------------------------


def test_hook_returns_the_spec() -> None:
    (spec,) = seqopt_sentence_splitters()
    assert spec.name == "regex"
    assert spec.options is RegexSplitterOptions
    assert spec.description and "\n" not in spec.description
    assert spec.availability().enabled
    splitter = spec.create({"extra_abbreviations": ["insp"]})
    assert isinstance(splitter, RegexSentenceSplitter)
    assert isinstance(splitter, SentenceSplitter)


def test_plugin_is_discovered() -> None:
    host = PluginHost.discover()
    info = host.strategy("splitter", "regex")
    assert info.enabled
    assert info.provider == "regex_splitter"
    splitter = host.create("splitter", "regex", {"split_on_newlines": True})
    assert isinstance(splitter, RegexSentenceSplitter)
    assert [s.text("a\nb") for s in splitter.split("a\nb")] == ["a", "b"]
