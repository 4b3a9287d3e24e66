"""Speech tokens to audio, chunk by chunk, with S3Gen and a crossfade at each seam.

S3Gen turns speech tokens (25 per second) into 24 kHz audio, 960 samples per
token. To stream, each chunk is decoded together with ``context`` tokens that
were already decoded; the audio of the context is dropped, except for the last
few milliseconds, which are crossfaded with the tail held back from the previous
chunk. Both sides of that crossfade render the same tokens, so the seam is
smooth; a bare fade-in (what chatterbox-streaming does) dips the level at every
seam instead. Holding back the tail delays audio by the crossfade length only.

Chatterbox Turbo's meanflow S3Gen decodes the same way (its noise and 2 steps are
:mod:`.s3gen_batch`'s business); Turbo's ``generate`` also appends three
``S3GEN_SIL`` tokens to a segment before decoding it: a vocoder made with
``end_tokens=TURBO_END_TOKENS`` appends them to the segment's last chunk
(``decode(..., last=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .s3gen_batch import RenderedRow, RenderRow, prepared_reference, render_rows

SAMPLE_RATE = 24_000
TOKENS_PER_SECOND = 25
SAMPLES_PER_TOKEN = SAMPLE_RATE // TOKENS_PER_SECOND
#: Speech token ids S3Gen can decode; larger ids are T3's special tokens.
SPEECH_VOCAB = 6561
#: Upstream's ``S3GEN_SIL`` (``chatterbox.models.s3gen.const``): S3Gen's silence token.
S3GEN_SIL = 4299
#: What Turbo's ``generate`` appends to a segment's speech tokens before S3Gen.
TURBO_END_TOKENS = (S3GEN_SIL,) * 3


def decodable(tokens: Sequence[int]) -> list[int]:
    """``tokens`` without T3's special ids (start, stop, padding), as upstream drops them."""
    return [t for t in tokens if 0 <= t < SPEECH_VOCAB]


def crossfade(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Blend ``old`` into ``new`` (same length) with raised-cosine gains that sum to 1.

    Both sides render the same tokens, so they are strongly correlated: gains
    summing to one (not equal power, which would swell by up to 3 dB) keep the
    level steady through the seam.
    """
    n = len(old)
    if n == 0:
        return new.copy()
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    fade_in = 0.5 - 0.5 * np.cos(np.pi * t)
    return (old * (1.0 - fade_in) + new * fade_in).astype(np.float32)


@dataclass(frozen=True)
class ChunkRequest:
    """One chunk's S3Gen call as :meth:`ChunkVocoder.prepare` plans it: what is
    rendered (``context + new`` tokens with ``reference``) and the call's number."""

    new: tuple[int, ...]
    #: The previously decoded tokens re-read before ``new``.
    context: tuple[int, ...]
    #: This call's number in the vocoder, from 1 (its noise seed derives from it).
    call: int
    #: S3Gen's voice reference (upstream's ``ref_dict``) for this call.
    reference: dict[str, Any]


class ChunkVocoder:
    """Decodes the speech tokens of one segment chunk by chunk.

    Call :meth:`decode` for each chunk, then :meth:`flush` once for the held-back
    tail. The concatenation of everything returned has exactly
    ``SAMPLES_PER_TOKEN`` samples per decodable token.

    :meth:`decode` is :meth:`prepare` (what to render), S3Gen
    (:func:`.s3gen_batch.render_rows` on :meth:`render_row`), then :meth:`finish`
    (trim, crossfade, state); the engine's batched decode runs the same three
    steps for several vocoders with one S3Gen call in the middle.

    With a seed, call number ``k`` draws its noise (flow matching, then HiFT) from
    ``seed * 1_000_003 + k`` without touching the caller's RNG. ``n_cfm_timesteps``
    ``None`` is upstream's default for the model (10; 2 for a meanflow S3Gen).
    ``end_tokens`` are appended to the segment's last chunk (the one decoded with
    ``last=True``): Turbo's :data:`TURBO_END_TOKENS`; they count as decoded tokens. With
    ``carry_source``, a call's HiFT source over its context is the previous call's
    source over those tokens (CosyVoice's streaming cache), when that call
    rendered all of them.
    """

    def __init__(self, s3gen: Any, ref_dict: dict, *, crossfade_ms: float = 10.0,
                 n_cfm_timesteps: int | None = None, seed: int | None = None,
                 carry_source: bool = False, end_tokens: Sequence[int] = ()) -> None:
        self.seed = seed
        self.end_tokens = tuple(int(t) for t in end_tokens)
        self._calls = 0
        self.s3gen = s3gen
        self.ref_dict = ref_dict
        self.crossfade = int(round(SAMPLE_RATE * crossfade_ms / 1000.0))
        self.n_cfm_timesteps = n_cfm_timesteps
        self.carry_source = carry_source
        self._tail = np.zeros(0, dtype=np.float32)
        self._decoded: list[int] = []
        self._source: Any = None  # the last call's HiFT source (1, 1, samples)

    def prepare(self, new_tokens: Sequence[int], context: int, *, last: bool = False) -> ChunkRequest | None:
        """The S3Gen call for ``new_tokens`` (already filtered with :func:`decodable`),
        re-reading up to ``context`` previously decoded tokens; ``None`` when there
        is nothing new (no call). On the segment's ``last`` chunk the vocoder's
        ``end_tokens`` follow the new tokens. Changes nothing: :meth:`finish` moves
        the state on."""
        new = tuple(new_tokens) + (self.end_tokens if last else ())
        if not new:
            return None
        ctx = tuple(self._decoded[-context:]) if context > 0 else ()
        return ChunkRequest(new, ctx, self._calls + 1, self.ref_dict)

    def render_row(self, request: ChunkRequest) -> RenderRow:
        """``request`` as a row of :func:`.s3gen_batch.render_rows`."""
        self._check_current(request)
        # call number self._calls + 1 (== request.call) draws from this seed
        seed = None if self.seed is None else self.seed * 1_000_003 + self._calls + 1
        prefix = None
        span = len(request.context) * SAMPLES_PER_TOKEN
        if self.carry_source and span and self._source is not None and self._source.size(2) >= span:
            prefix = self._source[:, :, self._source.size(2) - span:]
        return RenderRow(request.context + request.new, prepared_reference(self.s3gen, request.reference),
                         seed=seed, n_timesteps=self.n_cfm_timesteps, source_prefix=prefix)

    def finish(self, request: ChunkRequest, rendered: RenderedRow) -> np.ndarray:
        """The fresh audio of a rendered ``request`` (the context's audio dropped, the
        held-back tail crossfaded in, a new tail held back); moves the state on."""
        self._check_current(request)
        wav = rendered.audio
        # S3Gen yields SAMPLES_PER_TOKEN per token; be exact even if it is off by a few
        expected = (len(request.context) + len(request.new)) * SAMPLES_PER_TOKEN
        if len(wav) < expected:
            wav = np.pad(wav, (0, expected - len(wav)))
        wav = wav[:expected]
        skip = len(request.context) * SAMPLES_PER_TOKEN
        fresh = wav[skip:]
        tail = self._tail
        if len(tail):
            if skip >= len(tail):  # the context re-renders the held-back tail: crossfade
                head = crossfade(tail, wav[skip - len(tail):skip])
            else:  # no context to blend with: the tail goes out as it is
                head = tail
            fresh = np.concatenate([head, fresh])
        self._calls = request.call
        self._decoded.extend(request.new)
        self._source = rendered.source if self.carry_source else None
        keep = min(self.crossfade, len(fresh))
        self._tail = fresh[len(fresh) - keep:].copy()
        return fresh[: len(fresh) - keep]

    def _check_current(self, request: ChunkRequest) -> None:
        if request.call != self._calls + 1:
            raise ValueError(f"chunk request {request.call} is stale: this vocoder made {self._calls} "
                             "call(s); prepare each chunk after the previous one finished")

    def decode(self, new_tokens: Sequence[int], context: int, *, last: bool = False) -> np.ndarray:
        """Audio for ``new_tokens`` (already filtered with :func:`decodable`),
        re-reading up to ``context`` previously decoded tokens; ``last`` on the
        segment's last chunk (``end_tokens`` follow then)."""
        request = self.prepare(new_tokens, context, last=last)
        if request is None:
            return np.zeros(0, dtype=np.float32)
        (rendered,) = render_rows(self.s3gen, [self.render_row(request)])
        return self.finish(request, rendered)

    def flush(self) -> np.ndarray:
        """The held-back tail of the last chunk (call once, at the end of the segment)."""
        tail, self._tail = self._tail, np.zeros(0, dtype=np.float32)
        return tail
