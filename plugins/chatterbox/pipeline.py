"""Where the pipeline used to live: it is core now (:mod:`seqopt_core.pipeline`), and
the engine is the ``engine`` slot. These names are kept so that old imports work."""

from seqopt_core.pipeline import AudioChunk, AudioStream, Pipeline, RunMetrics, Synthesis

from .vocoder import TOKENS_PER_SECOND

__all__ = ["AudioChunk", "AudioStream", "Pipeline", "RunMetrics", "Synthesis", "TOKENS_PER_SECOND"]
