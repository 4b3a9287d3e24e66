"""Speech tokens to audio, chunk by chunk, with S3Gen and a crossfade at each seam.

S3Gen turns speech tokens (25 per second) into 24 kHz audio, 960 samples per
token. To stream, each chunk is decoded together with ``context`` tokens that
were already decoded; the audio of the context is dropped, except for the last
few milliseconds, which are crossfaded with the tail held back from the previous
chunk. Both sides of that crossfade render the same tokens, so the seam is
smooth; a bare fade-in (what chatterbox-streaming does) dips the level at every
seam instead. Holding back the tail delays audio by the crossfade length only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 24_000
TOKENS_PER_SECOND = 25
SAMPLES_PER_TOKEN = SAMPLE_RATE // TOKENS_PER_SECOND
#: Speech token ids S3Gen can decode; larger ids are T3's special tokens.
SPEECH_VOCAB = 6561


def _native_cpu_kernels(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """On a CPU, S3Gen runs without oneDNN (mkldnn).

    oneDNN builds and caches a kernel per input shape, and S3Gen sees a new
    length with nearly every chunk (context + new tokens, after special tokens
    are dropped). Its ``ConvTranspose1d`` upsamplers keep tens of MB per cached
    length (measured with torch 2.6: about 26 MB per new length on the tiny
    checkpoint, 33 MB on the full-size S3Gen), so a long run's memory grew by
    gigabytes until the cache's capacity; building those kernels also made a call
    on a new length 5x slower (tiny) or as slow as the native kernels (full size).
    The native kernels keep nothing per shape, are as fast on a new length, and
    5-10 % slower than a cached oneDNN kernel at full size. The switch is
    process-wide while S3Gen runs, which the engine's model lock serializes.
    """
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return contextlib.nullcontext()
    return torch.backends.mkldnn.flags(enabled=False)


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


class ChunkVocoder:
    """Decodes the speech tokens of one segment chunk by chunk.

    Call :meth:`decode` for each chunk, then :meth:`flush` once for the held-back
    tail. The concatenation of everything returned has exactly
    ``SAMPLES_PER_TOKEN`` samples per decodable token.
    """

    def __init__(self, s3gen: Any, ref_dict: dict, *, crossfade_ms: float = 10.0,
                 n_cfm_timesteps: int | None = None, seed: int | None = None) -> None:
        self.seed = seed
        self._calls = 0
        self.s3gen = s3gen
        self.ref_dict = ref_dict
        self.crossfade = int(round(SAMPLE_RATE * crossfade_ms / 1000.0))
        self.n_cfm_timesteps = n_cfm_timesteps
        self._tail = np.zeros(0, dtype=np.float32)
        self._decoded: list[int] = []

    def _synthesize(self, tokens: list[int]) -> np.ndarray:
        device = next(self.s3gen.parameters()).device
        ids = torch.tensor(tokens, dtype=torch.long, device=device)
        self._calls += 1
        # S3Gen draws its flow-matching noise from torch's global RNG: with a seed,
        # draw it from a derived seed without disturbing the caller's RNG state.
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=self.seed is not None):
            if self.seed is not None:
                torch.manual_seed(self.seed * 1_000_003 + self._calls)
            with torch.inference_mode(), _native_cpu_kernels(device):
                wav, _ = self.s3gen.inference(speech_tokens=ids, ref_dict=self.ref_dict,
                                              n_cfm_timesteps=self.n_cfm_timesteps)
        return wav.squeeze(0).detach().float().cpu().numpy()

    def decode(self, new_tokens: Sequence[int], context: int) -> np.ndarray:
        """Audio for ``new_tokens`` (already filtered with :func:`decodable`),
        re-reading up to ``context`` previously decoded tokens."""
        new = list(new_tokens)
        if not new:
            return np.zeros(0, dtype=np.float32)
        ctx = self._decoded[-context:] if context > 0 else []
        wav = self._synthesize(ctx + new)
        # S3Gen yields SAMPLES_PER_TOKEN per token; be exact even if it is off by a few
        expected = (len(ctx) + len(new)) * SAMPLES_PER_TOKEN
        if len(wav) < expected:
            wav = np.pad(wav, (0, expected - len(wav)))
        wav = wav[:expected]
        skip = len(ctx) * SAMPLES_PER_TOKEN
        fresh = wav[skip:]
        tail = self._tail
        if len(tail):
            if skip >= len(tail):  # the context re-renders the held-back tail: crossfade
                head = crossfade(tail, wav[skip - len(tail):skip])
            else:  # no context to blend with: the tail goes out as it is
                head = tail
            fresh = np.concatenate([head, fresh])
        self._decoded.extend(new)
        keep = min(self.crossfade, len(fresh))
        self._tail = fresh[len(fresh) - keep:].copy()
        return fresh[: len(fresh) - keep]

    def flush(self) -> np.ndarray:
        """The held-back tail of the last chunk (call once, at the end of the segment)."""
        tail, self._tail = self._tail, np.zeros(0, dtype=np.float32)
        return tail
