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
# Clause punctuation followed by whitespace (, ; : and the Arabic comma and semicolon
# ، ؛, the Greek ano teleia · in both its code points), a dash used as punctuation,
# or a full-width CJK clause mark (， 、 ； ： ､), which needs no space after it.
_CLAUSE_CUT = re.compile(
    "(?<=[,;:\u060c\u061b\u00b7\u0387])(?=\\s)|(?<=\\s[-\u2013\u2014])(?=\\s)|(?<=\u2014)(?=\\S)"
    "|(?<=[\uff0c\u3001\uff1b\uff1a\uff64])"
)


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
    """``span`` cut at whitespace into words; a bracketed tag stays one piece.

    Text written without spaces between words (Chinese, Japanese, Thai, ...) is
    also cut between its characters (see :func:`unspaced_cuts`), so that a long
    run of it can still be packed; a word in a spaced script (``iPhone``, a number,
    a URL) inside such a run stays whole.
    """
    regions = _protected(text, span)
    words: list[Span] = []
    for m in _NON_SPACE_RUN.finditer(text, span.start, span.end):
        if words and _inside(m.start() - 1, regions) and words[-1].end <= m.start():
            # this run continues a tag like "[clear throat]": join it to the previous word
            words[-1] = Span(words[-1].start, m.end())
        else:
            words.append(Span(m.start(), m.end()))
    out: list[Span] = []
    for word in words:
        cuts = [c for c in unspaced_cuts(text, word) if not _inside(c, regions)]
        out.extend(cut_at(text, word, cuts) if cuts else [word])
    return out


#: Scripts written without spaces between words: Han (with its radicals, symbols,
#: compatibility and extension blocks), Hiragana, Katakana (full and half width),
#: Bopomofo, Thai, Lao, Khmer, Myanmar and Tibetan. Hangul is not here: Korean puts
#: spaces between words.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fdf"
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c\u3040-\u30ff\u3100-\u312f"
    "\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9d"
    "\U00020000-\U0003134f]"
)
#: CJK punctuation and symbols (ideographic and full-width forms, not full-width
#: letters or digits): a cut may follow them unless a digit comes next (``３．１４``).
_CJK_PUNCTUATION = re.compile("[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")
#: Characters that join the character after them to their own cluster: the zero-width
#: joiner and the Khmer coeng and Myanmar virama that stack the next consonant.
_JOINS_NEXT = frozenset("\u200d\u17d2\u1039")
#: Characters that belong to the character before them (never cut before them):
#: combining marks are found by category; these are the others (zero-width joiner,
#: half-width kana voicing marks, emoji skin-tone modifiers, tag characters).
_JOINS_PREVIOUS = re.compile("[\u200d\uff9e\uff9f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")


def unspaced_cuts(text: str, word: Span) -> list[int]:
    """Offsets inside ``word`` (a run without whitespace) where it may be cut because
    a character of a script written without spaces stands on either side.

    A cut may also follow CJK punctuation (``，「`` is cut between the two) unless a
    digit comes next. Never inside a grapheme cluster (before a combining mark,
    variation selector, joiner or modifier, or after a zero-width joiner or a
    Khmer or Myanmar stacking virama), never before closing or other non-opening
    punctuation (``。`` ``、`` ``」`` stay with the character they
    follow) and never after opening punctuation (``「`` stays with what it opens).
    """
    if _UNSPACED.search(text, word.start, word.end) is None:
        return []
    cuts: list[int] = []
    for i in range(word.start + 1, word.end):
        before, after = text[i - 1], text[i]
        if not (_UNSPACED.match(before) or _UNSPACED.match(after)
                or (_CJK_PUNCTUATION.match(before) and not after.isdigit())):
            continue
        if before in _JOINS_NEXT or _JOINS_PREVIOUS.match(after):
            continue
        cat_after, cat_before = unicodedata.category(after), unicodedata.category(before)
        if cat_after[0] == "M" or (cat_after[0] == "P" and cat_after not in ("Ps", "Pi", "Pd")):
            continue
        if cat_before in ("Ps", "Pi"):
            continue
        cuts.append(i)
    return cuts


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
