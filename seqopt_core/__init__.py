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
    LoadedConfig,
    PipelineConfig,
    PlannerConfig,
    StrategyChoice,
    load_config,
    profile_names,
    resolve_config,
)
from .errors import (
    ConfigError,
    DuplicateStrategyError,
    InvalidTextError,
    PlanningError,
    PluginError,
    SeqoptError,
    StrategyUnavailableError,
    TextDecodeError,
    TokenizerNotFoundError,
    UnknownStrategyError,
)
from .hookspecs import hookimpl
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


def __getattr__(name: str):
    if name in _ENGINE_EXPORTS:
        import importlib

        try:
            module = importlib.import_module(f"seqopt_plugins.chatterbox.{_ENGINE_EXPORTS[name]}")
        except ImportError as exc:
            raise ImportError(
                f"seqopt_core.{name} needs the Chatterbox engine: pip install 'seqopt[chatterbox]' "
                f"({exc})") from exc
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
    "hookimpl", "split_sentences",
]
