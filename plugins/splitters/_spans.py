"""Offset repair shared by the library-backed splitters (nltk, spacy, pysbd).

Third-party sentence splitters give sentence boundaries in different shapes
(character offsets, token offsets, or sentence strings that may have been
normalised) and none of them promises seqopt's splitter contract. The pure
functions here turn whatever a library produced into spans that honour it:

* :func:`repair_spans` — raw ``(start, end)`` offsets, possibly untrimmed,
  overlapping, out of order, out of bounds or leaving text out, become trimmed,
  ordered, non-overlapping spans with every non-whitespace character in exactly
  one of them.
* :func:`align_pieces` — sentence *strings* (which a library may have altered)
  are located in the original text, in order, in linear time.
* :func:`blocks` — the text cut into paragraph-sized pieces, so that a library
  never sees an unbounded input (memory, ``nlp.max_length``, super-linear rules).

Nothing here imports a third-party package.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence

from seqopt_core.text import paragraph_spans, trim
from seqopt_core.types import Span

__all__ = ["align_pieces", "blocks", "fallback_spans", "repair_spans", "spans_in_blocks"]

_NON_SPACE = re.compile(r"\S")
# A likely sentence end inside an over-long paragraph: end punctuation (also the
# CJK marks, the danda and the Arabic question mark), closers, whitespace.
_SOFT_CUT = re.compile(
    r"[.!?\u2026\u3002\uff01\uff1f\u0964\u0965\u061f\u06d4][\"'\u201d\u2019)\]\u00bb]*\s+"
    r"(?=[\"'\u201c\u2018(\[\u00ab]?[^\W\d_])"
)
_SPACE_RUN = re.compile(r"\s+")
# Last-resort sentence ends: end punctuation and closers, then whitespace; after the
# CJK marks 。！？ no whitespace is needed.
_PLAIN_END = re.compile(
    r"[.!?\u2026\u0964\u0965\u061f\u06d4]+[\"'\u201d\u2019)\]\u00bb]*(?=\s)"
    r"|[\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]\u00bb\u300d\u300f]*"
)
_STRAIGHT_QUOTES = frozenset("\"'")


def repair_spans(text: str, raw_spans: Iterable[tuple[int, int] | Span]) -> list[Span]:
    """Sentence spans of ``text`` that honour the splitter contract, built from the
    ``raw_spans`` a library reported (``(start, end)`` pairs or :class:`Span`).

    The library's *start* offsets are taken as sentence starts; each sentence runs
    to the next start and is trimmed, so no character can be lost or doubled
    whatever the library did. Where the library left non-whitespace text between
    two of its sentences, that text goes to the previous sentence, except a part
    glued to the next sentence's first character (after the gap's last
    whitespace), which goes to the next one. An opening quote or bracket that a
    library left at the end of the previous sentence (spaCy's sentencizer does
    this with ``“``) moves to the sentence it opens.
    """
    n = len(text)
    raw: list[tuple[int, int]] = []
    for item in raw_spans:
        if isinstance(item, Span):
            s, e = item.start, item.end
        else:
            s, e = item
        s = min(max(int(s), 0), n)
        e = min(max(int(e), s), n)
        if s < e:
            raw.append((s, e))
    if not raw:
        whole = trim(text, Span(0, n)) if n else None
        return [whole] if whole else []
    raw.sort()

    # Sentence starts: skip spans that begin inside an earlier span (overlaps) and
    # spans that hold only whitespace; decide where each gap's leftovers go.
    cuts: list[int] = []
    prev_end = -1
    for s, e in raw:
        first = _NON_SPACE.search(text, s, e)
        if first is None:
            continue  # whitespace only: contributes nothing
        s = first.start()
        if prev_end < 0:
            prev_end = e
            continue  # the first sentence starts at 0 (leading leftovers join it)
        if s < prev_end:
            prev_end = max(prev_end, e)
            continue  # overlaps the previous sentence: treat as part of it
        cuts.append(_gap_cut(text, prev_end, s))
        prev_end = e

    spans: list[Span] = []
    pos = 0
    for cut in cuts:
        piece = trim(text, Span(pos, cut))
        if piece:
            spans.append(piece)
        pos = cut
    piece = trim(text, Span(pos, n))
    if piece:
        spans.append(piece)
    return _move_openers(text, spans)


def _gap_cut(text: str, prev_end: int, start: int) -> int:
    """Where to cut between a sentence ending at ``prev_end`` and one starting at
    ``start`` (``prev_end <= start``, ``text[start]`` not whitespace)."""
    if prev_end >= start or not text[prev_end:start].strip():
        return start
    if text[start - 1].isspace():
        return start  # leftovers are not glued to the next sentence: previous keeps them
    # Leftovers glued to the next sentence's start go with it: cut after the
    # gap's last whitespace, if it has any.
    i = start - 1
    while i >= prev_end and not text[i].isspace():
        i -= 1
    return i + 1 if i >= prev_end else start


def _is_opener(ch: str) -> bool:
    return unicodedata.category(ch) in ("Ps", "Pi") or ch in _STRAIGHT_QUOTES


def _move_openers(text: str, spans: list[Span]) -> list[Span]:
    """Move a trailing run of opening punctuation, separated from the rest of its
    span by whitespace and glued to the next span, to that next span."""
    for i in range(len(spans) - 1):
        cur, nxt = spans[i], spans[i + 1]
        if cur.end != nxt.start:
            continue
        j = cur.end
        while j > cur.start and _is_opener(text[j - 1]):
            j -= 1
        if j == cur.end or j == cur.start or not text[j - 1].isspace():
            continue
        head = trim(text, Span(cur.start, j))
        if head is None:
            continue
        spans[i] = head
        spans[i + 1] = Span(j, nxt.end)
    return spans


def align_pieces(text: str, pieces: Iterable[str], start: int = 0) -> list[tuple[int, int]]:
    """Locate sentence strings ``pieces`` (in order) in ``text`` from ``start``.

    A piece is looked for at the next non-whitespace character, then a little
    further on (the library dropped a character or two). A piece the library
    altered (replaced characters, normalised whitespace) is matched character by
    character ignoring whitespace up to the first difference; from there its
    last few characters are looked for just ahead, and failing that it is taken
    to cover as many non-whitespace characters as it has itself. Each piece
    costs time linear in its length, so the whole is linear. The result is raw:
    pass it through :func:`repair_spans`.
    """
    out: list[tuple[int, int]] = []
    pos = start
    n = len(text)
    for piece in pieces:
        p = piece.strip() if isinstance(piece, str) else ""
        if not p:
            continue
        m = _NON_SPACE.search(text, pos)
        if m is None:
            break
        j = m.start()
        if text.startswith(p, j):
            out.append((j, j + len(p)))
            pos = j + len(p)
            continue
        i = text.find(p, j, j + len(p) + _RESYNC_WINDOW)
        if i >= 0:
            out.append((i, i + len(p)))
            pos = i + len(p)
            continue
        k = _walk(text, j, p)
        if k > j:
            out.append((j, k))
            pos = k
    return out


_RESYNC_WINDOW = 64


def _walk(text: str, j: int, p: str) -> int:
    """End offset of the altered piece ``p`` that starts at ``text[j]``."""
    n = len(text)
    k = j
    for idx, ch in enumerate(p):
        if ch.isspace():
            continue
        while k < n and text[k].isspace():
            k += 1
        if k >= n:
            return n
        if text[k] != ch:
            rest = "".join(p[idx:].split())
            tail = rest[-4:]
            if len(tail) < len(rest):  # the difference is not in the tail itself
                f = text.find(tail, k, k + 2 * len(rest) + _RESYNC_WINDOW)
                if f >= 0:
                    return f + len(tail)
            remaining = len(rest)
            while remaining and k < n:
                if not text[k].isspace():
                    remaining -= 1
                k += 1
            return k
        k += 1
    return k


def blocks(text: str, max_chars: int) -> Iterator[Span]:
    """Spans of ``text`` to hand to a library one at a time: its paragraphs
    (separated by blank lines), each cut to at most ``max_chars`` characters.

    An over-long paragraph is cut after the last likely sentence end in the
    second half of the window, else at its last whitespace, else (one enormous
    "word") at ``max_chars``. A blank line always ends a sentence.
    """
    if max_chars < 2:
        raise ValueError("max_chars must be at least 2")
    for para in paragraph_spans(text):
        pos, end = para.start, para.end
        while end - pos > max_chars:
            lo, hi = pos + max_chars // 2, pos + max_chars
            cut = _last_cut(text, lo, hi)
            piece = trim(text, Span(pos, cut))
            if piece:
                yield piece
            pos = cut
        piece = trim(text, Span(pos, end))
        if piece:
            yield piece


def _last_cut(text: str, lo: int, hi: int) -> int:
    last = None
    for m in _SOFT_CUT.finditer(text, lo, hi):
        head = text[max(lo, m.start() - 16) : m.start()]
        word = head.rsplit(None, 1)[-1] if head.strip() else ""
        if "." in word or (len(word) <= 3 and word[:1].isupper()):
            continue  # "U.S.", "Mr.", "J.": likely an abbreviation, not a sentence end
        first = text[m.end()]
        if first.isupper() or not first.isalpha() or first.lower() == first.upper():
            last = m.end()  # a capital, a non-letter or a letter of a caseless script
    if last is not None and last < hi:
        return last
    for m in _SPACE_RUN.finditer(text, lo, hi):
        last = m.end()
    if last is not None and lo < last < hi:
        return last
    return hi


def spans_in_blocks(
    text: str, block_spans: Sequence[Span], per_block: Sequence[Iterable[tuple[int, int]]]
) -> list[Span]:
    """Repair each block's raw (block-relative) offsets and shift them into ``text``."""
    out: list[Span] = []
    for block, raw in zip(block_spans, per_block):
        local = text[block.start : block.end]
        for sp in repair_spans(local, raw):
            out.append(Span(block.start + sp.start, block.start + sp.end))
    return out


def fallback_spans(text: str) -> list[tuple[int, int]]:
    """Raw sentence offsets from plain punctuation rules, for a block a library
    failed on (it raised): a sentence ends at end punctuation (and any closing
    quotes or brackets) followed by whitespace."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _PLAIN_END.finditer(text):
        out.append((pos, m.end()))
        pos = m.end()
    out.append((pos, len(text)))
    return out


_log = logging.getLogger("seqopt.splitters")


def library_spans(library: str, split: Callable[[str], Iterable[tuple[int, int]]],
                  block: str) -> list[tuple[int, int]]:
    """``split(block)``, or plain-punctuation spans if the library raises.

    A bug in a third-party splitter must not lose text or stop a long job: it is
    logged as a warning and the block is cut by :func:`fallback_spans` instead.
    """
    try:
        return list(split(block))
    except Exception as exc:  # noqa: BLE001 - any library failure falls back
        _log.warning("%s failed on a %d-character block (%s: %s); splitting it at plain "
                     "punctuation instead", library, len(block), type(exc).__name__, exc)
        return fallback_spans(block)
