"""The segment planner: packs sentences into segments near a target token count.

Guarantees, for any splitter that honours its contract:

* every segment is ``source[start:end]``, trimmed; segments are in order, do not
  overlap, and only whitespace lies outside them, so no text is lost or repeated;
* every segment counts at most ``max_tokens`` by the configured estimator (with
  the exact estimator, what the model really receives), or planning fails with
  :class:`~seqopt_core.errors.PlanningError` naming the piece that cannot fit;
* paragraph breaks (blank lines) are never crossed;
* a text of at most ``split_threshold_tokens`` stays one segment.

A sentence longer than ``max_tokens`` is cut at clause punctuation, then at word
boundaries, never inside a word, number, URL or bracketed tag. Text written
without spaces (Chinese, Japanese, Thai, ...) is cut between its characters,
never inside a grapheme cluster (``seqopt_core.text.word_spans``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import PlanningError, PluginError
from .strategies import SentenceSplitter, TokenEstimator
from .text import (
    check_sentence_spans,
    clause_spans,
    paragraph_spans,
    trim,
    validate_text,
    word_spans,
)
from .types import BoundaryKind, Segment, SegmentPlan, Span


#: Most text tokens T3 takes in one segment: ``planner.max_tokens`` cannot go higher.
MODEL_MAX_TOKENS = 2048

#: No English token covers more characters than this; texts longer than this many
#: characters per threshold token are known to need splitting without a count.
WHOLE_TEXT_CHARS_PER_TOKEN = 32


@dataclass(frozen=True)
class PlannerSettings:
    """Limits the planner works to (mirrors the ``[planner]`` config table)."""

    target_tokens: int = 96
    max_tokens: int = 128
    split_threshold_tokens: int | None = None
    min_fill: float = 0.7
    paragraph_breaks: bool = True

    def __post_init__(self) -> None:
        if self.target_tokens < 1 or self.max_tokens < self.target_tokens:
            raise ValueError(
                f"need 1 <= target_tokens <= max_tokens, got target {self.target_tokens}, "
                f"max {self.max_tokens}"
            )
        if not 0.0 <= self.min_fill <= 1.0:
            raise ValueError(f"min_fill must be within [0, 1], got {self.min_fill}")

    @property
    def threshold(self) -> int:
        t = self.target_tokens if self.split_threshold_tokens is None else self.split_threshold_tokens
        return min(t, self.max_tokens)


def paragraph_sentences(text: str, para: Span, splitter: SentenceSplitter, name: str) -> list[Span]:
    """Sentence spans of one paragraph of ``text``, in ``text``'s offsets.

    The splitter sees only the paragraph; its answer is checked against the
    splitter contract, and a violation is reported as a bug in that splitter.
    """
    local = para.text(text)
    try:
        spans = list(splitter.split(local))
        check_sentence_spans(local, spans, name)
    except ValueError as exc:
        raise PluginError(f"{exc} (a bug in that splitter: please report it)") from None
    if not spans:
        raise PluginError(f"splitter {name!r} returned no sentence for {local[:60]!r}")
    return [Span(sp.start + para.start, sp.end + para.start) for sp in spans]


def strategy_name(strategy: object) -> str:
    """What to call a strategy object in a message: its ``name`` attribute, else its class."""
    name = getattr(strategy, "name", None)
    return name if isinstance(name, str) and name else type(strategy).__name__


def split_sentences(text: str, splitter: SentenceSplitter, name: str | None = None) -> list[Span]:
    """Sentence spans of all of ``text``: paragraphs first, then the splitter.

    ``name`` is how messages call the splitter (default: its ``name`` or class).
    """
    validate_text(text)
    name = name or strategy_name(splitter)
    spans: list[Span] = []
    for para in paragraph_spans(text):
        spans.extend(paragraph_sentences(text, para, splitter, name))
    return spans


@dataclass
class _Unit:
    span: Span
    kind: BoundaryKind  # the boundary after this unit
    level: int  # 0 sentence, 1 clause, 2 word


class SegmentPlanner:
    """Plans texts with one splitter, one estimator and one set of limits."""

    def __init__(
        self,
        splitter: SentenceSplitter,
        estimator: TokenEstimator,
        settings: PlannerSettings | None = None,
        *,
        splitter_name: str | None = None,
        estimator_name: str | None = None,
        on_plan: Callable[[SegmentPlan], None] | None = None,
        language: str | None = None,
    ) -> None:
        self.on_plan = on_plan
        #: The language every planned segment is stamped with (the estimator counts for it).
        self.language = language
        self.splitter = splitter
        self.estimator = estimator
        self.settings = settings or PlannerSettings()
        # Names for plans and messages: the registered name when built from a
        # config, else the object's own name or class (never one the user did not give).
        self.splitter_name = splitter_name or strategy_name(splitter)
        self.estimator_name = estimator_name or strategy_name(estimator)

    # -- public ------------------------------------------------------------

    def sentences(self, text: str) -> list[Span]:
        """The splitter's sentence spans of ``text``, checked against its contract."""
        return split_sentences(text, self.splitter, self.splitter_name)

    def plan(self, text: str, progress: Callable[[int, int], None] | None = None) -> SegmentPlan:
        """Cut ``text`` into segments; see the module docstring for the guarantees.

        ``progress(done_chars, total_chars)`` is called after each paragraph; the
        last call is always ``(total_chars, total_chars)``, whatever follows the
        last paragraph (a final newline, say).
        """
        started = time.perf_counter()
        validate_text(text)
        s = self.settings
        whole = trim(text, Span(0, len(text)))
        assert whole is not None  # validate_text refused blank text
        segments: list[Segment] = []
        # A text longer than WHOLE_TEXT_CHARS_PER_TOKEN characters per threshold token
        # is planned without counting it whole (counting megabytes at once is slow).
        short = len(whole) <= WHOLE_TEXT_CHARS_PER_TOKEN * s.threshold
        whole_tokens = self.estimator.count(whole.text(text)) if short else s.threshold + 1
        if whole_tokens <= s.threshold:
            segments.append(Segment(0, whole.text(text), whole.start, whole.end, whole_tokens, "end",
                                    self.language))
        else:
            paragraphs = paragraph_spans(text) if s.paragraph_breaks else [whole]
            for p_index, para in enumerate(paragraphs):
                last_kind: BoundaryKind = "end" if p_index == len(paragraphs) - 1 else "paragraph"
                units = [_Unit(sp, "sentence", 0) for sp in self._split(text, para)]
                units[-1].kind = last_kind
                self._pack(text, units, segments)
                if progress is not None and p_index < len(paragraphs) - 1:
                    progress(para.end, len(text))
        if progress is not None:
            progress(len(text), len(text))
        plan = SegmentPlan(
            segments=tuple(segments),
            splitter=self.splitter_name,
            estimator=self.estimator_name,
            target_tokens=s.target_tokens,
            max_tokens=s.max_tokens,
            source_length=len(text),
            planning_seconds=time.perf_counter() - started,
            language=self.language,
        )
        if self.on_plan is not None:
            self.on_plan(plan)
        return plan

    # -- internals ---------------------------------------------------------

    def _split(self, text: str, para: Span) -> list[Span]:
        return paragraph_sentences(text, para, self.splitter, self.splitter_name)

    def _count(self, text: str, start: int, end: int) -> int:
        return self.estimator.count(text[start:end])

    def _refine(self, text: str, units: list[_Unit], i: int) -> None:
        """Replace ``units[i]`` (too long alone) by finer units, or fail clearly."""
        unit = units[i]
        for level, cutter, kind in ((1, clause_spans, "clause"), (2, word_spans, "word")):
            if unit.level >= level:
                continue
            pieces = cutter(text, unit.span)
            if len(pieces) > 1:
                finer = [_Unit(p, kind, level) for p in pieces]
                finer[-1].kind = unit.kind
                units[i : i + 1] = finer
                return
        tokens = self._count(text, unit.span.start, unit.span.end)
        snippet = unit.span.text(text)
        shown = snippet if len(snippet) <= 60 else snippet[:40] + "..." + snippet[-15:]
        if tokens > MODEL_MAX_TOKENS:  # no max_tokens the model accepts would let it through
            advice = (f"It cannot be spoken as one segment (the model takes at most "
                      f"{MODEL_MAX_TOKENS} tokens): break it up with spaces or shorten it in the text")
        else:
            advice = (f"Add spaces to that text, or raise planner.max_tokens to {tokens} or more "
                      f"(at most {MODEL_MAX_TOKENS}, the model's limit)")
        raise PlanningError(
            f"a single word of {len(unit.span)} characters at offset {unit.span.start} "
            f"({shown!r}) counts {tokens} tokens with the {self.estimator_name!r} estimator, "
            f"more than max_tokens={self.settings.max_tokens}; seqopt never cuts inside a "
            f"word, number, URL or tag. {advice}"
        )

    def _fits(self, text: str, units: list[_Unit], i: int, j: int, limit: int) -> int | None:
        """Token count of units ``i..j`` as one segment if it is at most ``limit``."""
        n = self._count(text, units[i].span.start, units[j].span.end)
        return n if n <= limit else None

    def _longest(self, text: str, units: list[_Unit], i: int, limit: int,
                 first_n: int, guess: int) -> tuple[int, int]:
        """Largest ``j`` (with its count) such that units ``i..j`` fit ``limit``,
        given that unit ``i`` alone does (``first_n`` tokens).

        Probes ``i + guess`` first (the previous segment's length), gallops from
        there and bisects, so a typical segment costs two or three counts and a
        run of thousands of words a few dozen. Only checked counts are returned.
        """
        best, best_n = i, first_n
        hi = len(units)  # smallest j known not to fit (or the end)
        probe, step = min(i + max(guess, 1), hi - 1), 1
        while probe > best:
            n = self._fits(text, units, i, probe, limit)
            if n is None:
                hi = probe
                break
            best, best_n = probe, n
            probe, step = min(best + step, hi - 1), step * 2
        lo = best + 1
        while lo < hi:
            mid = (lo + hi) // 2
            n = self._fits(text, units, i, mid, limit)
            if n is None:
                hi = mid
            else:
                best, best_n, lo = mid, n, mid + 1
        return best, best_n

    def _pack(self, text: str, units: list[_Unit], out: list[Segment]) -> None:
        s = self.settings
        i, guess = 0, 1
        while i < len(units):
            first_n = self._fits(text, units, i, i, s.max_tokens)
            if first_n is None:
                self._refine(text, units, i)
                continue
            if first_n > s.target_tokens:  # the unit alone is above target, within max
                j, n = i, first_n
            else:
                j, n = self._longest(text, units, i, s.target_tokens, first_n, guess)
                if n < s.min_fill * s.target_tokens and j + 1 < len(units):
                    # under-filled: take one more unit if the maximum allows it
                    more = self._fits(text, units, i, j + 1, s.max_tokens)
                    if more is not None:
                        j, n = j + 1, more
            guess = max(j - i, 1)
            start, end = units[i].span.start, units[j].span.end
            out.append(Segment(len(out), text[start:end], start, end, n, units[j].kind, self.language))
            i = j + 1
