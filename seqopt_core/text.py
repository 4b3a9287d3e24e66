"""Pure text functions of the planner: spans in, spans out.

Nothing here changes the text. Every function returns :class:`Span` objects
that point into the string it was given, trimmed of surrounding whitespace.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .errors import InvalidTextError, TextDecodeError
from .types import Span

# A blank line (only horizontal whitespace between two line breaks) ends a paragraph.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_NON_SPACE_RUN = re.compile(r"\S+")
# Bracketed event tags such as "[laughter]" or "[clear_throat]": never cut inside.
TAG_RE = re.compile(r"\[[^\[\]\n]{1,40}\]")
# Clause punctuation followed by whitespace, or a dash used as punctuation.
_CLAUSE_CUT = re.compile(r"(?<=[,;:])(?=\s)|(?<=\s[-\u2013\u2014])(?=\s)|(?<=\u2014)(?=\S)")


# Control characters (Unicode category Cc) other than the whitespace ones, and
# unpaired surrogates (category Cs, e.g. from bytes decoded with surrogateescape).
_REFUSED_CHAR = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def validate_text(text: str) -> None:
    """Raise :class:`InvalidTextError` when ``text`` cannot be planned as given.

    Empty or whitespace-only text, control characters (other than tab, newline,
    carriage return, vertical tab and form feed) and unpaired surrogates are
    refused, with the offset and line of the first offender. seqopt never drops
    characters on its own: the caller decides what to do with them.
    """
    if not isinstance(text, str):
        raise InvalidTextError(f"text must be str, got {type(text).__name__}")
    if not text.strip():
        raise InvalidTextError(
            "the text is empty or only whitespace: give at least one word to speak"
        )
    offset = first_invalid_char(text)
    if offset is not None:
        ch = text[offset]
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        kind = "control character" if unicodedata.category(ch) == "Cc" else "unpaired surrogate"
        raise InvalidTextError(
            f"the text contains a {kind} U+{ord(ch):04X} at offset {offset} "
            f"(line {line}, column {column}); remove or replace it and try again "
            "(seqopt never drops characters silently)"
        )


def first_invalid_char(text: str) -> int | None:
    """Offset of the first character :func:`validate_text` would refuse, else ``None``."""
    m = _REFUSED_CHAR.search(text)
    return m.start() if m else None


def trim(text: str, span: Span) -> Span | None:
    """``span`` without leading and trailing whitespace; ``None`` if nothing is left."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if start < end else None


def paragraph_spans(text: str, within: Span | None = None) -> list[Span]:
    """Paragraphs of ``text`` (separated by blank lines), trimmed, in order."""
    within = within or Span(0, len(text))
    spans: list[Span] = []
    pos = within.start
    for m in _PARAGRAPH_BREAK.finditer(text, within.start, within.end):
        piece = trim(text, Span(pos, m.start()))
        if piece:
            spans.append(piece)
        pos = m.end()
    piece = trim(text, Span(pos, within.end))
    if piece:
        spans.append(piece)
    return spans


def _protected(text: str, span: Span) -> list[Span]:
    return [Span(m.start(), m.end()) for m in TAG_RE.finditer(text, span.start, span.end)]


def _inside(pos: int, regions: Sequence[Span]) -> bool:
    return any(r.start < pos < r.end for r in regions)


def cut_at(text: str, span: Span, cuts: Sequence[int]) -> list[Span]:
    """Cut ``span`` at the offsets ``cuts`` (ascending), trimming each piece."""
    pieces: list[Span] = []
    pos = span.start
    for cut in cuts:
        piece = trim(text, Span(pos, cut))
        if piece:
            pieces.append(piece)
        pos = cut
    piece = trim(text, Span(pos, span.end))
    if piece:
        pieces.append(piece)
    return pieces


def clause_spans(text: str, span: Span) -> list[Span]:
    """``span`` cut after clause punctuation (, ; : and dashes) that is followed by
    whitespace, never inside a number, URL, e-mail address or bracketed tag."""
    regions = _protected(text, span)
    cuts = [m.start() for m in _CLAUSE_CUT.finditer(text, span.start, span.end)
            if span.start < m.start() < span.end and not _inside(m.start(), regions)]
    return cut_at(text, span, cuts)


def word_spans(text: str, span: Span) -> list[Span]:
    """``span`` cut at whitespace into words; a bracketed tag stays one piece."""
    regions = _protected(text, span)
    words: list[Span] = []
    for m in _NON_SPACE_RUN.finditer(text, span.start, span.end):
        if words and _inside(m.start() - 1, regions) and words[-1].end <= m.start():
            # this run continues a tag like "[clear throat]": join it to the previous word
            words[-1] = Span(words[-1].start, m.end())
        else:
            words.append(Span(m.start(), m.end()))
    return words


def check_sentence_spans(text: str, spans: Sequence[Span], who: str) -> None:
    """Raise ``ValueError`` unless ``spans`` honour the splitter contract for ``text``:
    in order, not overlapping, trimmed, and only whitespace outside them."""
    pos = 0
    for s in spans:
        if not isinstance(s, Span):
            raise ValueError(f"splitter {who!r} returned {type(s).__name__}, expected Span")
        if s.start < pos or s.end > len(text) or s.start >= s.end:
            raise ValueError(
                f"splitter {who!r} returned span [{s.start}, {s.end}) out of order or out "
                f"of bounds (previous end {pos}, text length {len(text)})"
            )
        if text[s.start].isspace() or text[s.end - 1].isspace():
            raise ValueError(f"splitter {who!r} returned an untrimmed span [{s.start}, {s.end})")
        if text[pos : s.start].strip():
            raise ValueError(
                f"splitter {who!r} skipped text at [{pos}, {s.start}): {text[pos:s.start]!r}"
            )
        pos = s.end
    if text[pos:].strip():
        raise ValueError(f"splitter {who!r} skipped text at the end: {text[pos:]!r}")


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as text; invalid UTF-8 is a :class:`TextDecodeError` naming the place."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TextDecodeError(
            f"{name} is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}). Convert it to UTF-8 first, e.g. "
            f"iconv -f latin1 -t utf-8 {name} > converted.txt"
        ) from None
