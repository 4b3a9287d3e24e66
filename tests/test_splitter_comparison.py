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
