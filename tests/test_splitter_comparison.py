"""The splitter strategies side by side on one shared fixture of hard cases.

Prints a comparison table (run ``pytest -s -k comparison`` to see it) and writes
it to ``splitter-comparison.md`` in pytest's temporary folder. Each splitter must
honour the contract on every case; the regex splitter must get every case right;
the library splitters are reported, not required to be perfect.
"""

from __future__ import annotations

import json

import pytest
from splitter_cases import HARD_CASES

from seqopt_core import LabeledText, compare_splitters
from seqopt_core.testing import make_host

SPLITTERS = ("regex", "nltk", "spacy", "pysbd")


@pytest.fixture(scope="module")
def comparison():
    host = make_host()
    return compare_splitters({n: host.create("splitter", n) for n in SPLITTERS}, HARD_CASES)


def test_every_splitter_honours_the_contract_on_every_case(comparison):
    errors = [(r.splitter, r.case_id, r.error) for r in comparison.results if r.error]
    assert errors == []


def test_regex_gets_every_hard_case_right(comparison):
    assert [r.case_id for r in comparison.failures("regex")] == []


def test_comparison_is_reported(comparison, tmp_path_factory, capsys):
    table = comparison.to_markdown()
    out = tmp_path_factory.mktemp("report")
    (out / "splitter-comparison.md").write_text(table + "\n", encoding="utf-8")
    (out / "splitter-comparison.json").write_text(json.dumps(comparison.to_dict(), indent=1))
    with capsys.disabled():
        print("\n\nsplitters on tests/splitter_cases.py\n" + table)
    assert set(comparison.scores) == set(SPLITTERS)
    for score in comparison.scores.values():
        assert score.cases == len(HARD_CASES)
        assert 0.0 <= score.boundary_precision <= 1.0 and 0.0 <= score.boundary_recall <= 1.0
    # every case is in the table or named as left out (defect 9: none silently dropped)
    assert all(case.id in table for case in HARD_CASES)
    # a library splitter beating regex on these cases would mean the fixture is too easy
    assert all(s.exact <= comparison.scores["regex"].exact for s in comparison.scores.values())


def test_the_harness_scores_what_it_sees():
    class Never:
        def split(self, text):
            from seqopt_core import Span
            return [Span(0, len(text))]

    class Broken:
        def split(self, text):
            raise RuntimeError("boom")

    case = LabeledText("two", "One. Two.", ("One.", "Two."))
    report = compare_splitters({"never": Never(), "broken": Broken()}, [case])
    never, broken = report.scores["never"], report.scores["broken"]
    assert (never.exact, never.boundary_recall, never.errors) == (0, 0.0, 0)
    assert report.failures("never")[0].missed == (4,)
    assert (broken.errors, broken.exact) == (1, 0) and "boom" in report.failures("broken")[0].error


class _Splitter:
    """A splitter that returns fixed sentence ends (offsets) for each text."""

    def __init__(self, ends):
        self.ends = ends

    def split(self, text):
        from seqopt_core import Span

        spans, pos = [], 0
        for end in [*self.ends.get(text, ()), len(text)]:
            while pos < end and text[pos].isspace():
                pos += 1
            if pos < end:
                spans.append(Span(pos, end))
            pos = end
        return spans


def _small_report():
    cases = [
        LabeledText("easy", "One. Two.", ("One.", "Two.")),
        LabeledText("hard", "Dr. Who left. He came back.", ("Dr. Who left.", "He came back.")),
        LabeledText("also-easy", "Hi.", ("Hi.",)),
    ]
    good = _Splitter({"One. Two.": (4,), "Dr. Who left. He came back.": (13,)})
    eager = _Splitter({"One. Two.": (4,), "Dr. Who left. He came back.": (3,)})
    return compare_splitters({"good": good, "eager": eager}, cases)


def test_markdown_says_which_cases_it_leaves_out():
    """Defect 9: the case table used to drop, without a word, the cases every splitter got right."""
    table = _small_report().to_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| hard |")]
    assert rows == ["| hard | ok | 1 false, 1 missed |"]
    assert "| easy |" not in table and "| also-easy |" not in table
    assert "Not shown: 2 of 3 cases, which all 2 splitters split exactly as the gold: easy, also-easy." in table


def test_markdown_can_show_every_case():
    table = _small_report().to_markdown(all_cases=True)
    for cid, cells in (("easy", "ok | ok"), ("hard", "ok | 1 false, 1 missed"), ("also-easy", "ok | ok")):
        assert f"| {cid} | {cells} |" in table
    assert "Not shown" not in table


def test_false_and_missed_boundaries_are_counted_apart():
    report = _small_report()
    good, eager = report.scores["good"], report.scores["eager"]
    assert (good.false_boundaries, good.missed_boundaries) == (0, 0)
    assert (eager.false_boundaries, eager.missed_boundaries) == (1, 1)
    for name, score in report.scores.items():
        results = [r for r in report.results if r.splitter == name]
        assert score.false_boundaries == sum(len(r.spurious) for r in results)
        assert score.missed_boundaries == sum(len(r.missed) for r in results)
    assert "| `eager` | 2/3 | 1 | 1 |" in report.to_markdown()
    assert report.to_dict()["scores"]["eager"]["false_boundaries"] == 1
