"""``ratio``: a dependency-free token estimate from the character count.

The report's heuristic: about 1.6 characters per text token, plus the start and
stop tokens the model always receives. Whitespace runs count as one character,
as the model's normaliser collapses them. Cheap and good enough for packing;
use the ``chatterbox`` estimator when every segment must be within the limit
as the model counts it.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import TokenEstimatorSpec, hookimpl


class RatioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chars_per_token: float = Field(1.6, gt=0, description="average characters per text token")
    overhead_tokens: int = Field(2, ge=0, description="tokens added to every segment (start, stop)")


class RatioEstimator:
    """``ceil(chars / chars_per_token) + overhead_tokens``, whitespace runs counted once."""

    def __init__(self, options: RatioOptions | None = None) -> None:
        self.options = options or RatioOptions()

    def count(self, text: str) -> int:
        chars = len(" ".join(text.split()))
        return math.ceil(chars / self.options.chars_per_token) + self.options.overhead_tokens


@hookimpl
def seqopt_token_estimators() -> list[TokenEstimatorSpec]:
    return [
        TokenEstimatorSpec(
            name="ratio",
            factory=RatioEstimator,
            options=RatioOptions,
            description="characters / 1.6 + start/stop tokens; no dependencies",
        )
    ]
