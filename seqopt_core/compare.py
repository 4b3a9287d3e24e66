"""Compare sentence splitters on labelled texts: the harness behind
``tests/test_splitter_comparison.py`` and ``docs/splitters.md``, for users who
compare splitter strategies on their own texts.

    >>> from seqopt_core import LabeledText, compare_splitters, PluginHost
    >>> host = PluginHost.discover()
    >>> cases = [LabeledText("abbrev", "Dr. Who left. He came back.", ("Dr. Who left.", "He came back."))]
    >>> report = compare_splitters({n: host.create("splitter", n) for n in ("regex", "nltk")}, cases)
    >>> report.scores["regex"].exact
    1
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .strategies import SentenceSplitter
from .text import check_sentence_spans


class Labeled(Protocol):
    """Anything with an ``id``, a ``text`` and its gold ``sentences`` (trimmed substrings)."""

    id: str
    text: str
    sentences: Sequence[str]


@dataclass(frozen=True)
class LabeledText:
    """A text and the sentences a careful reader would mark in it, in order."""

    id: str
    text: str
    sentences: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class CaseResult:
    """What one splitter made of one labelled text."""

    case_id: str
    splitter: str
    predicted: tuple[str, ...]
    correct: bool
    missed: tuple[int, ...]  # gold boundaries (end offsets) the splitter did not find
    spurious: tuple[int, ...]  # boundaries it found that the gold does not have
    error: str | None = None  # a contract violation or exception


@dataclass(frozen=True)
class SplitterScore:
    """One splitter's totals over all cases.

    ``false_boundaries`` counts the boundaries it put where the gold has none
    (for speech, a pause inside a phrase: the costlier mistake),
    ``missed_boundaries`` the gold boundaries it did not find (a longer
    sentence, which the planner may still cut at a clause or word).
    """

    splitter: str
    cases: int
    exact: int
    boundary_precision: float
    boundary_recall: float
    errors: int
    seconds: float
    false_boundaries: int = 0
    missed_boundaries: int = 0

    @property
    def boundary_f1(self) -> float:
        p, r = self.boundary_precision, self.boundary_recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class SplitterComparison:
    """Per-case results and per-splitter scores."""

    results: list[CaseResult] = field(default_factory=list)
    scores: dict[str, SplitterScore] = field(default_factory=dict)

    def failures(self, splitter: str) -> list[CaseResult]:
        return [r for r in self.results if r.splitter == splitter and not r.correct]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": {k: {**asdict(v), "boundary_f1": v.boundary_f1} for k, v in self.scores.items()},
            "results": [asdict(r) for r in self.results],
        }

    def to_markdown(self, all_cases: bool = False) -> str:
        """A score table, then a table of the cases, one row each.

        By default the case table has only the cases that at least one splitter
        got wrong, and a line after it says how many cases every splitter got
        right and names them; ``all_cases=True`` gives every case a row.
        A cell counts that splitter's false and missed boundaries in that case.
        """
        names = list(self.scores)
        lines = ["| splitter | exact | false boundaries | missed boundaries | boundary precision "
                 "| boundary recall | F1 | errors | ms |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in self.scores.values():
            lines.append(f"| `{s.splitter}` | {s.exact}/{s.cases} | {s.false_boundaries} | "
                         f"{s.missed_boundaries} | {s.boundary_precision:.3f} | "
                         f"{s.boundary_recall:.3f} | {s.boundary_f1:.3f} | {s.errors} | "
                         f"{s.seconds * 1000:.1f} |")
        by_case: dict[str, dict[str, CaseResult]] = {}
        for r in self.results:
            by_case.setdefault(r.case_id, {})[r.splitter] = r
        easy = [cid for cid, rs in by_case.items() if all(r.correct for r in rs.values())]
        shown = by_case if all_cases else {cid: rs for cid, rs in by_case.items() if cid not in easy}
        if shown:
            lines += ["", "| case | " + " | ".join(f"`{n}`" for n in names) + " |",
                      "| --- |" + " --- |" * len(names)]
            for cid, rs in shown.items():
                cells = []
                for n in names:
                    r = rs.get(n)
                    if r is None:
                        cells.append("")
                    elif r.error:
                        cells.append("error")
                    elif r.correct:
                        cells.append("ok")
                    else:
                        cells.append(f"{len(r.spurious)} false, {len(r.missed)} missed")
                lines.append(f"| {cid} | " + " | ".join(cells) + " |")
        if easy and not all_cases:
            every = "the splitter" if len(names) == 1 else f"all {len(names)} splitters"
            lines += ["", f"Not shown: {len(easy)} of {len(by_case)} cases, which {every} "
                          f"split exactly as the gold: {', '.join(easy)}."]
        return "\n".join(lines)


def _inner_boundaries(text: str, sentences: Sequence[str]) -> set[int]:
    ends, pos = [], 0
    for sentence in sentences:
        start = text.find(sentence, pos)
        if start < 0:
            raise ValueError(f"gold sentence {sentence!r} is not in the text (in order)")
        pos = start + len(sentence)
        ends.append(pos)
    return set(ends[:-1])


def compare_splitters(splitters: Mapping[str, SentenceSplitter],
                      cases: Iterable[Labeled]) -> SplitterComparison:
    """Run every splitter on every case; score exact matches and inner boundaries.

    A splitter that raises or breaks the splitter contract on a case gets an
    ``error`` for it (and no boundaries), so one bad case cannot hide the rest.
    """
    cases = list(cases)
    out = SplitterComparison()
    for name, splitter in splitters.items():
        exact = errors = found_total = gold_total = hit_total = false_total = missed_total = 0
        seconds = 0.0
        for case in cases:
            gold = _inner_boundaries(case.text, case.sentences)
            error = None
            t0 = time.perf_counter()
            try:
                spans = list(splitter.split(case.text))
                seconds += time.perf_counter() - t0
                check_sentence_spans(case.text, spans, name)
            except Exception as exc:  # noqa: BLE001 - reported per case
                error, spans = f"{type(exc).__name__}: {exc}", []
            predicted = tuple(case.text[s.start:s.end] for s in spans)
            found = {s.end for s in spans[:-1]}
            correct = error is None and predicted == tuple(case.sentences)
            exact += correct
            errors += error is not None
            gold_total += len(gold)
            found_total += len(found)
            hit_total += len(found & gold)
            false_total += len(found - gold)
            missed_total += len(gold - found)
            out.results.append(CaseResult(case.id, name, predicted, correct,
                                          tuple(sorted(gold - found)), tuple(sorted(found - gold)),
                                          error))
        out.scores[name] = SplitterScore(
            name, len(cases), exact,
            hit_total / found_total if found_total else 1.0,
            hit_total / gold_total if gold_total else 1.0,
            errors, seconds, false_total, missed_total)
    return out
