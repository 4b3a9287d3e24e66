"""A lifecycle-hook plugin that collects run metrics and writes JSON (``seqopt speak --metrics``).

Monitoring is itself a plugin: :class:`MetricsMonitor` implements the observer
hooks and keeps every chunk, segment and run event it hears. ``seqopt speak
--metrics FILE`` registers one; apps can too::

    monitor = MetricsMonitor("metrics.json")
    pipeline.host.register(monitor, name="metrics")
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .costs import costs_json
from .hookspecs import hookimpl
from .types import ChunkEvent, GenerationEvent, SegmentEvent


class MetricsMonitor:
    """Collects events; writes them as JSON when a run finishes (if given a path)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.chunks: list[ChunkEvent] = []
        self.segments: list[SegmentEvent] = []
        self.runs: list[GenerationEvent] = []

    @hookimpl
    def seqopt_chunk_emitted(self, event: ChunkEvent) -> None:
        self.chunks.append(event)

    @hookimpl
    def seqopt_segment_finished(self, event: SegmentEvent) -> None:
        self.segments.append(event)

    @hookimpl
    def seqopt_generation_finished(self, event: GenerationEvent) -> None:
        self.runs.append(event)
        if self.path is not None:
            self.path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    def to_dict(self) -> dict[str, Any]:
        runs = []
        for run in self.runs:
            runs.append({
                "segments": run.segments, "chunks": run.chunks, "audio_seconds": run.audio_seconds,
                "wall_seconds": run.wall_seconds, "rtf": run.rtf,
                "time_to_first_audio": run.time_to_first_audio,
                "peak_memory_bytes": run.peak_memory_bytes, "completed": run.completed,
                "planning_seconds": run.plan.planning_seconds,
                "splitter": run.plan.splitter, "estimator": run.plan.estimator,
            })
        return {
            "runs": runs,
            "segments": [{"index": s.segment.index, "text_tokens": s.segment.tokens,
                          "boundary": s.segment.boundary, "chunks": s.chunks,
                          "speech_tokens": s.speech_tokens, "audio_seconds": s.audio_seconds,
                          "wall_seconds": s.wall_seconds, "rtf": s.rtf, "stopped_by": s.stopped_by}
                         for s in self.segments],
            "chunks": [asdict(c) for c in self.chunks],
            "costs": self.costs(),
        }

    def costs(self) -> dict[str, Any]:
        """What the model's work cost here, fitted from the chunks heard so far
        (:func:`seqopt_core.costs.costs_json`): the vocoder's fixed and per-token
        seconds, and a streamed T3 step's median seconds."""
        return costs_json(self.chunks)
