"""The length bands the report's adaptive chunk and context policies share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LengthBands(BaseModel):
    """Scale a base value by the segment's text length.

    Segments of at most ``short_tokens`` use ``min(base, short_cap)``; up to
    ``long_tokens`` they use ``base``; longer ones ``min(base * long_factor, long_cap)``.
    """

    model_config = ConfigDict(extra="forbid")

    short_tokens: int = Field(64, ge=1)
    long_tokens: int = Field(128, ge=1)
    short_cap: int = Field(ge=1)
    long_factor: float = Field(ge=1.0, le=100.0, allow_inf_nan=False)
    long_cap: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> LengthBands:
        if self.short_tokens > self.long_tokens:
            raise ValueError("short_tokens must not exceed long_tokens")
        return self

    def value(self, base: int, segment_tokens: int) -> int:
        if segment_tokens <= self.short_tokens:
            return min(base, self.short_cap)
        if segment_tokens <= self.long_tokens:
            return base
        return min(int(base * self.long_factor), self.long_cap)
