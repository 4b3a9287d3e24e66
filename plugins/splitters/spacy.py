"""Sentence splitter ``spacy``: sentence boundaries from a spaCy pipeline.

``model`` names an installed spaCy pipeline package (one that declares itself in
spaCy's ``spacy_models`` entry-point group, as every package ``spacy download`` or
``spacy package`` makes does) or a pipeline folder (``nlp.to_disk``: a
``config.cfg`` and a ``meta.json``). Nothing else is accepted: ``spacy.load``
would import any installed package of that name and call its ``load()``.

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

import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from seqopt_core import SentenceSplitterSpec, Span, hookimpl
from seqopt_core.errors import OptionValueError
from seqopt_core.validation import field_error
from seqopt_plugins.splitters._spans import blocks, library_spans, spans_in_blocks

__all__ = ["DEFAULT_MODELS", "SpacyOptions", "SpacySplitter", "seqopt_sentence_splitters"]

INSTALL = "pip install 'seqopt[spacy]'"
#: Trained English pipelines tried, in order, when no model is named.
DEFAULT_MODELS: tuple[str, ...] = (
    "en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_trf",
)
BLANK_PIPELINE = "blank:en+sentencizer"
_ENCODERS = ("tok2vec", "transformer")
#: The entry-point group in which a spaCy pipeline package declares itself.
SPACY_MODELS_GROUP = "spacy_models"


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

    @field_validator("model")
    @classmethod
    def _pipeline_exists(cls, model: str | None) -> str | None:
        if model is not None:
            problem = model_problem(model)
            if problem:
                raise ValueError(problem)
        return model

    @model_validator(mode="after")
    def _component_available(self) -> SpacyOptions:
        if self.model is None and self.component in ("parser", "senter") and default_model() is None:
            raise field_error(SpacyOptions, "component", self.component, _NO_TRAINED.format(
                component=self.component, models=", ".join(DEFAULT_MODELS)))
        return self


_NO_TRAINED = ("component {component!r} needs a trained pipeline, and none of {models} is "
               "installed. Install one (for example: python -m spacy download en_core_web_sm), "
               "name one in 'model', or use component = 'auto'")


def installed_pipelines() -> list[str]:
    """Names of the installed spaCy pipeline packages: those declared in the
    ``spacy_models`` entry-point group (what ``spacy.util.get_installed_models``
    lists), read from package metadata without importing any of them."""
    return sorted({ep.name for ep in entry_points(group=SPACY_MODELS_GROUP)})


def is_pipeline_dir(model: str | Path) -> bool:
    """Whether ``model`` is a folder holding a saved spaCy pipeline (``config.cfg``
    and ``meta.json``, as ``nlp.to_disk`` writes them)."""
    try:
        path = Path(model).expanduser()
        return path.is_dir() and (path / "config.cfg").is_file() and (path / "meta.json").is_file()
    except (OSError, ValueError):  # a name too long for a path, a NUL byte
        return False


def model_problem(model: str) -> str | None:
    """Why ``model`` is not an installed spaCy pipeline or pipeline folder (with the
    fix), or ``None`` when it is one."""
    if is_pipeline_dir(model) or model in installed_pipelines():
        return None
    fallback = f"or leave 'model' unset to use {default_model() or BLANK_PIPELINE}"
    try:
        exists = Path(model).expanduser().exists()
    except (OSError, ValueError):
        exists = False
    if exists:
        return (f"{model!r} is not a spaCy pipeline folder (it has no config.cfg and meta.json, "
                "which nlp.to_disk writes): give the folder the pipeline was saved to, the name "
                f"of an installed spaCy pipeline package, {fallback}")
    installed = ", ".join(installed_pipelines()) or "none"
    if any(sep in model for sep in ("/", "\\")) or model.startswith((".", "~")):
        return (f"no pipeline folder {model!r} (it does not exist); give an existing folder "
                f"saved with nlp.to_disk, an installed spaCy pipeline package ({installed}), "
                f"{fallback}")
    return (f"the spaCy pipeline {model!r} is not installed (seqopt never downloads models, and "
            "accepts only packages that declare themselves spaCy pipelines, or a pipeline "
            f"folder; installed: {installed}). Install it with: python -m spacy download {model} "
            f"(or pip install its wheel), {fallback}")


def default_model() -> str | None:
    """The trained English pipeline ``model = None`` picks, or ``None`` (blank)."""
    installed = set(installed_pipelines())
    return next((m for m in DEFAULT_MODELS if m in installed), None)


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
            raise OptionValueError(_NO_TRAINED.format(component=component,
                                                      models=", ".join(DEFAULT_MODELS)),
                                   key="component")
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp, BLANK_PIPELINE, "sentencizer"

    # SpacyOptions checked this; checked again here because spacy.load would import
    # any installed package of that name and call its load().
    problem = model_problem(name)
    if problem:
        raise OptionValueError(problem, key="model")
    # a folder is loaded as a path, never looked up as a package of the same name
    target: str | Path = Path(name).expanduser() if is_pipeline_dir(name) else name
    try:
        nlp = spacy.load(target)
    except OSError as exc:
        raise OptionValueError(f"cannot load the spaCy pipeline {name!r}: {exc}",
                               key="model") from exc

    names = list(nlp.component_names)  # disabled ones included
    if component == "auto":
        use = next((c for c in ("parser", "senter", "sentencizer") if c in names), None)
    else:
        use = component if component in names else None
        if use is None and component != "sentencizer":
            raise OptionValueError(
                f"pipeline {name!r} has no {component!r} component (it has: "
                f"{', '.join(names) or 'none'}); use component = 'auto' or another pipeline",
                key="component")
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
            cheap_to_build=False,  # loads a trained pipeline; SpacyOptions checks the model
            description="spaCy: a trained English pipeline's parser if one is installed "
            "(en_core_web_sm/md/lg/trf), else the rule-based sentencizer",
        )
    ]
