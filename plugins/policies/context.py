"""Context-window policies: how many already-decoded speech tokens S3Gen re-reads
before each chunk, so that chunk seams stay smooth. More context costs more
compute per chunk.

* ``fixed``: the same window for every chunk (chatterbox-streaming's 50).
* ``adaptive``: the report's table; less context for short segments.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import ContextPolicySpec, hookimpl

from ._adaptive import LengthBands


class FixedContextOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context_window: int = Field(50, ge=0, description="speech tokens of left context")


class FixedContextPolicy:
    def __init__(self, options: FixedContextOptions | None = None) -> None:
        self.options = options or FixedContextOptions()

    def context_window(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        return self.options.context_window


class AdaptiveContextOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_context: int = Field(50, ge=0, description="context for 65-128-token segments")
    bands: LengthBands = Field(
        default_factory=lambda: LengthBands(short_cap=25, long_factor=1.5, long_cap=75))


class AdaptiveContextPolicy:
    """<=64 tokens: min(base, 25); <=128: base; longer: min(1.5 x base, 75)."""

    def __init__(self, options: AdaptiveContextOptions | None = None) -> None:
        self.options = options or AdaptiveContextOptions()

    def context_window(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        return self.options.bands.value(self.options.base_context, segment_tokens)


@hookimpl
def seqopt_context_policies() -> list[ContextPolicySpec]:
    return [
        ContextPolicySpec(name="fixed", factory=FixedContextPolicy, options=FixedContextOptions,
                          description="the same context window for every chunk"),
        ContextPolicySpec(name="adaptive", factory=AdaptiveContextPolicy,
                          options=AdaptiveContextOptions,
                          description="context grows with the segment's length (report table)"),
    ]
