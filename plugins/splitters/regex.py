"""``regex``: a dependency-free English sentence splitter (standard library ``re`` only).

The splitter never changes the text: it picks *cut positions* and returns the
trimmed, non-empty pieces between them, so every non-whitespace character lies
in exactly one span whatever the input.

Rules, in the order they are applied
------------------------------------

Hard cuts (always a boundary):

* a blank line (a paragraph break);
* a newline followed by a list marker (``1.``, ``2)``, ``a.``, ``IV.``, ``-``,
  ``*``, ``+``, ``•``) or a Markdown heading (``# Title``); a heading line also
  ends where its line ends;
* every newline when ``split_on_newlines`` is set. Otherwise a single newline
  is ordinary whitespace: a line without terminal punctuation runs on into the
  next line (hard-wrapped prose stays one sentence);
* after a CJK sentence end (``。！？｡``) and any closing quotes or brackets after
  it, whether or not whitespace follows.

Terminal punctuation (``. ! ? …`` and friends) ends a sentence only where the
word carrying it is followed by whitespace; closing quotes and brackets right
after it (``." ?” .) .] !»``) stay with the sentence. So nothing ever splits
inside a word: decimals (``3.14``), versions (``v2.0.1``), times (``10:45``),
URLs (``https://example.com/a.b?c=d``) and e-mail addresses are safe. Whether
the gap after such a word is a boundary depends on the next word:

* A next word that starts lowercase (after any opening quotes or brackets)
  never starts a sentence: ``"Stop!" he said``, ``Wait... what?``, ``etc. and``,
  ``10 a.m. on Monday``. A next word that starts with punctuation that cannot
  open a sentence (``, ; : . ! ? )``) continues it: ``He paused . . . Then``.
* Otherwise ``!``, ``?`` (also ``?!``, ``!!!``) and ellipses (``...``, ``…``)
  always end the sentence.
* A single ``.`` depends on the word it ends:

  - titles and Latin abbreviations (``Mr.``, ``Dr.``, ``Prof.``, ``e.g.``,
    ``i.e.``, ``vs.``, ..., plus ``extra_abbreviations``) never end a sentence;
  - number prefixes (``No. 5``, ``Fig. 3``, ``p. 12``, months such as
    ``Jan. 5``) do not end one when a digit follows;
  - initials (``J. R. R. Tolkien``, ``George W. Bush``), dotted acronyms
    (``U.S.``, ``D.C.``) and ``St.`` end a sentence only when the next word is
    a common sentence opener (``The``, ``He``, ``We``, ``In``, ...):
    ``the U.S. Senate`` stays whole, ``the U.S. He`` splits;
  - a list marker (``1.``, ``a.``, ``IV.``) at the start of a line never ends a
    sentence; inside a line, ``N.`` right after a list that reached ``N-1``
    starts a new item: ``1. First item 2. Second item`` is two sentences, cut
    before ``2.``;
  - any other word (``etc.``, ``Inc.``, ``a.m.``, ``3.14.``) ends the sentence
    when the next word does not start lowercase. So ``at 10:45 a.m. We left``
    splits after ``a.m.``: in running text a capital after ``a.m.``/``p.m.`` is
    far more often a new sentence than a proper noun.

* Event tags (``[laughter]``, ``[clear_throat]``) and emoji right after a
  sentence end stay with that sentence (``Great! [laughter] So...`` cuts
  after the tag); tags are never cut inside and, holding no terminal
  punctuation, never end a sentence themselves.

Everything is found with linear-time regular expressions (no nested
quantifiers over the same characters) plus constant work per candidate.
"""

from __future__ import annotations

import bisect
import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
from seqopt_core.text import TAG_RE

# --- character classes ----------------------------------------------------------

_STRONG = "!?\u203c\u2047\u2048\u2049\u061f\u0964\u0965"  # ! ? ‼ ⁇ ⁈ ⁉ ؟ । ॥
_TERMINALS = "." + "\u2026" + _STRONG  # . … and the strong ones
_CLOSERS = "\"'\u201d\u2019\u00bb\u203a)\\]}\uff09\u300d\u300f*_"  # " ' ” ’ » › ) ] } ） 」 』 * _
_OPENERS = "\"'\u201c\u2018\u201e\u201a\u00ab\u2039(\\[{\uff08\u300c\u300e\u00bf\u00a1*_\\-\u2013\u2014"
#: First characters of a word that continue a sentence rather than open one.
_NON_START = frozenset(",;:.!?\u2026)]}\u201d\u00bb%")

# A terminal mark and the closers after it, then whitespace or the end of the text.
# The lookahead captures (without consuming) the next word's opening punctuation
# (group 1) and the character after it (group 2).
_CANDIDATE_RE = re.compile(
    f"[{re.escape(_TERMINALS)}][{_CLOSERS}]*(?=\\s+([{_OPENERS}]*)(\\S)|\\s*\\Z)"
)
_CJK_END_RE = re.compile("[\u3002\uff01\uff1f\uff61]+[\u300d\u300f\u201d\u2019\uff09)\\]\"']*")
_BLANK_LINE_RE = re.compile(r"\n(?:[^\S\n]*\n)+")
_NEWLINE_RE = re.compile(r"\n")
_MARKER_LINE_RE = re.compile(
    r"\n(?=[^\S\n]*(?:(?:\d{1,3}|[A-Za-z]|[IVX]{1,4})[.)]|[-*+\u2022]|#{1,6})[^\S\n])"
)
_HEADING_RE = re.compile(r"^[^\S\n]*#{1,6}[^\S\n][^\n]*", re.MULTILINE)
_NON_SPACE_RUN = re.compile(r"\S*")
_SPACE_RUN = re.compile(r"\s*")
_HSPACE_RUN = re.compile(r"[^\S\n]*")
_NEXT_TOKEN_RE = re.compile(r"\s*(\S+)")
_FIRST_NON_SPACE = re.compile(r"\S")
_LEADING_OPENERS = re.compile(f"[{_OPENERS}]*")
_LETTERS = re.compile(r"[^\W\d_]+")
_DOTTED_ACRONYM = re.compile(r"(?:[A-Z]\.)+[A-Z]")
_LIST_MARKER = re.compile(r"(\d{1,3})|[A-Za-z]|[IVX]{1,4}")
_TERMINAL_CHARS = frozenset(_TERMINALS)
_STRONG_CHARS = frozenset(_STRONG)

# --- word lists (lowercase, no final dot) ---------------------------------------

#: Never end a sentence: titles before a name and Latin abbreviations mid-sentence.
_NEVER_END = frozenset(
    """mr mrs ms mx messrs mmes mme mlle dr prof rev hon rt gen col capt cpt lt sgt cpl
    maj adm cmdr gov sen rep pres supt fr msgr mt e.g i.e cf viz vs""".split()
)
#: Do not end a sentence when a digit follows (``No. 5``, ``Jan. 5``, ``p. 12``).
_NUMBER_PREFIXES = frozenset(
    """no nos nr fig figs vol vols p pp ch chap sec secs art arts eq eqs ref refs pg para
    par op tab ex exh approx ca est tel ext apt ste bldg rm jan feb mar apr jun jul aug
    sep sept oct nov dec""".split()
)
#: End a sentence only before a common sentence opener.
_OPENER_ONLY = frozenset({"st"})
#: Words that very often open a sentence (compared capitalised).
_SENTENCE_OPENERS = frozenset(
    """The A An He She It We They I You This That These Those There Here Then But And So
    Or Yet If When While After Before Since Although Though As At In On Of For From To
    With Without By Its His Her Their Our My Your What Why How Who Where Which Yes No
    Not Some Many Most All One Each Every Now Today Yesterday Tomorrow Meanwhile Later
    However Also Still Once Finally First Next Please Let Thanks""".split()
)


class RegexSplitterOptions(BaseModel):
    """Options of the ``regex`` splitter."""

    model_config = ConfigDict(extra="forbid")

    extra_abbreviations: list[str] = Field(
        default_factory=list,
        description="more abbreviations that never end a sentence, with or without the "
        "final dot, matched case-insensitively (e.g. ['approx', 'Dept.'])",
    )
    split_on_newlines: bool = Field(
        default=False,
        description="end a sentence at every newline, not only at blank lines",
    )


def _normalize_abbreviation(word: str) -> str:
    """``"Dept."`` -> ``"dept"``: the form the word lists use."""
    return word.strip().rstrip(".").lower()


def _is_transparent(text: str, start: int, end: int) -> bool:
    """True when ``text[start:end]`` is an emoji/symbol-only word (no letter, digit
    or terminal mark, at least one symbol character)."""
    has_symbol = False
    for ch in text[start:end]:
        if ch.isalnum() or ch in _TERMINAL_CHARS:
            return False
        if unicodedata.category(ch).startswith("S"):
            has_symbol = True
    return has_symbol


class RegexSentenceSplitter:
    """Rule-based English sentence splitter; see the module docstring for the rules."""

    def __init__(self, options: RegexSplitterOptions | None = None) -> None:
        self.options = options or RegexSplitterOptions()
        extra = {_normalize_abbreviation(a) for a in self.options.extra_abbreviations}
        self._never_end = _NEVER_END | {a for a in extra if a}

    # -- public ------------------------------------------------------------------

    def split(self, text: str) -> list[Span]:
        """Sentence spans of ``text``: in order, disjoint, trimmed, covering all of it."""
        if not text or _FIRST_NON_SPACE.search(text) is None:
            return []
        return _pieces(text, sorted(set(self._cuts(text))))

    # -- cut positions -------------------------------------------------------------

    def _cuts(self, text: str) -> list[int]:
        """Every position where a sentence ends, unsorted, never inside a tag."""
        tags = [(m.start(), m.end()) for m in TAG_RE.finditer(text)]
        paragraphs = [m.start() for m in _BLANK_LINE_RE.finditer(text)]
        cuts = list(paragraphs)
        cuts += [m.start() for m in _MARKER_LINE_RE.finditer(text)]
        for m in _HEADING_RE.finditer(text):
            cuts += (m.start(), m.end())
        if self.options.split_on_newlines:
            cuts += [m.start() for m in _NEWLINE_RE.finditer(text)]
        cuts += [m.end() for m in _CJK_END_RE.finditer(text)]
        cuts += self._terminal_cuts(text, tags, paragraphs)
        return _outside_tags(cuts, tags)

    def _terminal_cuts(
        self, text: str, tags: list[tuple[int, int]], paragraphs: list[int]
    ) -> list[int]:
        """Cuts decided by terminal punctuation followed by whitespace."""
        n = len(text)
        rev = text[::-1]
        # event tags hold no terminal mark; only they are skipped like emoji
        event_tags = {s: e for s, e in tags if not any(c in _TERMINAL_CHARS for c in text[s:e])}
        cuts: list[int] = []
        last_marker: int | None = None
        next_paragraph = 0
        for m in _CANDIDATE_RE.finditer(text):
            first = m.group(2)
            if first is None:
                continue  # end of text: nothing to cut
            terminal, nxt = m.start(), m.start(1)
            before = text[terminal - 1] if terminal else ""
            lead = text[nxt]
            may_skip = lead == "[" or (lead > "\x7f" and not lead.isalpha())
            if (lead in _NON_START or first.islower()) and not may_skip and not before.isdigit():
                continue  # fast path: the next word continues the sentence
            while next_paragraph < len(paragraphs) and paragraphs[next_paragraph] < terminal:
                next_paragraph += 1
                last_marker = None  # numbering restarts in a new paragraph
            cut, p = m.end(), m.end(1)
            if may_skip:  # an event tag or emoji may follow: look past them
                cut, nxt = _skip_transparent(text, cut, event_tags)
                if nxt is None:
                    continue
                lead, p = text[nxt], _LEADING_OPENERS.match(text, nxt).end()
            run_start = terminal
            while run_start > 0 and text[run_start - 1] in _TERMINAL_CHARS:
                run_start -= 1
            if run_start < terminal or text[terminal] != ".":
                # ! ? and ellipses: end unless the next word continues the sentence
                if lead not in _NON_START and not (p < n and text[p].islower()):
                    cuts.append(cut)
                continue
            start = n - _NON_SPACE_RUN.match(rev, n - terminal).end()
            marker = _LIST_MARKER.fullmatch(text, start, terminal)
            if marker is not None and m.end() == terminal + 1:
                number = int(marker.group(1)) if marker.group(1) else None
                if _at_line_start(text, rev, start):
                    if number is not None:
                        last_marker = number
                    continue
                if number is not None and last_marker is not None and number == last_marker + 1:
                    last_marker = number
                    cuts.append(start)
                    continue
            if lead in _NON_START or (p < n and text[p].islower()):
                continue
            body = text[_LEADING_OPENERS.match(text, start, terminal).end() : terminal]
            if self._period_ends(text, body, p):
                cuts.append(cut)
        return cuts

    def _period_ends(self, text: str, body: str, p: int) -> bool:
        """Whether ``body`` + ``.`` ends a sentence when the next word's first
        character (after openers, not lowercase) is ``text[p]``."""
        lower = body.lower()
        if lower in self._never_end:
            return False
        if lower in _NUMBER_PREFIXES and p < len(text) and text[p].isdigit():
            return False
        if lower in _OPENER_ONLY or _is_initial(body) or _DOTTED_ACRONYM.fullmatch(body):
            return _opens_sentence(text, p)
        return True


# --- small pure helpers ------------------------------------------------------------


def _skip_transparent(text: str, pos: int, event_tags: dict[int, int]) -> tuple[int, int | None]:
    """Skip event tags and emoji after ``pos``: returns (cut position, start of the
    next real word or ``None`` at the end of the text)."""
    cut = pos
    while True:
        m = _NEXT_TOKEN_RE.match(text, cut)
        if m is None:
            return cut, None
        start = m.start(1)
        tag_end = event_tags.get(start)
        if tag_end is not None:
            cut = tag_end
        elif _is_transparent(text, start, m.end(1)):
            cut = m.end(1)
        else:
            return cut, start


def _at_line_start(text: str, rev: str, pos: int) -> bool:
    """True when only spaces or tabs lie between the previous newline (or the
    start of the text) and ``pos``."""
    n = len(text)
    r = _HSPACE_RUN.match(rev, n - pos).end()
    return r >= n or rev[r] == "\n"


def _is_initial(body: str) -> bool:
    """A single letter, as in ``W.`` or ``v.``."""
    return len(body) == 1 and body.isalpha()


def _opens_sentence(text: str, p: int) -> bool:
    """True when the word at ``p`` is a common sentence opener (not an initial)."""
    m = _LETTERS.match(text, p)
    if m is None:
        return False
    word = m.group()
    if len(word) == 1 and m.end() < len(text) and text[m.end()] == ".":
        return False  # another initial: "J. R. R. Tolkien", "J. I. Packer"
    return word.capitalize() in _SENTENCE_OPENERS


def _outside_tags(cuts: list[int], tags: list[tuple[int, int]]) -> list[int]:
    """``cuts`` without those strictly inside a bracketed tag."""
    if not tags:
        return cuts
    starts = [s for s, _ in tags]
    kept = []
    for c in cuts:
        i = bisect.bisect_left(starts, c) - 1
        if i < 0 or not (tags[i][0] < c < tags[i][1]):
            kept.append(c)
    return kept


def _pieces(text: str, cuts: list[int]) -> list[Span]:
    """The trimmed, non-empty pieces of ``text`` between consecutive ``cuts``."""
    n = len(text)
    rev = text[::-1]
    spans: list[Span] = []
    pos = 0
    for cut in [*cuts, n]:
        if cut <= pos:
            continue
        m = _FIRST_NON_SPACE.search(text, pos, cut)
        if m is not None:
            end = n - _SPACE_RUN.match(rev, n - cut).end()
            spans.append(Span(m.start(), end))
        pos = cut
    return spans


@hookimpl
def seqopt_sentence_splitters() -> list[SentenceSplitterSpec]:
    """Register the ``regex`` splitter."""
    return [
        SentenceSplitterSpec(
            name="regex",
            factory=RegexSentenceSplitter,
            options=RegexSplitterOptions,
            description="dependency-free rule-based English splitter (abbreviations, "
            "initials, decimals, URLs, quotes, lists, event tags)",
        )
    ]
