"""``ratio``: a dependency-free token estimate, no tokenizer file needed.

By default it counts what Chatterbox's English tokenizer really does, feature by
feature, after the model's own ``punc_norm`` (the same pure-Python function the
exact ``chatterbox`` estimator uses):

* the tokenizer has no merges for spaces, digits, punctuation, capital letters
  or any character other than ``a``-``z``: each of them is exactly one token
  (a space becomes one ``[SPACE]`` token, ``"2024"`` is four tokens, ``"The"``
  is ``T`` + ``he``), and so is each bracketed event tag such as ``[laughter]``;
* only runs of lowercase ``a``-``z`` letters are merged by its byte-pair
  encoding (215 of its 265 merges; the others join IPA symbols). A run that is
  one of about 430 frequent English words (or a single letter) counts as many
  tokens as that word really has, from a built-in table; any other run counts
  ``PER_WORD + PER_LETTER * letters``.

So the estimate is::

    overhead_tokens + ceil(other_chars + table_tokens
                           + PER_WORD * other_runs + PER_LETTER * other_run_letters)

Everything but the last two terms is exact (IPA text aside); ``PER_WORD`` and
``PER_LETTER`` are least-squares fits on the project's corpus
(``benchmarks/bench_estimator.py`` fits and reports them, in-sample and held
out). On that corpus it is within 5% of the exact count per segment on every
content class (``docs/benchmarks.md``), at a few microseconds per sentence, pure
Python. Rounding up adds half a token on average, but it still under-counts
some segments by a few tokens.

Setting ``chars_per_token`` switches to the old formula,
``ceil(chars / chars_per_token) + overhead_tokens`` with whitespace runs
counted once (the design report's figure was 1.6). Use the ``chatterbox``
estimator when every segment must be within the limit as the model counts it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from itertools import repeat
from string import ascii_lowercase
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import TokenEstimatorSpec, hookimpl

from .chatterbox import START_STOP_TOKENS, punc_norm

#: Tokens per lowercase run that is not in the word table, and per letter of such a
#: run: :func:`fit_coefficients` (least squares, weights 1/exact²) over every segment
#: of the corpus planned with the exact estimator and the rtx4090 limits, rounded, as
#: ``benchmarks/bench_estimator.py`` makes it ("feature_fit" in its JSON, with the
#: held-out fits).
PER_WORD = 0.694
PER_LETTER = 0.465

# Added tokens of Chatterbox's English tokenizer.json: each is one token wherever it
# appears. ``[SPACE]`` and the like are listed for completeness.
_ADDED_TOKENS = (
    "STOP UNK SPACE START UH UM giggle laughter guffaw inhale exhale sigh cry bark howl meow "
    "singing music whistle humming gasp groan whisper mumble sniff sneeze cough snore chew sip "
    "clear_throat kiss shhh gibberish fr es de it ipa end_of_label"
).split()
_ADDED_TOKEN = re.compile(
    r"\[(?:" + "|".join(_ADDED_TOKENS) + r"|PLACEHOLDER\d+)\]"
)
_LOWER_RUN = re.compile(r"[a-z]+")

# Frequent English words (a general list, not taken from the corpus) by the number of
# tokens the released tokenizer makes of each, lowercase. ``tests/test_estimators.py``
# checks every entry against the tokenizer.
_WORDS_BY_TOKENS = {
    1: """
about all am an and any are as at back be been but by can could did do end for from get
go had have he her him his if in into is it just know like ll man me more my no not now
of on one or other our out over own re said she so some that the their them then there
they thing this to up us use ve very was way we were what when who with would you your
""",
    2: """
able act again air also among another anyone anything aren around ask away bad being
best book both boy bring call came car city come comes coming couldn day didn does doing
don done door down eight enough even ever every eye face far feel few find food form
found four gets goes going gone good got grow hadn hand hard has haven head held here
home how isn its kind known knows land last late least less let life light line live
long look low make many may mean meant men might most mother move must near need never
new night nine nothing off old once only place plant play put ran read real really right
room round run same sat saw say sea see seem seen sees set seven should show shown side
sit six someone something stand state still such sun sure take tell ten than these
things think though time told too took try two under upon used uses using want wasn ways
well went where which while whole whom whose why will within without won word work world
wouldn year yes yet
""",
    3: """
after against almost although always asked became because become before began begin
better big brought called case change child clear close days doesn during each early
earth either everyone everything eyes fact father felt first five follow free friend
full gave give given great group hands happen hasn having help high hold house keep kept
knew large learn leave left lived looked looks made makes making maybe money month moved
much name needed neither next north often page part people person places point press
puts quite rather saying says seemed seems self shouldn showed since small start started
stood taken takes talk those thought thousand three through times tree tried true turn
until wanted wants water week weren whether woman women words worked works wrote years
young
""",
    4: """
already answer believe between build country cross draw family friends happened helped
however hundred little million months morning number perhaps story study talked turned
weeks write
""",
    5: "children different important public school written",
}

#: ``{lowercase run: exact tokens}`` for the table words and every single letter.
WORD_TOKENS: dict[str, int] = {ch: 1 for ch in ascii_lowercase}
for _tokens, _words in _WORDS_BY_TOKENS.items():
    WORD_TOKENS.update(dict.fromkeys(_words.split(), _tokens))
# The fast path: every run costs PER_WORD + PER_LETTER * letters, plus this correction
# for a table word (its exact tokens minus that), all in thousandths of a token.
_PER_WORD_MILLI = round(1000 * PER_WORD)
_PER_LETTER_MILLI = round(1000 * PER_LETTER)
_TABLE_ADJUST_MILLI: dict[bytes, int] = {
    w.encode(): 1000 * n - _PER_WORD_MILLI - _PER_LETTER_MILLI * len(w) for w, n in WORD_TOKENS.items()
}
_ZEROS = repeat(0)
# bytes.translate table keeping a-z and turning every other byte into a space
_RUNS_ONLY = bytes(b if 0x61 <= b <= 0x7A else 0x20 for b in range(256))


class Features(NamedTuple):
    """What :class:`RatioEstimator` counts in a text, after ``punc_norm``."""

    single_tokens: int
    """characters other than ``a``-``z`` (spaces, digits, punctuation, capitals, ...)
    and event tags: one token each, exactly"""
    table_tokens: int
    """exact tokens of the lowercase runs found in the word table"""
    other_runs: int
    """lowercase runs not in the table"""
    other_letters: int
    """letters in those runs"""


def features(text: str) -> Features:
    """The features of ``text`` (readable form of what :meth:`RatioEstimator.count` uses)."""
    norm = punc_norm(text)
    if "[" in norm:
        norm = _ADDED_TOKEN.sub("#", norm)
    runs = _LOWER_RUN.findall(norm)
    known = [WORD_TOKENS[r] for r in runs if r in WORD_TOKENS]
    others = [r for r in runs if r not in WORD_TOKENS]
    return Features(len(norm) - sum(map(len, runs)), sum(known), len(others), sum(map(len, others)))


def estimate(f: Features, per_word: float = PER_WORD, per_letter: float = PER_LETTER,
             overhead_tokens: int = START_STOP_TOKENS) -> int:
    """The token estimate from :func:`features` with the given coefficients."""
    body = f.single_tokens + f.table_tokens + per_word * f.other_runs + per_letter * f.other_letters
    return overhead_tokens + math.ceil(body - 1e-9)


def fit_coefficients(rows: Iterable[tuple[str, int]],
                     overhead_tokens: int = START_STOP_TOKENS) -> dict[str, float] | None:
    """Least-squares ``per_word`` and ``per_letter`` for ``(text, exact tokens)`` rows.

    What the features do not give exactly (exact minus the overhead, the
    single-character tokens and the table words' tokens) is fitted as
    ``per_word * other_runs + per_letter * other_letters``, each row weighted by
    1/exact² so that every row's relative error counts alike; closed form (2×2
    normal equations). None when the rows cannot determine both coefficients.
    ``benchmarks/bench_estimator.py`` fits :data:`PER_WORD` and :data:`PER_LETTER`
    with it.
    """
    sxx = sxy = syy = sxt = syt = 0.0
    n = 0
    for text, exact in rows:
        f = features(text)
        x, y = f.other_runs, f.other_letters
        t = exact - overhead_tokens - f.single_tokens - f.table_tokens
        w = 1.0 / (exact * exact)
        sxx += w * x * x
        sxy += w * x * y
        syy += w * y * y
        sxt += w * x * t
        syt += w * y * t
        n += 1
    det = sxx * syy - sxy * sxy
    if n < 2 or det <= 1e-12 * max(sxx * syy, 1e-300):
        return None
    return {"per_word": (syy * sxt - sxy * syt) / det, "per_letter": (sxx * syt - sxy * sxt) / det,
            "n": n}


class RatioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chars_per_token: float | None = Field(
        None, gt=0, le=100, allow_inf_nan=False,
        description="unset (default): count spaces, punctuation, digits, capitals and words as "
                    "the tokenizer does; set (e.g. 1.6): the old ceil(chars / chars_per_token)",
    )
    overhead_tokens: int = Field(
        START_STOP_TOKENS, ge=0, description="tokens added to every segment (start, stop)"
    )


class RatioEstimator:
    """A tokenizer-free estimate of the exact count: see the module docstring.

    With ``chars_per_token`` set: ``ceil(chars / chars_per_token) + overhead_tokens``,
    whitespace runs counted once.
    """

    def __init__(self, options: RatioOptions | None = None) -> None:
        self.options = options or RatioOptions()
        self._chars_per_token = self.options.chars_per_token
        self._overhead = self.options.overhead_tokens

    def count(self, text: str) -> int:
        if self._chars_per_token is not None:
            chars = len(" ".join(text.split()))
            return math.ceil(chars / self._chars_per_token) + self._overhead
        # estimate(features(text)) in one pass, in thousandths of a token (exact integers)
        norm = punc_norm(text)
        if "[" in norm:
            norm = _ADDED_TOKEN.sub("#", norm)
        # the lowercase runs, as bytes: everything else becomes a separator
        runs = norm.encode().translate(_RUNS_ONLY).split()
        letters = sum(map(len, runs))
        milli = (1000 * (len(norm) - letters) + _PER_WORD_MILLI * len(runs)
                 + _PER_LETTER_MILLI * letters + sum(map(_TABLE_ADJUST_MILLI.get, runs, _ZEROS)))
        return self._overhead - (-milli // 1000)


@hookimpl
def seqopt_token_estimators() -> list[TokenEstimatorSpec]:
    return [
        TokenEstimatorSpec(
            name="ratio",
            factory=RatioEstimator,
            options=RatioOptions,
            description="tokenizer-free estimate: spaces, punctuation, digits and capitals "
                        "one token each, word table + fitted cost per word and letter "
                        "(chars_per_token: the old chars / ratio); no dependencies",
        )
    ]
