"""Strategy slots: what each kind of strategy must do, and the records that register one.

A *slot* is a place in the pipeline that exactly one named strategy fills (the
splitter, the estimator, ...). Plugins offer strategies through registry hooks
(see :mod:`seqopt_core.hookspecs`) that return :class:`StrategySpec` records.
The config file names one strategy per slot.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from .engine import Engine
from .errors import ConfigError, OptionValueError, SeqoptError, StrategyBuildError
from .types import Span
from .validation import options_error

# --- what a strategy of each slot must do -------------------------------------


@runtime_checkable
class TokenEstimator(Protocol):
    """Counts (or estimates) the text tokens the model receives for a text."""

    def count(self, text: str) -> int:
        """Tokens T3 receives for ``text`` as one segment, start and stop tokens included."""
        ...


@runtime_checkable
class SentenceSplitter(Protocol):
    """Finds sentence boundaries. Never changes the text: it returns spans into it."""

    def split(self, text: str) -> list[Span]:
        """Sentence spans of ``text`` in order, not overlapping, not starting or
        ending with whitespace; every non-whitespace character lies in exactly one."""
        ...


@runtime_checkable
class ChunkPolicy(Protocol):
    """How many speech tokens the engine collects before decoding a chunk to audio."""

    def chunk_size(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        """Speech tokens in chunk ``chunk_index`` (0 is the first) of segment
        ``segment_index`` (0 is the first of the stream), whose text is
        ``segment_tokens`` tokens long."""
        ...


@runtime_checkable
class ContextPolicy(Protocol):
    """How many already-decoded speech tokens S3Gen re-reads before each chunk."""

    def context_window(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        """Speech tokens of left context for chunk ``chunk_index`` of segment
        ``segment_index``, whose text is ``segment_tokens`` tokens long."""
        ...


@runtime_checkable
class SegmentContextStrategy(Protocol):
    """What carries over from one segment to the next (voice consistency)."""

    def prompt_tokens(self, previous_segments: Sequence[Sequence[int]]) -> list[int] | None:
        """Speech tokens that prime the next segment, given the speech tokens of the
        segments already generated (oldest first); ``None`` keeps the voice prompt alone."""
        ...


@runtime_checkable
class AttentionBackend(Protocol):
    """How the engine's transformer computes attention.

    What the backend can do is declared by its record
    (:class:`AttentionBackendSpec`: ``provides_alignment``, ``keeps_all_layers``,
    ``setup``); the object only carries what its options decide. A backend whose
    record declares ``provides_alignment`` must also have ``aligned_heads`` (the
    (layer, head) pairs the alignment guard reads) and may have
    ``repetition_run`` (default 2).
    """

    #: The ``attn_implementation`` handed to transformers ("eager", "sdpa", ...).
    attn_implementation: str


# --- registry records ---------------------------------------------------------


class NoOptions(BaseModel):
    """Options model of a strategy that takes no options."""

    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


@dataclass(frozen=True)
class Availability:
    """Whether a strategy can run here and, when it cannot, why and how to fix it."""

    enabled: bool
    reason: str | None = None
    install: str | None = None


@dataclass(frozen=True)
class StrategySpec(Generic[T]):
    """A named strategy offered by a plugin.

    ``factory`` is called with a validated instance of ``options`` and returns the
    strategy object. ``requires`` lists importable module names the strategy needs;
    they are looked up with :func:`importlib.util.find_spec`, never imported, so
    listing strategies stays cheap and never fails on a missing dependency.
    ``check`` may add a run-time condition (a CUDA device, say): it returns
    ``None`` when the strategy can run, else the reason it cannot.
    ``cheap_to_build`` says whether calling ``factory`` is cheap (no model or large
    library to load, well under a second): ``seqopt config validate`` builds such
    strategies, so that a factory's own refusals (a language the library lacks,
    say) are reported there too; a record whose factory loads a model sets it
    ``False``, and then only its options model is checked.

    A factory refuses options it cannot use by raising
    :class:`~seqopt_core.errors.OptionValueError` (naming the option), or any
    ``ValueError``, ``LookupError`` or ``OSError``: :meth:`create` reports each as a
    :class:`~seqopt_core.errors.StrategyBuildError` naming the slot and strategy.
    Any other exception is a bug in the plugin and propagates as it is.
    """

    #: The config key of the slot this record fills (set by each record class).
    slot_key: ClassVar[str] = "strategy"

    name: str
    factory: Callable[[Any], T]
    description: str
    options: type[BaseModel] = NoOptions
    requires: tuple[str, ...] = ()
    install: str | None = None
    check: Callable[[], str | None] | None = None
    cheap_to_build: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(
                f"strategy name {self.name!r} must be non-empty letters, digits, '_' or '-'"
            )
        if not (isinstance(self.options, type) and issubclass(self.options, BaseModel)):
            raise TypeError(f"strategy {self.name!r}: options must be a pydantic model class")

    def availability(self) -> Availability:
        """Check ``requires`` and ``check`` without importing anything heavy."""
        missing = [m for m in self.requires if not _module_available(m)]
        if missing:
            return Availability(
                False, f"missing Python package(s): {', '.join(missing)}", self.install
            )
        if self.check is not None:
            reason = self.check()
            if reason:
                return Availability(False, reason, self.install)
        return Availability(True)

    def capabilities(self) -> dict[str, bool]:
        """What the record declares the strategy can do (``seqopt plugins`` lists it);
        the base record declares nothing."""
        return {}

    def validated(self, options: BaseModel | dict[str, Any] | None = None) -> BaseModel:
        """``options`` as an instance of this strategy's options model; bad options raise
        :class:`~seqopt_core.errors.ConfigError` naming the strategy, each bad key and
        every key it accepts (never a raw pydantic error)."""
        if isinstance(options, self.options):
            return options
        if options is not None and not isinstance(options, (dict, BaseModel)):
            raise ConfigError(f"options for {self.slot_key} {self.name!r} must be a dict of "
                              f"option names to values, got {type(options).__name__}")
        data = options.model_dump() if isinstance(options, BaseModel) else (options or {})
        try:
            return self.options.model_validate(data)
        except ValidationError as exc:
            raise options_error(self.slot_key, self.name, self.options, exc) from None

    def create(self, options: BaseModel | dict[str, Any] | None = None) -> T:
        """Validate ``options`` against this strategy's model and build the strategy.

        Bad options raise :class:`~seqopt_core.errors.ConfigError` (see
        :meth:`validated`); options the factory itself refuses raise
        :class:`~seqopt_core.errors.StrategyBuildError` (see the class docstring).
        """
        options = self.validated(options)
        return self._build(lambda: self.factory(options), options)

    def _build(self, build: Callable[[], T], options: BaseModel) -> T:
        """``build()``, with the factory's refusals reported as the class docstring says."""
        try:
            return build()
        except OptionValueError as exc:
            key = exc.key
            where = f"{self.slot_key}.options.{key}: " if key else ""
            raise StrategyBuildError(f"{self.slot_key} {self.name!r}: {where}{exc}",
                                     slot=self.slot_key, name=self.name, key=key) from exc
        except SeqoptError:
            raise  # already a message for the user (a missing tokenizer, ...)
        except (ValueError, LookupError, OSError) as exc:
            raise StrategyBuildError(
                f"{self.slot_key} {self.name!r} cannot be built with its options "
                f"({_options_text(options)}): {type(exc).__name__}: {exc}. Change "
                f"{self.slot_key}.options (`seqopt plugins` and docs/config.md list what each "
                f"option accepts) or choose another {self.slot_key}",
                slot=self.slot_key, name=self.name) from exc


def _options_text(options: BaseModel) -> str:
    """``key=value, ...`` of ``options``, each value shortened to one readable line."""
    parts = []
    for key, value in options.model_dump().items():
        text = repr(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:50] + '...' + text[-7:]}")
    return ", ".join(parts) or "no options"


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class TokenEstimatorSpec(StrategySpec[TokenEstimator]):
    """Registry record of a token estimator (slot ``estimator``).

    ``per_language`` declares that what the estimator counts depends on the
    language of the text (a multilingual tokenizer adds a language token and
    preprocesses some scripts): its factory is then called as
    ``factory(options, language)``, with the run's language (``synthesis.language``,
    else the engine's default; a lowercase ISO 639-1 code), and a language it
    cannot count raises :class:`~seqopt_core.errors.OptionValueError` with
    ``key="language"``.
    """

    slot_key: ClassVar[str] = "estimator"

    per_language: bool = False

    def capabilities(self) -> dict[str, bool]:
        return {"per_language": self.per_language}

    def create(self, options: BaseModel | dict[str, Any] | None = None,
               language: str | None = None) -> TokenEstimator:
        """Validate ``options`` and build the estimator (for ``language`` if it is ``per_language``)."""
        options = self.validated(options)
        if not self.per_language:
            return self._build(lambda: self.factory(options), options)
        if not language:
            raise ConfigError(f"estimator {self.name!r} counts per language: give the language "
                              "(synthesis.language, or --language on the command line)")
        return self._build(lambda: self.factory(options, language), options)  # type: ignore[call-arg]


class SentenceSplitterSpec(StrategySpec[SentenceSplitter]):
    """Registry record of a sentence splitter (slot ``splitter``)."""

    slot_key: ClassVar[str] = "splitter"


@dataclass(frozen=True)
class ChunkPolicySpec(StrategySpec[ChunkPolicy]):
    """Registry record of a chunk-size policy (slot ``chunk_policy``).

    ``uses_playback`` declares that the policy plans with the device's costs and the
    listener's buffer: the scheduler then asks ``policy.plan_chunk(state)`` with a
    :class:`seqopt_core.playback.ChunkState` (the modeled buffered seconds, the
    context re-read, the :class:`seqopt_core.costs.CostModel`) instead of
    ``chunk_size(...)``, and the pipeline measures the costs once per device
    (``synthesis.costs``).
    """

    slot_key: ClassVar[str] = "chunk_policy"

    uses_playback: bool = False

    def capabilities(self) -> dict[str, bool]:
        return {"uses_playback": self.uses_playback}


class ContextPolicySpec(StrategySpec[ContextPolicy]):
    """Registry record of a context-window policy (slot ``context_policy``)."""

    slot_key: ClassVar[str] = "context_policy"


@dataclass(frozen=True)
class SegmentContextSpec(StrategySpec[SegmentContextStrategy]):
    """Registry record of a cross-segment context strategy (slot ``segment_context``).

    ``independent_segments`` declares that the strategy never primes a segment
    with earlier segments' tokens: the scheduler then asks it for each segment's
    prompt with no history (``prompt_tokens([])``) and may generate segments in
    any order, in batches. ``False`` (``speech_tail``) makes every segment wait
    for the one before it.
    """

    slot_key: ClassVar[str] = "segment_context"

    independent_segments: bool = True

    def capabilities(self) -> dict[str, bool]:
        return {"independent_segments": self.independent_segments}


@dataclass(frozen=True)
class AttentionBackendSpec(StrategySpec[AttentionBackend]):
    """Registry record of an attention backend (slot ``attention``), with what it can do.

    * ``provides_alignment``: the backend records the aligned heads' attention, so
      the engine runs the alignment guard (the object then has ``aligned_heads``).
    * ``keeps_all_layers``: it holds every layer's maps of the latest step (what
      ``output_attentions=True`` costs; the stock eager path).
    * ``setup``: called once before the engine first selects the backend's
      ``attn_implementation``, to register a custom kernel with the model library
      (import torch inside it, never at module level); ``None`` for built-in
      implementations. Removal is the engine's: after each piece of model work it
      puts the previous implementation back.
    """

    slot_key: ClassVar[str] = "attention"

    provides_alignment: bool = False
    keeps_all_layers: bool = False
    setup: Callable[[], None] | None = None

    def capabilities(self) -> dict[str, bool]:
        return {"provides_alignment": self.provides_alignment, "keeps_all_layers": self.keeps_all_layers,
                "custom_kernel": self.setup is not None}


@dataclass(frozen=True)
class EngineSpec(StrategySpec[Any]):
    """Registry record of a speech engine (slot ``engine``).

    ``factory(options, runtime)`` loads the model and returns an object that
    implements :class:`seqopt_core.engine.Engine`; ``runtime`` is an
    :class:`seqopt_core.engine.EngineRuntime` (device and dtype from
    ``[synthesis]``). ``options`` is the engine's own settings model (the
    ``[engine.options]`` table). Capabilities:

    * ``batching``: several segments may share one token step (continuous
      batching); ``False`` makes the scheduler run one segment at a time.
    * ``uses_attention``: the engine honours the ``attention`` slot.
    * ``concurrent_stages``: ``work(stage="tokens")`` and ``work(stage="decode")`` hold
      separate locks, so the scheduler may generate a chunk's tokens in one thread
      while another decodes the chunk before (``synthesis.overlap``).
    * ``batched_decode``: the engine implements
      :class:`seqopt_core.engine.BatchDecodingEngine` (chunks of several segments
      in one vocoder call).
    * ``voices``: the engine speaks in the voice of a reference audio file:
      ``with_voice(path)`` returns it so configured, on the same loaded model, and
      jobs of several voices may share one batch (:attr:`SegmentJob.engine`).
    * ``preflight(options)``: checks the files and values the options name before
      the (slow) model load, raising a :class:`~seqopt_core.errors.SeqoptError`
      that says what is wrong; ``seqopt speak`` calls it first.
    * ``languages``: the lowercase ISO 639-1 codes the model speaks, its default
      first (``synthesis.language`` must be one of them; empty: the engine declares
      none and ``synthesis.language`` must be unset). Each segment carries its
      language to the engine (:attr:`seqopt_core.types.Segment.language`).
    * ``estimator``: the token estimator that counts exactly what this engine's
      model receives (``seqopt plan`` and the profiles pair them); ``None``: none declared.
    """

    slot_key: ClassVar[str] = "engine"

    cheap_to_build: bool = False
    batching: bool = True
    uses_attention: bool = True
    batched_decode: bool = False
    concurrent_stages: bool = False
    voices: bool = False
    preflight: Callable[[BaseModel], None] | None = None
    languages: tuple[str, ...] = ()
    estimator: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [code for code in self.languages if not (code.isascii() and code.isalpha() and code.islower())]
        if bad or len(set(self.languages)) != len(self.languages):
            raise ValueError(f"engine {self.name!r}: languages must be distinct lowercase codes "
                             f"(ISO 639-1, 'en'), got {list(self.languages)!r}")

    def capabilities(self) -> dict[str, bool]:
        return {"batching": self.batching, "uses_attention": self.uses_attention,
                "batched_decode": self.batched_decode, "concurrent_stages": self.concurrent_stages,
                "voices": self.voices, "preflight": self.preflight is not None}

    def create(self, options: BaseModel | dict[str, Any] | None = None, runtime: Any = None) -> Any:
        """Validate ``options`` and load the engine on ``runtime`` (default: auto, float32)."""
        from .engine import EngineRuntime

        options = self.validated(options)
        runtime = runtime if runtime is not None else EngineRuntime()
        return self._build(lambda: self.factory(options, runtime), options)


@dataclass(frozen=True)
class Slot:
    """One strategy slot: its config key, the hook that fills it and its record type."""

    key: str
    hook: str
    record: type[StrategySpec[Any]]
    protocol: type
    title: str


SLOTS: dict[str, Slot] = {
    s.key: s
    for s in (
        Slot("estimator", "seqopt_token_estimators", TokenEstimatorSpec, TokenEstimator,
             "token estimators"),
        Slot("splitter", "seqopt_sentence_splitters", SentenceSplitterSpec, SentenceSplitter,
             "sentence splitters"),
        Slot("chunk_policy", "seqopt_chunk_policies", ChunkPolicySpec, ChunkPolicy,
             "chunk-size policies"),
        Slot("context_policy", "seqopt_context_policies", ContextPolicySpec, ContextPolicy,
             "context-window policies"),
        Slot("segment_context", "seqopt_segment_context_strategies", SegmentContextSpec,
             SegmentContextStrategy, "cross-segment context strategies"),
        Slot("attention", "seqopt_attention_backends", AttentionBackendSpec, AttentionBackend,
             "attention backends"),
        Slot("engine", "seqopt_engines", EngineSpec, Engine, "speech engines"),
    )
}
