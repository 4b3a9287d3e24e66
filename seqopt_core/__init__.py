"""seqopt: pluggable token-sequence optimization for Chatterbox TTS.

The public surface for apps and plugin authors is re-exported here; see
``docs/library.md`` and ``docs/plugin-guide.md``.
"""

from __future__ import annotations

from .api import as_loaded_config, build_planner, list_strategies, load_config_from_model, plan_text, plugin_host
from .compare import (
    CaseResult,
    LabeledText,
    SplitterComparison,
    SplitterScore,
    compare_splitters,
)
from .config import (
    BuiltStrategies,
    LoadedConfig,
    PipelineConfig,
    PlannerConfig,
    StrategyChoice,
    build_strategies,
    load_config,
    plugin_host_for,
    profile_names,
    resolve_config,
)
from .errors import (
    ConfigError,
    DuplicateStrategyError,
    EngineUnavailableError,
    InputFileError,
    OptionValueError,
    InvalidTextError,
    PlanningError,
    PluginError,
    SeqoptError,
    StrategyBuildError,
    StrategyUnavailableError,
    TextDecodeError,
    TokenizerNotFoundError,
    UnknownStrategyError,
)
from .hookspecs import hookimpl
from .textfile import read_text
from .planner import PlannerSettings, SegmentPlanner, split_sentences
from .plugins import PluginHost, PluginInfo, StrategyInfo
from .strategies import (
    SLOTS,
    AttentionBackend,
    AttentionBackendSpec,
    Availability,
    ChunkPolicy,
    ChunkPolicySpec,
    ContextPolicy,
    ContextPolicySpec,
    NoOptions,
    SegmentContextSpec,
    SegmentContextStrategy,
    SentenceSplitter,
    SentenceSplitterSpec,
    StrategySpec,
    TokenEstimator,
    TokenEstimatorSpec,
)
from .types import (
    BoundaryKind,
    ChunkEvent,
    GenerationEvent,
    Segment,
    SegmentEvent,
    SegmentPlan,
    Sentence,
    Span,
)

__version__ = "0.1.0"

#: Names served lazily from the Chatterbox engine (torch is imported on first use).
_ENGINE_EXPORTS = {"Pipeline": "pipeline", "AudioChunk": "pipeline", "Synthesis": "pipeline",
                   "RunMetrics": "pipeline"}
ENGINE_INSTALL = "pip install 'seqopt[chatterbox]'"


class _UnavailableEngineName:
    """Stands in for an engine name (``Pipeline``, ...) when the engine cannot be imported.

    It is falsy, so ``if seqopt_core.Pipeline:`` and ``getattr(seqopt_core,
    "Pipeline", None)`` detect the engine without an exception; calling it or
    any of its attributes raises :class:`EngineUnavailableError` (a
    :class:`SeqoptError` and an ``ImportError``) with the install command.
    """

    def __init__(self, name: str, reason: str) -> None:
        self._name, self._reason = name, reason

    def _error(self) -> EngineUnavailableError:
        return EngineUnavailableError(
            f"seqopt_core.{self._name} needs the Chatterbox engine, which cannot be imported here "
            f"({self._reason}). Install it with: {ENGINE_INSTALL}")

    def __bool__(self) -> bool:
        return False

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise self._error()

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise self._error()

    def __repr__(self) -> str:
        return f"<seqopt_core.{self._name}: unavailable ({self._reason}); {ENGINE_INSTALL}>"


def engine_available() -> bool:
    """Whether the speech engine (``seqopt[chatterbox]``: torch, chatterbox-tts) can be imported."""
    return bool(__getattr__("Pipeline"))


def __getattr__(name: str):
    if name in _ENGINE_EXPORTS:
        import importlib

        try:
            module = importlib.import_module(f"seqopt_plugins.chatterbox.{_ENGINE_EXPORTS[name]}")
        except ImportError as exc:
            return _UnavailableEngineName(name, f"{type(exc).__name__}: {exc}")
        return getattr(module, name)
    raise AttributeError(f"module 'seqopt_core' has no attribute {name!r}")


__all__ = [
    "CaseResult", "LabeledText", "SplitterComparison", "SplitterScore", "compare_splitters",
    "as_loaded_config", "LoadedConfig", "PipelineConfig", "PlannerConfig", "StrategyChoice", "build_planner",
    "list_strategies", "load_config", "load_config_from_model", "plan_text", "plugin_host",
    "profile_names", "resolve_config",
    "AttentionBackend", "AttentionBackendSpec", "Availability", "BoundaryKind", "ChunkEvent",
    "ChunkPolicy", "ChunkPolicySpec", "ConfigError", "ContextPolicy", "ContextPolicySpec",
    "DuplicateStrategyError", "GenerationEvent", "InvalidTextError", "NoOptions",
    "PlannerSettings", "PlanningError", "PluginError", "PluginHost", "PluginInfo", "SLOTS",
    "Segment", "SegmentContextSpec", "SegmentContextStrategy", "SegmentEvent", "SegmentPlan",
    "SegmentPlanner", "Sentence", "SentenceSplitter", "SentenceSplitterSpec", "SeqoptError",
    "Span", "StrategyInfo", "StrategySpec", "StrategyUnavailableError", "TextDecodeError",
    "TokenEstimator", "TokenEstimatorSpec", "TokenizerNotFoundError", "UnknownStrategyError",
    "hookimpl", "split_sentences", "read_text", "InputFileError", "EngineUnavailableError",
    "engine_available", "ENGINE_INSTALL", "OptionValueError", "StrategyBuildError", "BuiltStrategies",
    "build_strategies", "plugin_host_for",
]
