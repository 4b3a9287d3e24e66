"""``regex``: a dependency-free sentence splitter (standard library ``re`` only), with
English rules for abbreviations and numbers and the sentence marks of the 23
languages Chatterbox Multilingual speaks (see *Languages* below).

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
  next line (hard-wrapped prose stays one sentence, so a list of lowercase
  lines without markers or punctuation is one sentence too);
* after a CJK sentence end (``。！？｡``, and the full-width ``．`` unless it stands
  between two digits as in ``３．１４``) or a danda (``।``, ``॥``) and any closing
  quotes or brackets after it, whether or not whitespace follows, except where a
  closed quote is continued (see *Quoted CJK sentences* below); also after an
  ASCII ``!`` or ``?`` between two Han or kana characters;
* before ``N)`` or ``b)`` (a number or lowercase letter closed by ``)``, as a
  word of its own) when the previous such marker of the same paragraph was
  ``N-1)`` or ``a)`` and the list was opened at a line start: ``1) Red 2) Blue``
  is two items, ``Options: 1) red 2) blue`` stays one sentence.

Terminal punctuation (``. ! ? …`` and friends) ends a sentence only where the
word carrying it is followed by whitespace; closing quotes and brackets right
after it (``." ?” .) .] !»``) stay with the sentence. So nothing ever splits
inside a word: decimals (``3.14``), versions (``v2.0.1``), times (``10:45``),
URLs (``https://example.com/a.b?c=d``) and e-mail addresses are safe, and
sentences written without a space between them (``world.Today``) are not
split either. Whether the gap after such a word is a boundary depends on the
next word:

* A next word that starts lowercase (after any opening quotes or brackets)
  never starts a sentence: ``"Stop!" he said``, ``Wait... what?``, ``etc. and``,
  ``10 a.m. on Monday``. A next word that starts with punctuation that cannot
  open a sentence (``, ; : . ! ? )``) continues it: ``He paused . . . Then``.
* Otherwise ``!``, ``?`` (also ``?!``, ``!!!``) always end the sentence.
* Ellipses (``...``, ``…``, ``....``, spaced ``. . .``) end it too, except

  - in brackets (``[...]``, ``(…)``): an omission inside a sentence;
  - before the pronoun ``I`` (``the thing is . . . I didn't mean it``): ``I``
    is always capitalised, so its capital says nothing about a new sentence,
    and a missed pause costs less than a false one;
  - a period stuck to a word and followed by a spaced ellipsis, four dots in
    all (``compounds. . . . The practice``): the period ends the sentence and
    the ellipsis opens the next one (the cut is after ``compounds.``).

* A single ``.`` depends on the word it ends:

  - titles and Latin abbreviations (``Mr.``, ``Dr.``, ``Prof.``, ``e.g.``,
    ``i.e.``, ``vs.``, ..., plus ``extra_abbreviations``) never end a sentence,
    also when glued to the word before (``Tuesday.Mr. Smith``);
  - number prefixes (``No. 5``, ``N°. 5``, ``Fig. 3``, ``p. 12``, months such as
    ``Jan. 5``) do not end one when a digit follows;
  - ``a.m.``/``p.m.`` (any case, also ``5a.m.``) end the sentence when the next
    word does not start lowercase (``at 10:45 a.m. We left`` splits: in running
    text a capital after them is far more often a new sentence than a proper
    noun), except after an opening time phrase: a sentence that so far is only
    a capitalised preposition and the time (``At 5 a.m. Mr. Smith went``,
    ``By 9 p.m. Everyone``) has not ended;
  - the pronoun ``I`` after a lowercase word (``you and I. Did you``) ends the
    sentence like any other word;
  - initials (``J. R. R. Tolkien``, ``George W. Bush``, ``Albert I. Jones``),
    dotted acronyms (``U.S.``, ``D.C.``) and ``St.`` end a sentence only when the
    next word is a common sentence opener (``The``, ``He``, ``We``, ``In``,
    ``How``, ``Did``, ``Is``, ...): ``the U.S. Senate`` stays whole, ``the U.S.
    He`` splits;
  - a list marker (``1.``, ``1.)``, ``a.``, ``IV.``, also after a bullet:
    ``• 9.``, ``⁃9.``) at the start of a line never ends a sentence; inside a
    line, ``N.`` right after a list that reached ``N-1`` (and ``b.`` after a
    lettered list that reached ``a``, lowercase only, so initials such as
    ``A. Lincoln and B. Obama`` are never list items) starts a new item, cut
    before the marker or its bullet: ``1. First item 2. Second item`` is two
    sentences, cut before ``2.``;
  - any other word (``etc.``, ``Inc.``, ``co.``, ``3.14.``) ends the sentence
    when the next word does not start lowercase.

* Event tags (``[laughter]``, ``[clear_throat]``) and emoji right after a
  sentence end stay with that sentence (``Great! [laughter] So...`` cuts
  after the tag); tags are never cut inside and, holding no terminal
  punctuation, never end a sentence themselves.

Languages
---------

* Terminal marks besides ``. ! ? …``: the Arabic question mark ``؟``, the Urdu
  full stop ``۔``, the danda ``।`` and double danda ``॥`` (also with a space
  before them, as Hindi often writes them), the Greek question mark ``;``
  (U+037E). NFC turns U+037E into the ASCII ``;``, so an ASCII ``;`` followed by
  whitespace and a word that does not start lowercase ends a sentence where the
  48 characters before it hold more Greek than Latin letters; elsewhere it is a
  semicolon.
* Scripts without letter case (Arabic, Hebrew, Devanagari, Hangul, CJK) never
  start a word "lowercase", so a ``.`` ends a sentence before them unless the
  word it ends is an abbreviation above.
* Quotes: the closers kept with a sentence include the German ``“`` (``„Ja.“``),
  the Danish ``«`` (``»Ja?«``), the Swedish and Finnish ``”`` and CJK brackets
  ``》〉】〕``; ``»`` ``›`` ``”`` glued to the next word open it (``»Kom!«``,
  ``”Kom!”``); a spaced French closer (``Tu viens ? » Oui``) stays with its
  sentence. ``¿`` and ``¡`` open the sentence they start.
* A dash word followed by a lowercase word continues the sentence (dialogue:
  ``«Ты придёшь?» — спросила она``).
* Titles and abbreviations of other languages: ``bzw. vgl. ggf. evtl. inkl.
  sog. dhr. mevr. np. tzw. ul.`` never end a sentence; ``Sra. Srta. Dra. Dña.
  Sig. Dott. Avv. Ing. Hr. Dhr. Pn. Tn.`` (and the English ``Hon. Sen. Maj.``)
  only when capitalised, since ``sig.``, ``hon.``, ``sen.``, ``maj.`` are common
  Scandinavian words; ``kl.`` before a number is like ``No.``; an ordinal before a
  capitalised German month (``am 3. Oktober``) is not a sentence end.

Quoted CJK sentences
--------------------

A quoted sentence whose end mark stands inside the quote (``“好。”``,
``「はい。」``) ends the sentence around it when whitespace (a line break, a
paragraph), the end of the text or a new opening quote or bracket follows
(``“好。”“不好。”``). When more text follows it without a space, the quote is
part of a longer sentence in these cases, checked in order:

* the next character is a comma (``，`` ``、`` ``,``), a ``；``/``：``, the
  Japanese quoting particle ``と``/``って`` (``「はい。」と言った``) or the particle
  ``の``/``を`` (``「いいえ。」のどちらか``): the sentence goes on;
* the quote was introduced by a colon (``他问：“你来吗？”我说……``): the quoted
  sentence ends the sentence the colon opened, so the text after it is a new one;
* Japanese (kana in the quote or in the words after it): Japanese attaches a
  quoted sentence to the sentence around it only through a particle (above), so
  ``「行こう。」彼は立ち上がった。`` and ``「分かった。」彼は言った。`` are two
  sentences each;
* the quote stands inside a sentence (a letter or digit right before its opening
  quote: ``有人喊“救命！”便跑了过去。``): the sentence goes on;
* otherwise (the quote opens the sentence: Chinese dialogue) the words after it,
  up to the next punctuation, go on with it only when they are a speech tag,
  ending in a verb of saying or thinking (说 道 问 答 喊 叫 想 ..., simplified or
  traditional), maybe followed by ``着`` or a pronoun object: ``“好。”他说。``,
  ``「好。」他說。``, ``“好吗？”我问他。``; narration after a quoted sentence
  (``“走吧。”他站起来。``, ``“好。”他说完就走了。``) starts a new sentence.

Everything is found with linear-time regular expressions (no nested
quantifiers over the same characters) plus, per candidate, work bounded by a
fixed look-back (48 characters; 256 for the opening quote of a quoted CJK
sentence) or by the candidate's own word and ellipsis, which no other candidate
re-reads: the whole is linear in the text.

Accuracy (``benchmarks/bench_splitters.py``, ``docs/splitters.md``): every
case of the project's hard cases (``tests/splitter_cases.py``, written with
these rules, so in sample) and of pySBD's 48 English Golden Rules; of
pragmatic_segmenter's 52 it misses the lowercase list separated by single
newlines and the sentences without a space between them (see above). Several
rules above were added for those public sets, so they are in sample too.
"""

from __future__ import annotations

import bisect
import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
from seqopt_core.text import TAG_RE

# --- character classes ----------------------------------------------------------

#: ! ? ‼ ⁇ ⁈ ⁉, the Arabic question mark ؟, the Urdu full stop ۔, the Devanagari
#: danda । and double danda ॥, and the Greek question mark ; (U+037E, which NFC turns
#: into the ASCII ";": that one is handled by :func:`_greek_question_cuts`).
_STRONG = "!?\u203c\u2047\u2048\u2049\u061f\u06d4\u0964\u0965\u037e"
_TERMINALS = "." + "\u2026" + _STRONG  # . … and the strong ones
#: Closing quotes and brackets that stay with the sentence before them when they
#: follow its end mark: " ' ” ’ » › ) ] } ） 」 』 * _, and the quotes that close in
#: some languages only: “ ‘ (German „…“), « ‹ (Danish »…«), 》 〉 】 〕 〗 〙 ＂ ＇ ］ ｝.
_CLOSERS = (
    "\"'\u201d\u2019\u00bb\u203a)\\]}\uff09\u300d\u300f*_"
    "\u201c\u2018\u00ab\u2039\u300b\u3009\u3011\u3015\u3017\u3019\uff02\uff07\uff3d\uff5d"
)
#: Opening quotes and brackets before a word, also » › ” glued to a word (Danish,
#: Swedish and Finnish open quotes with them: »Kom!«, ”Kom!”).
_OPENERS = (
    "\"'\u201c\u2018\u201e\u201a\u00ab\u2039(\\[{\uff08\u300c\u300e\u00bf\u00a1*_\\-\u2013\u2014"
    "\u00bb\u203a\u201d\u300a\u3008\u3010\u3014\u3016\u3018"
)
#: First characters of a word that continue a sentence rather than open one.
_NON_START = frozenset(",;:.!?\u2026)]}%\u060c\u061b\u3001\uff0c")
#: A closing quote standing alone after the end mark, as French spaces it
#: (``Tu viens ? » Oui``): it stays with the sentence.
_SPACED_CLOSER = "(?:[^\\S\\n]+[\u00bb\u203a\u201d](?=\\s|\\Z))?"
#: Dashes that may open a reply in dialogue (``«Ты придёшь?» — спросила она``).
_DASHES = frozenset("-\u2013\u2014")

# A terminal mark and the closers after it, then whitespace or the end of the text.
# The lookahead captures (without consuming) the next word's opening punctuation
# (group 1) and the character after it (group 2).
_CANDIDATE_RE = re.compile(
    f"[{re.escape(_TERMINALS)}][{_CLOSERS}]*{_SPACED_CLOSER}(?=\\s+([{_OPENERS}]*)(\\S)|\\s*\\Z)"
)
#: Han and kana: an ASCII ``!`` or ``?`` between two of them ends a sentence too
#: (``你好吗?我很好。``).
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: Sentence ends that need no space after them, each with the closing quotes and
#: brackets after it in group 1 (taken whole, never backtracked): the CJK marks
#: 。 ！ ？ ｡ ． (a lone ． between two digits, as in ３．１４, is a decimal point);
#: a danda । ॥ glued to the next word (before whitespace it is a terminal like
#: ``!``, so an emoji or tag after it stays with its sentence); an ASCII ``!`` ``?``
#: followed by Han or kana (and, checked apart, preceded by one). Each pattern
#: starts with a character class, which ``re`` scans for quickly.
#: (Python 3.10 has no possessive quantifiers: "take them all" is a greedy run that no
#: further one of them follows.)
_UNSPACED_CLOSER = "[\u300d\u300f\u300b\u3009\u3011\u3015\u201d\u2019\u00bb\uff09\uff02)\\]\"']"
_UNSPACED_CLOSERS = f"{_UNSPACED_CLOSER}*(?!{_UNSPACED_CLOSER})"
_CJK_END_RE = re.compile(f"[\u3002\uff01\uff1f\uff61\uff0e]+(?![\u3002\uff01\uff1f\uff61\uff0e])({_UNSPACED_CLOSERS})")
_DANDA_END_RE = re.compile(f"[\u0964\u0965]+(?![\u0964\u0965])({_UNSPACED_CLOSERS})(?=\\S)")
_ASCII_IN_CJK_END_RE = re.compile(f"[!?]+(?![!?])({_UNSPACED_CLOSERS})(?=[{_CJK_CHARS}])")
_CJK_CHAR_RE = re.compile(f"[{_CJK_CHARS}]")
#: Any character those patterns need: text without one (most text in spaced
#: scripts) is scanned once, not three times.
_UNSPACED_HINT_RE = re.compile(f"[\u3002\uff01\uff1f\uff61\uff0e\u0964\u0965{_CJK_CHARS}]")
_DIGITS = frozenset("0123456789\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")
#: After a quoted sentence closed by 」 ” ..., these continue the sentence around the
#: quote: the Japanese quoting particles と and って (``「はい。」と言った``), the
#: particles の and を, which make the quote a noun (``「いいえ。」のどちらか``) and almost
#: never open a sentence, commas and the full-width semicolon and colon.
_AFTER_QUOTE_CONTINUES = frozenset("\u3068\u3063\u306e\u3092\u3001\uff0c,\uff1b\uff1a")
#: The opening quote or bracket of each closer a quoted CJK sentence may end with.
_OPENER_OF = {
    "\u201d": "\u201c", "\u2019": "\u2018", "\u300d": "\u300c", "\u300f": "\u300e",
    "\u300b": "\u300a", "\u3009": "\u3008", "\u3011": "\u3010", "\u3015": "\u3014",
    "\u00bb": "\u00ab", "\uff09": "\uff08", "\uff02": "\uff02", ")": "(", "]": "[",
    "\"": "\"", "'": "'",
}
#: Opening quotes and brackets: glued after a closed quote they open a new sentence
#: (``“好。”“不好。”``); also the vertical-text corner brackets ﹁ ﹃.
_QUOTE_OPENERS = frozenset(_OPENER_OF.values()) | frozenset("\ufe41\ufe43\u3016\u3018")
#: Colons that introduce a quote: a quoted sentence after one ends the sentence.
_INTRODUCING_COLONS = frozenset("\uff1a:\ufe55")
#: How far back the opening quote of a quoted sentence is looked for.
_QUOTE_LOOK_BACK = 256
#: How far the words after a closed quote are read for a speech tag.
_TAG_LOOK_AHEAD = 48
#: The words glued after a closed quote, up to the next whitespace or punctuation
#: (ASCII, general, CJK and full-width): where a speech tag such as 他说 would be.
_GLUED_WORDS_RE = re.compile(
    f"[^\\s!-/:-@\\[-`{{-~\u00a1-\u00bf\u2010-\u205e\u3000-\u303f\ufe10-\ufe6f"
    f"\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]{{1,{_TAG_LOOK_AHEAD}}}"
)
#: A speech tag: words ending in a verb of saying or thinking (simplified and
#: traditional: 说 說 道 讲 講 问 問 答 曰 喊 叫 嚷 吼 骂 罵 叹 嘆 称 稱 诉 訴 嘱 囑 咐 咕 囔 想),
#: maybe followed by 着/著 or a pronoun object (``他说``, ``她问道``, ``我问他``,
#: ``他笑着说``). After a quote that opens the sentence it continues it
#: (``“好。”他说。``); words that only hold such a character elsewhere (``他说完就走了``,
#: ``问题解决了``) are narration.
_SPEECH_TAG_RE = re.compile(
    "[\u8bf4\u8aaa\u9053\u8bb2\u8b1b\u95ee\u554f\u7b54\u66f0\u558a\u53eb\u56b7"
    "\u543c\u9a82\u7f75\u53f9\u5606\u79f0\u7a31\u8bc9\u8a34\u5631\u56d1\u5490"
    "\u5495\u56d4\u60f3]"
    "(?:[\u7740\u8457]|[\u4ed6\u5979\u6211\u4f60\u60a8\u5b83][\u4eec\u5011]?)?\\Z"
)
#: Hiragana and katakana: their presence marks a quote or its context as Japanese.
_KANA_RE = re.compile("[\u3040-\u309f\u30a0-\u30ff\uff66-\uff9d]")
#: A Greek question mark written as the ASCII ``;`` (what NFC makes of U+037E), the
#: closers after it, whitespace; group 1 is the next word's first character.
_SEMICOLON_RE = re.compile(f";[{_CLOSERS}]*(?![{_CLOSERS}])(?=\\s+[{_OPENERS}]*(\\S))")
_GREEK_LETTER = re.compile("[\u0370-\u03ff\u1f00-\u1fff]")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")
#: German writes months capitalised, so an ordinal before one (``am 3. Oktober``)
#: looks like a sentence end followed by a capital: it is not one.
_CAPITALISED_MONTHS = frozenset(
    """Januar J\u00e4nner Februar M\u00e4rz April Mai Juni Juli August September Oktober
    November Dezember""".split()
)
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
#: Bullets that may stand before a numbered item, attached or spaced (``• 9.``, ``⁃9.``).
_BULLETS = "\u2022\u2023\u2043\u25e6\u25aa\u25cf"  # • ‣ ⁃ ◦ ▪ ●
#: A list marker's word before its ``.``: group 1 a number, group 2 a lowercase letter.
_LIST_MARKER = re.compile(f"[{_BULLETS}]?(?:(\\d{{1,3}})|([a-z])|[A-Z]|[IVX]{{1,4}})")
#: A ``)`` followed by a word on the same line: where a list marker such as ``1)``
#: or ``b)`` may end (the word before it is checked by :func:`_paren_marker`).
_PAREN_END_RE = re.compile(r"\)(?=[^\S\n]+\S)")
_PAREN_MARKER = re.compile(r"(\d{1,3})|([a-z])")
#: ``a.m.``/``p.m.`` (any case), possibly glued to the time (``5a.m.``); no final dot.
_AM_PM = re.compile(r"(\d{1,2}(?:[:.]\d{2})?)?[AaPp]\.[Mm]")
#: The words before ``a.m.`` when they are only an opening time phrase (``At 5 a.m.``):
#: a sentence start, a capitalised preposition and the time.
_INTRO_TIME = (
    r"(?:\A|[.!?\u2026][\"'\u201d\u2019)\]]*\s+|\n\s*)"
    r"(?:At|By|Until|Till|Before|After|From|Around|About|Since|Circa)\s+"
)
_INTRO_TIME_SPACED = re.compile(_INTRO_TIME + r"\d{1,2}(?:[:.]\d{2})?\s+\Z")
_INTRO_TIME_GLUED = re.compile(_INTRO_TIME + r"\Z")
#: How far back the time-phrase and previous-word checks look (constant work).
_LOOK_BACK = 48
_TERMINAL_CHARS = frozenset(_TERMINALS)
_STRONG_CHARS = frozenset(_STRONG)

# --- word lists (lowercase, no final dot) ---------------------------------------

#: Never end a sentence: titles before a name and Latin abbreviations mid-sentence.
_NEVER_END = frozenset(
    """mr mrs ms mx messrs mmes mme mlle dr prof rev rt gen col capt cpt lt sgt cpl
    adm cmdr gov rep pres supt fr msgr mt e.g i.e cf viz vs
    bzw vgl ggf evtl inkl sog dhr mevr np tzw ul""".split()
)
#: Titles that never end a sentence when written capitalised (``Sig. Rossi``,
#: ``Sra. Gómez``, ``Hr. Jensen``, ``Sen. Smith``); lowercase they may be ordinary
#: words ending a sentence (Danish ``Han satte sig.``, Swedish ``frågade hon.``,
#: ``Vi kom sen.``, ``i maj.``), so they are matched exactly.
_CAPITALISED_TITLES = frozenset(
    "Hon Sen Maj Sra Srta Sres Dra D\u00f1a Sig Dott Avv Ing Hr Dhr Pn Tn".split()
)
#: Do not end a sentence when a digit follows (``No. 5``, ``Jan. 5``, ``p. 12``).
_NUMBER_PREFIXES = frozenset(
    """no nos nr fig figs vol vols p pp ch chap sec secs art arts eq eqs ref refs pg para
    par op tab ex exh approx ca est tel ext apt ste bldg rm jan feb mar apr jun jul aug
    sep sept oct nov dec n\u00b0 n\u00ba kl""".split()
)
#: End a sentence only before a common sentence opener.
_OPENER_ONLY = frozenset({"st"})
#: Words that very often open a sentence (compared capitalised).
_SENTENCE_OPENERS = frozenset(
    """The A An He She It We They I You This That These Those There Here Then But And So
    Or Yet If When While After Before Since Although Though As At In On Of For From To
    With Without By Its His Her Their Our My Your What Why How Who Where Which Yes No
    Not Some Many Most All One Each Every Now Today Yesterday Tomorrow Meanwhile Later
    However Also Still Once Finally First Next Please Let Thanks Did Do Does Is Are Was
    Were Could Would Should Has Have Had""".split()
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
    """Rule-based sentence splitter (English rules, 23 languages' marks); see the module docstring."""

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
        cuts += _unspaced_end_cuts(text)
        cuts += _greek_question_cuts(text)
        rev = text[::-1]
        cuts += _paren_marker_cuts(text, rev, paragraphs)
        cuts += self._terminal_cuts(text, rev, tags, paragraphs)
        return _outside_tags(cuts, tags)

    def _terminal_cuts(
        self, text: str, rev: str, tags: list[tuple[int, int]], paragraphs: list[int]
    ) -> list[int]:
        """Cuts decided by terminal punctuation followed by whitespace (``rev`` is
        ``text`` reversed)."""
        n = len(text)
        # event tags hold no terminal mark; only they are skipped like emoji
        event_tags = {s: e for s, e in tags if not any(c in _TERMINAL_CHARS for c in text[s:e])}
        cuts: list[int] = []
        list_chain = _ListChain()
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
                list_chain = _ListChain()  # numbering restarts in a new paragraph
            cut, p = m.end(), m.end(1)
            if may_skip:  # an event tag or emoji may follow: look past them
                cut, nxt = _skip_transparent(text, cut, event_tags)
                if nxt is None:
                    continue
                lead, p = text[nxt], _LEADING_OPENERS.match(text, nxt).end()
            continues = lead in _NON_START or (p < n and text[p].islower())
            if not continues and lead in _DASHES:
                continues = _dash_then_lowercase(text, nxt)
            run_start = terminal
            while run_start > 0 and text[run_start - 1] in _TERMINAL_CHARS:
                run_start -= 1
            if run_start < terminal or text[terminal] != ".":
                # ! ? and ellipses: end unless the next word continues the sentence
                if continues:
                    continue
                run = text[run_start : terminal + 1]
                if not run.strip(".\u2026") and (len(run) > 1 or run == "\u2026"):
                    if _is_elision(text, run_start, terminal, m.end()):
                        continue  # "[...]", "(...)": an omission inside a sentence
                    if _is_pronoun_i(text, p):
                        continue  # "... I": the capital says nothing about a new sentence
                cuts.append(cut)
                continue
            start = n - _NON_SPACE_RUN.match(rev, n - terminal).end()
            marker = _LIST_MARKER.fullmatch(text, start, terminal)
            closers = text[terminal + 1 : m.end()]
            if marker is not None and closers in ("", ")"):
                item = list_chain.item(text, rev, start, marker)
                if item is not None:
                    if item >= 0:
                        cuts.append(item)
                    continue
            if continues:
                continue
            body_start = _LEADING_OPENERS.match(text, start, terminal).end()
            body = text[body_start:terminal]
            if not body:  # a lone "." word: the last dot of a spaced ellipsis ". . ."
                cut = self._spaced_ellipsis_cut(text, rev, terminal, cut, p)
                if cut is not None:
                    cuts.append(cut)
                continue
            if self._period_ends(text, body, body_start, p):
                cuts.append(cut)
        return cuts

    def _period_ends(self, text: str, body: str, body_start: int, p: int) -> bool:
        """Whether ``body`` + ``.`` (``body`` starts at ``body_start``) ends a sentence
        when the next word's first character (after openers, not lowercase) is ``text[p]``."""
        lower = body.lower()
        if lower in self._never_end or lower.rpartition(".")[2] in self._never_end:
            return False  # also "Tuesday.Mr. Smith": a title glued to the word before
        if body in _CAPITALISED_TITLES:
            return False
        if len(body) <= 2 and body.isdigit() and _next_word(text, p) in _CAPITALISED_MONTHS:
            return False  # a German date: "am 3. Oktober"
        if lower in _NUMBER_PREFIXES and p < len(text) and text[p].isdigit():
            return False
        am_pm = _AM_PM.fullmatch(body)
        if am_pm is not None:
            return not _opens_with_time_phrase(text, body_start, glued=am_pm.group(1) is not None)
        if body == "I" and _previous_word(text, body_start).islower():
            return True  # "you and I." is the pronoun, not an initial
        if lower in _OPENER_ONLY or _is_initial(body) or _DOTTED_ACRONYM.fullmatch(body):
            return _opens_sentence(text, p)
        return True

    def _spaced_ellipsis_cut(self, text: str, rev: str, terminal: int, cut: int,
                             p: int) -> int | None:
        """The cut for a lone ``.`` word at ``terminal`` whose next word (at ``p``) is
        not lowercase, or ``None``.

        Walks back over the dots of a spaced ellipsis (``. . .``). When the first of
        four or more dots sticks to a word (``compounds. . . . The``), that word's
        period ends the sentence and the ellipsis opens the next one: the cut is
        after the word, if its period would end a sentence before the word at
        ``p``. Otherwise the ellipsis ends the sentence, except before the pronoun
        ``I`` (``the thing is . . . I didn't``).
        """
        j = terminal
        while j >= 2 and text[j - 1] == " " and text[j - 2] == ".":
            j -= 2
        dots = (terminal - j) // 2 + 1  # the spaced dots, from j to terminal
        if dots >= 4 and j > 0 and not text[j - 1].isspace():
            # text[j] is the period of the word before it, then ". . ." follows
            n = len(text)
            start = n - _NON_SPACE_RUN.match(rev, n - j).end()
            body_start = _LEADING_OPENERS.match(text, start, j).end()
            body = text[body_start:j]
            if body and self._period_ends(text, body, body_start, p):
                return j + 1
        if _is_pronoun_i(text, p):
            return None
        return cut


class _ListChain:
    """The numbered (``1. 2. 3.``) or lettered (``a. b. c.``) list of a paragraph so
    far: a marker at a line start opens it, the next marker inside a line continues it."""

    __slots__ = ("number", "letter")

    def __init__(self) -> None:
        self.number: int | None = None
        self.letter: str | None = None

    def item(self, text: str, rev: str, start: int, marker: re.Match[str]) -> int | None:
        """For the marker word ``text[start:...]``: ``None`` when it is not a list marker
        here, ``-1`` for a marker at a line start (never a sentence end), else the
        position where its item starts (a cut)."""
        number = int(marker.group(1)) if marker.group(1) else None
        letter = marker.group(2)
        bullet = _spaced_bullet(text, start)
        head = start if bullet is None else bullet
        if _at_line_start(text, rev, head):
            if number is not None:
                self.number = number
            elif letter is not None:
                self.letter = letter
            return -1
        if number is not None and self.number is not None and number == self.number + 1:
            self.number = number
            return head
        if letter is not None and self.letter is not None and ord(letter) == ord(self.letter) + 1:
            self.letter = letter
            return head
        return None


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


def _unspaced_end_cuts(text: str) -> list[int]:
    """Cuts after sentence ends that need no space after them (``。`` ``！`` ``？``
    ``．``, ``।`` ``॥`` glued to the next word, ``!`` ``?`` between Han or kana) and
    the closers after them, except where a closed quote is continued
    (``「はい。」と言った``, ``“好。”，他说``, ``“好。”他说``: see
    :func:`_closed_quote_continues`); after a danda only a comma or と/って does."""
    cuts: list[int] = []
    if _UNSPACED_HINT_RE.search(text) is None:
        return cuts
    n = len(text)
    cjk = [*_CJK_END_RE.finditer(text)]
    if _CJK_CHAR_RE.search(text) is not None:
        cjk += [m for m in _ASCII_IN_CJK_END_RE.finditer(text)
                if m.start() > 0 and _CJK_CHAR_RE.match(text, m.start() - 1)]
    for m in cjk:
        start, end = m.start(), m.end()
        if text[start:m.start(1)] == "\uff0e" and 0 < start and end < n \
                and text[start - 1] in _DIGITS and text[end] in _DIGITS:
            continue  # a full-width decimal point: ３．１４
        if m.group(1) and _closed_quote_continues(text, m.start(1), end):
            continue
        cuts.append(end)
    for m in _DANDA_END_RE.finditer(text):
        if m.group(1) and text[m.end()] in _AFTER_QUOTE_CONTINUES:
            continue
        cuts.append(m.end())
    return cuts


def _closed_quote_continues(text: str, closers: int, end: int) -> bool:
    """Whether the sentence goes on after a CJK sentence end inside a quote, whose
    closers span ``text[closers:end]`` (see *Quoted CJK sentences* in the module
    docstring for the rule and why).

    Work per call is bounded by :data:`_QUOTE_LOOK_BACK`, :data:`_TAG_LOOK_AHEAD`
    and :data:`_LOOK_BACK`, so the splitter stays linear in the text.
    """
    if end >= len(text) or text[end].isspace():
        return False  # a line break, a paragraph or a space: the sentence has ended
    nxt = text[end]
    if nxt in _AFTER_QUOTE_CONTINUES:
        return True
    if nxt in _QUOTE_OPENERS:
        return False  # a new quoted sentence: “好。”“不好。”
    glued = _GLUED_WORDS_RE.match(text, end)
    words = glued.group() if glued else ""
    opener = _quote_opener(text, closers, text[end - 1])
    if opener is None:  # not found nearby: judge by the text around the quote
        before, quoted = "", text[max(0, closers - _LOOK_BACK) : closers]
    else:
        before, quoted = _char_before(text, opener), text[opener + 1 : closers]
    if before in _INTRODUCING_COLONS:
        return False  # 他问：“你来吗？”我说……: the colon's sentence ends with the quote
    if _KANA_RE.search(quoted) or _KANA_RE.search(words):
        return False  # Japanese goes on only through a particle (checked above)
    if before.isalnum():
        return True  # a quote inside a sentence: 有人喊“救命！”便跑了过去。
    return _SPEECH_TAG_RE.search(words) is not None  # “好。”他说。 but “走吧。”他站起来。


def _quote_opener(text: str, closers: int, closer: str) -> int | None:
    """Offset of the opening quote that the last closer ``closer`` (of the run
    starting at ``closers``) closes: the nearest one before, on the same line and
    within :data:`_QUOTE_LOOK_BACK` characters; ``None`` when there is none."""
    opening = _OPENER_OF.get(closer)
    if opening is None:
        return None
    lo = max(0, closers - _QUOTE_LOOK_BACK)
    lo = max(lo, text.rfind("\n", lo, closers) + 1)
    found = text.rfind(opening, lo, closers)
    return found if found >= 0 else None


def _char_before(text: str, pos: int) -> str:
    """The character before ``pos``, skipping spaces and tabs (``""`` at the start or
    past the look-back limit)."""
    i = pos
    while i > 0 and pos - i < _LOOK_BACK and text[i - 1] in " \t\u3000":
        i -= 1
    return text[i - 1] if i > 0 and text[i - 1] not in " \t\u3000" else ""


def _greek_question_cuts(text: str) -> list[int]:
    """Cuts after ``;`` used as a question mark: where the text before it (the last
    :data:`_LOOK_BACK` characters) has more Greek than Latin letters and the next
    word does not start lowercase (``Τι ώρα είναι; Οκτώ.``). Elsewhere ``;`` is a
    semicolon, a clause mark."""
    cuts: list[int] = []
    if ";" not in text:
        return cuts
    for m in _SEMICOLON_RE.finditer(text):
        if m.group(1).islower():
            continue
        window = text[max(0, m.start() - _LOOK_BACK) : m.start()]
        if len(_GREEK_LETTER.findall(window)) > len(_LATIN_LETTER.findall(window)):
            cuts.append(m.end())
    return cuts


def _dash_then_lowercase(text: str, pos: int) -> bool:
    """True when the dash word at ``pos`` is followed by a lowercase word: a reply in
    dialogue (``«Ты придёшь?» — спросила она``, ``"Stop!" — he said``)."""
    end = pos
    while end < len(text) and text[end] in _DASHES:
        end += 1
    m = _NEXT_TOKEN_RE.match(text, end)
    if m is None:
        return False
    word = m.group(1)
    start = _LEADING_OPENERS.match(word).end()
    return start < len(word) and word[start].islower()


def _next_word(text: str, p: int) -> str:
    """The letters at ``p`` (``""`` when none)."""
    m = _LETTERS.match(text, p)
    return m.group() if m else ""


def _paren_marker_cuts(text: str, rev: str, paragraphs: list[int]) -> list[int]:
    """Cuts before list markers closed by ``)`` alone: ``1) First 2) Second`` cuts
    before ``2)`` when ``1)`` opened a line of the same paragraph (``a) b)`` alike)."""
    cuts: list[int] = []
    if ")" not in text:
        return cuts
    n = len(text)
    number: int | None = None
    letter: str | None = None
    next_paragraph = 0
    for close in _PAREN_END_RE.finditer(text):
        end = close.start()
        pos = n - _NON_SPACE_RUN.match(rev, n - end).end()  # the word before ")"
        m = _PAREN_MARKER.fullmatch(text, pos, end)
        if m is None:
            continue
        while next_paragraph < len(paragraphs) and paragraphs[next_paragraph] < pos:
            next_paragraph += 1
            number = letter = None
        num = int(m.group(1)) if m.group(1) else None
        let = m.group(2)
        if _at_line_start(text, rev, pos):
            if num is not None:
                number = num
            else:
                letter = let
        elif num is not None and number is not None and num == number + 1:
            number = num
            cuts.append(pos)
        elif let is not None and letter is not None and ord(let) == ord(letter) + 1:
            letter = let
            cuts.append(pos)
    return cuts


def _spaced_bullet(text: str, start: int) -> int | None:
    """Where a bullet stands alone before the word at ``start`` (``• 9.``), else ``None``."""
    i = start
    while i > 0 and start - i < _LOOK_BACK and text[i - 1] in " \t":
        i -= 1
    if i == start or i == 0 or text[i - 1] not in _BULLETS:
        return None
    if i >= 2 and not text[i - 2].isspace():
        return None
    return i - 1


def _is_elision(text: str, run_start: int, terminal: int, end: int) -> bool:
    """True for an ellipsis in brackets, ``[...]`` or ``(…)``: an omission mark."""
    if run_start == 0 or end == terminal + 1:
        return False
    return text[run_start - 1] + text[terminal + 1] in ("[]", "()")


def _is_pronoun_i(text: str, p: int) -> bool:
    """True when the word at ``p`` is the pronoun ``I`` (``I``, ``I'm``, ``I’d``, ``I,``)."""
    return text.startswith("I", p) and (p + 1 >= len(text) or not text[p + 1].isalnum())


def _opens_with_time_phrase(text: str, pos: int, glued: bool) -> bool:
    """True when the words before ``pos`` (where ``a.m.``/``p.m.`` starts) are only an
    opening time phrase of a sentence: ``At 5 a.m. Mr. Smith left``, ``By 5a.m. we``.

    Only the last :data:`_LOOK_BACK` characters are searched (``\\A`` matches only
    at the real start of the text, not at the search window's start).
    """
    pattern = _INTRO_TIME_GLUED if glued else _INTRO_TIME_SPACED
    return pattern.search(text, max(0, pos - _LOOK_BACK), pos) is not None


def _previous_word(text: str, pos: int) -> str:
    """The whitespace-delimited word before ``pos`` (``""`` at the start or when it is
    farther or longer than the look-back limit)."""
    i = pos
    while i > 0 and pos - i < _LOOK_BACK and text[i - 1].isspace():
        i -= 1
    j = i
    while j > 0 and i - j < _LOOK_BACK and not text[j - 1].isspace():
        j -= 1
    if j > 0 and not text[j - 1].isspace():
        return ""
    return text[j:i]


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
            description="dependency-free rule-based splitter (English abbreviations, "
            "initials, decimals, URLs, quotes, lists, event tags; the sentence marks of 23 languages)",
        )
    ]
