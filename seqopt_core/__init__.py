"""seqopt: pluggable token-sequence optimization for Chatterbox TTS.

Nothing here imports torch: the speech engine is a plugin (the ``engine`` slot),
loaded when a :class:`Pipeline` is built.

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
    SynthesisError,
    TextDecodeError,
    TokenizerNotFoundError,
    UnknownStrategyError,
)
from .engine import (
    AttentionSettings,
    ChunkDecoder,
    DecodedAudio,
    Engine,
    EngineRuntime,
    GeneratedSegment,
    SegmentJob,
    TokenBatch,
    TokenStep,
)
from .hookspecs import hookimpl
from .pipeline import AudioChunk, AudioStream, Pipeline, RunMetrics, Synthesis
from .scheduler import ChunkOutput, SegmentScheduler
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
    EngineSpec,
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

ENGINE_INSTALL = "pip install 'seqopt[chatterbox]'"


def engine_available(name: str = "chatterbox") -> bool:
    """Whether engine ``name`` (default: Chatterbox, ``seqopt[chatterbox]``: torch,
    chatterbox-tts) can run here, without importing it."""
    try:
        info = plugin_host().strategy("engine", name)
    except SeqoptError:
        return False
    return info.enabled


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
    "AudioChunk", "AudioStream", "Pipeline", "RunMetrics", "Synthesis", "SynthesisError",
    "AttentionSettings", "ChunkDecoder", "DecodedAudio", "Engine", "EngineRuntime", "EngineSpec",
    "GeneratedSegment", "SegmentJob", "TokenBatch", "TokenStep", "ChunkOutput", "SegmentScheduler",
]
