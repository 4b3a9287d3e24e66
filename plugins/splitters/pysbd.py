"""Sentence splitter ``pysbd``: the rule-based pySBD segmenter ("Golden Rules").

pySBD 0.3.4's own character offsets (``char_span=True``) are not reliable: it
locates each sentence by searching for its text in the whole input, so a
sentence that its rules altered (input containing its placeholder characters
such as ``∯`` or ``ȸ``, say) is silently dropped, and the search makes long
inputs quadratic. This plugin therefore takes pySBD's sentence strings and
aligns them to the text itself, in linear time, then repairs the offsets (see
:mod:`seqopt_plugins.splitters._spans`). Input is handed to pySBD one paragraph
(at most a few thousand characters) at a time, with every whitespace character
shown to it as a plain space (same length, so offsets hold); by default that
includes single line breaks, which pySBD would otherwise treat as sentence ends.
If pySBD raises on a block, that block is split at plain punctuation instead.

This module is named like the library, so it imports it only inside functions:
importing the plugin never fails and costs nothing when pySBD is absent.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
from seqopt_core.errors import OptionValueError
from seqopt_plugins.splitters._spans import (
    align_pieces,
    blocks,
    library_spans,
    spans_in_blocks,
)

__all__ = ["PysbdOptions", "PysbdSplitter", "seqopt_sentence_splitters"]

INSTALL = "pip install 'seqopt[pysbd]'"
# pySBD's cost per character grows with the length of its input (measured with
# 0.3.4: about 3 s/MB in 1,000-character pieces, 6 s/MB at 4,000, 22 s/MB at
# 80,000), so paragraphs longer than this are cut at a likely sentence end first.
_MAX_BLOCK_CHARS = 3_000
# Whitespace pySBD is shown as a plain space (same length, so offsets hold):
# its rules are written for ASCII whitespace, and some crash on others (0.3.4
# raises ValueError on "\x1c32." in its list-item rules).
_ALL_SPACE = re.compile(r"[^\S ]")
_SPACE_BUT_LINE_BREAKS = re.compile(r"[^\S \n\r]")


class PysbdOptions(BaseModel):
    """Options of the ``pysbd`` splitter."""

    model_config = ConfigDict(extra="forbid")

    #: ISO 639-1 code of a language pySBD knows ("en", "de", "fr", ...).
    language: str = "en"
    #: pySBD's ``clean`` mode rewrites the text; seqopt never changes the text, so
    #: only ``False`` is accepted.
    clean: bool = False
    #: pySBD ends a sentence at every line break. Ordinary text files wrap lines
    #: inside sentences, so by default a single line break is read as a space (a
    #: blank line still ends a paragraph, and with it a sentence), as the nltk
    #: and spacy splitters do. ``True`` keeps pySBD's own behaviour (one
    #: sentence per line, for lists and verse).
    line_breaks_end_sentences: bool = False

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        codes = _language_codes()
        if codes is not None and value not in codes:
            raise ValueError(_unknown_language(value, codes))
        return value

    @field_validator("clean")
    @classmethod
    def _no_clean(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "clean=True makes pySBD rewrite the text, which a seqopt splitter must "
                "never do; leave it False"
            )
        return value


def _language_codes() -> set[str] | None:
    """The language codes pySBD knows, or ``None`` when pySBD is not installed."""
    try:
        from pysbd.languages import LANGUAGE_CODES
    except ImportError:
        return None
    return set(LANGUAGE_CODES)


def _unknown_language(language: str, codes: set[str]) -> str:
    return (f"unknown language {language!r}; pySBD knows: {', '.join(sorted(codes))} "
            "(ISO 639-1 codes)")


_SEGMENTERS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _segmenter(language: str) -> Any:
    seg = _SEGMENTERS.get(language)
    if seg is not None:
        return seg
    with _LOCK:
        seg = _SEGMENTERS.get(language)
        if seg is None:
            import pysbd
            from pysbd.languages import LANGUAGE_CODES

            if language not in LANGUAGE_CODES:  # PysbdOptions checked it; model_construct did not
                raise OptionValueError(_unknown_language(language, set(LANGUAGE_CODES)),
                                       key="language")
            seg = pysbd.Segmenter(language=language, clean=False)
            _SEGMENTERS[language] = seg
        return seg


class PysbdSplitter:
    """Sentence boundaries from pySBD's rules, aligned to the original text."""

    def __init__(self, options: PysbdOptions | None = None) -> None:
        self.options = options or PysbdOptions()
        self._segmenter = _segmenter(self.options.language)
        self._space = (
            _SPACE_BUT_LINE_BREAKS if self.options.line_breaks_end_sentences else _ALL_SPACE
        )

    @property
    def description(self) -> str:
        return f"pySBD rule-based segmenter ({self.options.language})"

    def _sentences(self, block: str) -> list[str]:
        seg = self._segmenter
        processor = getattr(seg, "processor", None)
        if processor is not None:
            # The segmenter's sentence strings, before its own (lossy, quadratic)
            # search for their offsets.
            sents = processor(block).process()
        else:  # another pySBD version: its public API
            sents = seg.segment(block)
        return [s for s in (sents or []) if isinstance(s, str)]

    def split(self, text: str) -> list[Span]:
        bl = list(blocks(text, _MAX_BLOCK_CHARS))
        raw = []
        for b in bl:
            local = text[b.start : b.end]
            plain = self._space.sub(" ", local)  # same length: offsets hold
            raw.append(library_spans(
                "pySBD", lambda block: align_pieces(block, self._sentences(block)), plain))
        return spans_in_blocks(text, bl, raw)


@hookimpl
def seqopt_sentence_splitters() -> list[SentenceSplitterSpec]:
    return [
        SentenceSplitterSpec(
            name="pysbd",
            factory=PysbdSplitter,
            options=PysbdOptions,
            requires=("pysbd",),
            install=INSTALL,
            description="pySBD rule-based segmenter (pragmatic-segmenter Golden Rules)",
        )
    ]
