"""The texts a comparison runs: a sequence-length matrix, the content classes, your files.

Pure text work (no torch): texts are cut from the project's own corpus
(``seqopt_core/corpus``, five original texts, one per content class) to a
token count measured with the estimator you give, normally the exact
``chatterbox`` one::

    >>> from seqopt_core import PluginHost
    >>> estimator = PluginHost.discover().create("estimator", "ratio")
    >>> [t.id for t in length_matrix((32, 64), estimator)]
    ['len-32', 'len-64']
    >>> t = length_matrix((32,), estimator)[0]
    >>> t.tokens <= 32 and estimator.count(t.text) == t.tokens
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from ..errors import SeqoptError
from ..strategies import TokenEstimator

#: The corpus's content classes (one file each), in round-robin order.
CONTENT_CLASSES: tuple[str, ...] = ("book", "news", "conversational", "technical", "poetry")
#: The design report's sequence-length matrix, in text tokens.
DEFAULT_LENGTHS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
#: Text tokens of each content-class text.
DEFAULT_CLASS_TOKENS = 256

TextKind = Literal["length", "class", "file"]


@dataclass(frozen=True)
class ComparisonText:
    """One text of a comparison.

    ``tokens`` is the estimator's count of the whole text (start and stop
    tokens included for ``chatterbox``); ``kind`` says where it came from.
    """

    id: str
    text: str
    kind: TextKind
    tokens: int
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "tokens": self.tokens, "chars": len(self.text),
                "source": self.source}


def corpus_text(content_class: str) -> str:
    """The whole corpus text of ``content_class`` (see :data:`CONTENT_CLASSES`)."""
    if content_class not in CONTENT_CLASSES:
        raise SeqoptError(f"unknown content class {content_class!r}; choose from "
                          f"{', '.join(CONTENT_CLASSES)}")
    return (resources.files("seqopt_core") / "corpus" / f"{content_class}.txt").read_text(encoding="utf-8")


def paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of ``text``, stripped, empty ones dropped."""
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip():
            current.append(line.rstrip())
        elif current:
            out.append("\n".join(current).strip())
            current = []
    if current:
        out.append("\n".join(current).strip())
    return out


def corpus_paragraphs(classes: Sequence[str] = CONTENT_CLASSES) -> list[str]:
    """All corpus paragraphs round-robin over ``classes`` (1st of each, 2nd of each, ...)."""
    per_class = [paragraphs(corpus_text(c)) for c in classes]
    out: list[str] = []
    for i in range(max(len(p) for p in per_class)):
        out.extend(p[i] for p in per_class if i < len(p))
    return out


def mixed_corpus(classes: Sequence[str] = CONTENT_CLASSES) -> str:
    """:func:`corpus_paragraphs` joined by blank lines: running text that mixes the classes."""
    return "\n\n".join(corpus_paragraphs(classes))


def _word_ends(text: str) -> list[int]:
    """Offsets just past each word of ``text`` (a word: a run of non-space characters)."""
    ends = []
    for i, ch in enumerate(text):
        if not ch.isspace() and (i + 1 == len(text) or text[i + 1].isspace()):
            ends.append(i + 1)
    return ends


def prefix_with_tokens(text: str, tokens: int, estimator: TokenEstimator) -> str:
    """The longest prefix of ``text`` that ends a word and counts at most ``tokens``.

    Counts are monotone in the prefix length for every built-in estimator, so a
    binary search over word ends finds it with O(log words) counts. Raises
    :class:`SeqoptError` when ``text`` (repeated as needed) cannot reach even one word.
    """
    if tokens < 1:
        raise SeqoptError(f"a text must have at least 1 token, not {tokens}")
    source = text
    while estimator.count(source) < tokens and len(source) < 64 * len(text):
        source = source + "\n\n" + text  # cycle the corpus for very long texts
    ends = _word_ends(source)
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if estimator.count(source[: ends[mid]]) <= tokens:
            best, lo = ends[mid], mid + 1
        else:
            hi = mid - 1
    if best is None:
        raise SeqoptError(f"no prefix of the corpus has {tokens} tokens or fewer: the first word "
                          "alone counts more; ask for a longer text")
    return source[:best]


def length_matrix(lengths: Iterable[int], estimator: TokenEstimator,
                  classes: Sequence[str] = CONTENT_CLASSES) -> list[ComparisonText]:
    """Texts of (at most, and as close as a word allows) each of ``lengths`` tokens.

    All are prefixes of the same running text (:func:`mixed_corpus`), so a
    longer text contains every shorter one: differences along the matrix come
    from length, not content.
    """
    source = mixed_corpus(classes)
    out = []
    for n in sorted(set(lengths)):
        text = prefix_with_tokens(source, n, estimator)
        out.append(ComparisonText(f"len-{n}", text, "length", estimator.count(text), "corpus (mixed)"))
    return out


def class_texts(classes: Iterable[str], estimator: TokenEstimator,
                tokens: int = DEFAULT_CLASS_TOKENS) -> list[ComparisonText]:
    """The first ``tokens`` tokens (at a word end) of each content class's corpus text."""
    out = []
    for cls in classes:
        text = prefix_with_tokens(corpus_text(cls), tokens, estimator)
        out.append(ComparisonText(f"class-{cls}", text, "class", estimator.count(text), f"corpus/{cls}.txt"))
    return out


def file_texts(paths: Iterable[str | Path], estimator: TokenEstimator) -> list[ComparisonText]:
    """Your own texts, one per file, whole (the planner splits them as each config says).

    Files are read as UTF-8; an empty or undecodable file is an error that names it.
    """
    from ..text import decode_utf8

    out: list[ComparisonText] = []
    seen: dict[str, int] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise SeqoptError(f"text file {str(path)!r} does not exist (or is not a file)")
        text = decode_utf8(path.read_bytes(), str(path))
        if not text.strip():
            raise SeqoptError(f"text file {str(path)!r} is empty; give a file with text to speak")
        stem = path.stem or "text"
        seen[stem] = seen.get(stem, 0) + 1
        name = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
        out.append(ComparisonText(f"file-{name}", text, "file", estimator.count(text), str(path)))
    return out


def warmup_text(estimator: TokenEstimator, tokens: int = 24) -> str:
    """A short text for the untimed warm-up run of each configuration."""
    return prefix_with_tokens(corpus_text("book"), tokens, estimator)
