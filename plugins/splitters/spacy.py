"""Sentence splitter ``spacy``: sentence boundaries from a spaCy pipeline.

With ``model = None`` the first *installed* trained English pipeline among
``en_core_web_sm``, ``_md``, ``_lg`` and ``_trf`` is used (nothing is ever
downloaded); when none is installed, ``spacy.blank("en")`` with the rule-based
``sentencizer``. Only the components that find sentence boundaries (``parser``
or ``senter``, and the ``tok2vec``/``transformer`` they listen to) stay enabled.
Text is fed one paragraph (at most ``max_block_chars``) at a time, so memory
stays bounded and ``nlp.max_length`` is never hit. Loaded pipelines are cached
per process.

This module is named like the library, so it imports it only inside functions:
importing the plugin never fails and costs nothing when spaCy is absent.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
from seqopt_plugins.splitters._spans import blocks, library_spans, spans_in_blocks

__all__ = ["DEFAULT_MODELS", "SpacyOptions", "SpacySplitter", "seqopt_sentence_splitters"]

INSTALL = "pip install 'seqopt[spacy]'"
#: Trained English pipelines tried, in order, when no model is named.
DEFAULT_MODELS: tuple[str, ...] = (
    "en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_trf",
)
BLANK_PIPELINE = "blank:en+sentencizer"
_ENCODERS = ("tok2vec", "transformer")


class SpacyOptions(BaseModel):
    """Options of the ``spacy`` splitter."""

    model_config = ConfigDict(extra="forbid")

    #: A spaCy pipeline: an installed package name ("en_core_web_sm") or a
    #: directory. ``None``: the first installed of en_core_web_sm/md/lg/trf,
    #: else a blank English pipeline with the rule-based sentencizer.
    model: str | None = None
    #: Which component finds the boundaries in a trained pipeline: the
    #: dependency ``parser`` (most accurate), the faster ``senter``, or ``auto``
    #: (parser if the pipeline has one, else senter, else the sentencizer).
    component: Literal["auto", "parser", "senter", "sentencizer"] = "auto"
    #: Longest piece of text handed to spaCy at once (paragraphs longer than
    #: this are cut at a likely sentence end).
    max_block_chars: int = Field(default=100_000, ge=1_000)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def default_model() -> str | None:
    """The trained English pipeline ``model = None`` picks, or ``None`` (blank)."""
    return next((m for m in DEFAULT_MODELS if _installed(m)), None)


_PIPELINES: dict[tuple[str | None, str], tuple[Any, str, str]] = {}
_LOCK = threading.Lock()


def _load(model: str | None, component: str) -> tuple[Any, str, str]:
    """(nlp, pipeline name, boundary component), loaded once per process."""
    key = (model, component)
    hit = _PIPELINES.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _PIPELINES.get(key)
        if hit is None:
            hit = _build(model, component)
            _PIPELINES[key] = hit
        return hit


def _build(model: str | None, component: str) -> tuple[Any, str, str]:
    import spacy

    name = model if model is not None else default_model()
    if name is None:
        if component in ("parser", "senter"):
            raise ValueError(
                f"spacy splitter: component {component!r} needs a trained pipeline, and "
                f"none of {', '.join(DEFAULT_MODELS)} is installed. Install one (for "
                "example: python -m spacy download en_core_web_sm) or name it in 'model'"
            )
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp, BLANK_PIPELINE, "sentencizer"

    if not Path(name).exists() and not _installed(name):
        raise ValueError(
            f"spacy splitter: the spaCy pipeline {name!r} is not installed (seqopt never "
            f"downloads models). Install it with: python -m spacy download {name} "
            "(or pip install its wheel), or leave 'model' unset to use "
            f"{default_model() or BLANK_PIPELINE}"
        )
    try:
        nlp = spacy.load(name)
    except OSError as exc:
        raise ValueError(f"spacy splitter: cannot load pipeline {name!r}: {exc}") from exc

    names = list(nlp.component_names)  # disabled ones included
    if component == "auto":
        use = next((c for c in ("parser", "senter", "sentencizer") if c in names), None)
    else:
        use = component if component in names else None
        if use is None and component != "sentencizer":
            raise ValueError(
                f"spacy splitter: pipeline {name!r} has no {component!r} component "
                f"(it has: {', '.join(names)})"
            )
    if use is None:
        nlp.add_pipe("sentencizer")
        use = "sentencizer"
        names = list(nlp.component_names)
    keep = {use, *_ENCODERS}
    for comp in names:
        if comp in keep:
            if comp in nlp.disabled:
                nlp.enable_pipe(comp)
        elif comp not in nlp.disabled:
            nlp.disable_pipe(comp)
    meta = nlp.meta or {}
    label = f"{meta.get('lang', '?')}_{meta.get('name', name)}" if meta.get("name") else name
    version = meta.get("version")
    return nlp, f"{label}-{version}" if version else label, use


class SpacySplitter:
    """Sentence boundaries from a spaCy pipeline (``.pipeline_name`` says which)."""

    def __init__(self, options: SpacyOptions | None = None) -> None:
        self.options = options or SpacyOptions()
        self._nlp, self.pipeline_name, self.component = _load(
            self.options.model, self.options.component
        )
        self._max_block = self.options.max_block_chars
        if self._nlp.max_length < self._max_block + 1:
            self._nlp.max_length = self._max_block + 1

    @property
    def description(self) -> str:
        return f"spaCy pipeline {self.pipeline_name} (boundaries from {self.component})"

    def split(self, text: str) -> list[Span]:
        bl = list(blocks(text, self._max_block))
        pieces = [text[b.start : b.end] for b in bl]
        try:
            raw = [[(s.start_char, s.end_char) for s in doc.sents]
                   for doc in self._nlp.pipe(pieces)]
        except Exception:  # find the block spaCy fails on; a bug must not lose text
            raw = [library_spans("spaCy", self._sents, piece) for piece in pieces]
        return spans_in_blocks(text, bl, raw)

    def _sents(self, piece: str) -> list[tuple[int, int]]:
        return [(s.start_char, s.end_char) for s in self._nlp(piece).sents]


@hookimpl
def seqopt_sentence_splitters() -> list[SentenceSplitterSpec]:
    return [
        SentenceSplitterSpec(
            name="spacy",
            factory=SpacySplitter,
            options=SpacyOptions,
            requires=("spacy",),
            install=INSTALL,
            description="spaCy: a trained English pipeline's parser if one is installed "
            "(en_core_web_sm/md/lg/trf), else the rule-based sentencizer",
        )
    ]
