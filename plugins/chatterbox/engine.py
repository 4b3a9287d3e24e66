"""The Chatterbox engine: one segment of text in, a stream of audio chunks out.

It drives upstream's modules (``T3``, ``S3Gen``, ``VoiceEncoder``, ``EnTokenizer``,
``Conditionals``) with seqopt's own token loop (:mod:`.t3_stream`) and chunk
decoder (:mod:`.vocoder`). The strategies from the config decide chunk sizes,
context windows, the attention implementation and what carries over between
segments; :mod:`.pipeline` puts planning and synthesis together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqopt_core import SeqoptError
from seqopt_core.config import SynthesisConfig
from seqopt_core.types import Segment

from .checkpoint import CHECKPOINT_FILES, LoadedCheckpoint, load_checkpoint
from .t3_batch import (
    COND_TOKENS_BOUND,
    BatchedSpeechTokenLoop,
    BatchItem,
    Width,
    auto_batch_size,
    free_memory_bytes,
    kv_cache_bytes_per_row,
)
from .t3_stream import (
    AlignmentOptions,
    LengthLimits,
    SamplingOptions,
    SpeechTokenLoop,
    stop_reason,
    text_token_tensor,
)
from .vocoder import SAMPLE_RATE, ChunkVocoder, decodable

HF_REPO = "ResembleAI/chatterbox"
#: Derived length cap: speech tokens per text token, plus this many.
LENGTH_MARGIN_TOKENS = 50
#: T3's learned speech positions (4096 + 2) bound any segment's speech tokens.
MAX_SPEECH_TOKENS = 4000


class SynthesisError(SeqoptError):
    """A segment could not be synthesized (after its retry and further splitting)."""


def pick_device(requested: str = "auto") -> str:
    """``auto``: cuda if available, then mps, then cpu. Anything else is checked."""
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SeqoptError(f"device {requested!r} asked for, but torch sees no CUDA device; "
                          "use --device cpu (or auto)")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                   and torch.backends.mps.is_available()):
        raise SeqoptError("device 'mps' asked for, but MPS is not available; use --device cpu")
    if requested not in ("cpu", "mps") and not requested.startswith("cuda"):
        raise SeqoptError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    return requested


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def download_released_checkpoint() -> Path:
    """Fetch the five released files of ResembleAI/chatterbox into the Hugging Face
    cache (about 3.2 GB the first time) and return their folder."""
    from huggingface_hub import hf_hub_download

    path = None
    for name in CHECKPOINT_FILES:
        path = hf_hub_download(repo_id=HF_REPO, filename=name)
    assert path is not None
    return Path(path).parent


@contextmanager
def attention_implementation(t3: Any, name: str) -> Iterator[None]:
    """Run T3 with ``name`` attention and put the previous implementation back after."""
    if name.startswith("seqopt_"):
        from .attention_kernels import register

        register()
    previous = t3.tfmr.config._attn_implementation
    if name != previous:
        t3.tfmr.set_attn_implementation(name)
    try:
        yield
    finally:
        if t3.tfmr.config._attn_implementation != previous:
            t3.tfmr.set_attn_implementation(previous)


@dataclass
class EngineChunk:
    """One chunk of a segment's audio and how it was made."""

    audio: np.ndarray
    chunk_index: int
    speech_tokens: int
    generate_seconds: float  # T3 sampling for this chunk
    decode_seconds: float  # S3Gen (and watermark) for this chunk
    is_last: bool = False


@dataclass
class SegmentResult:
    """What the engine knows once a segment's stream is exhausted."""

    speech_tokens: list[int] = field(default_factory=list)
    stopped_by: str = "stop_token"  # or "length_limit", "benchmark_length", "alignment_guard"
    text_tokens: int = 0
    #: T3 time spent on this segment (a batch's time shared by its segments' tokens).
    generate_seconds: float = 0.0


def alignment_options(attention: Any) -> AlignmentOptions | None:
    """The alignment guard's settings if the attention backend provides alignment."""
    if not getattr(attention, "provides_alignment", False):
        return None
    return AlignmentOptions(tuple(tuple(h) for h in attention.aligned_heads),
                            getattr(attention, "repetition_run", 2),
                            getattr(attention, "keep_all_layers", False))


class ChatterboxEngine:
    """Loaded Chatterbox modules plus the voice; synthesizes segments as chunk streams."""

    def __init__(self, loaded: LoadedCheckpoint, settings: SynthesisConfig) -> None:
        self.loaded = loaded
        self.settings = settings
        self.t3 = loaded.t3
        self.s3gen = loaded.s3gen
        self.tokenizer = loaded.tokenizer
        self._loop = SpeechTokenLoop(self.t3)
        self._batch_loop = BatchedSpeechTokenLoop(self.t3)
        self._watermarker: Any = None
        if settings.voice:
            self.conds = self._voice_conditionals(settings.voice, settings.exaggeration)
        elif loaded.conds is not None:
            self.conds = loaded.conds
        else:
            raise SeqoptError(
                f"{loaded.path} has no conds.pt (built-in voice): give a reference WAV with "
                "--voice ref.wav (synthesis.voice)")
        self.sampling = SamplingOptions(
            temperature=settings.temperature, top_p=settings.top_p, min_p=settings.min_p,
            repetition_penalty=settings.repetition_penalty, cfg_weight=settings.cfg_weight)

    @classmethod
    def load(cls, settings: SynthesisConfig) -> ChatterboxEngine:
        """Load the checkpoint named by ``settings`` (or the released one from Hugging Face)."""
        device = pick_device(settings.device)
        folder = Path(settings.checkpoint) if settings.checkpoint else download_released_checkpoint()
        loaded = load_checkpoint(folder, device=device, dtype=torch_dtype(settings.dtype))
        return cls(loaded, settings)

    # -- voice -------------------------------------------------------------------

    def _voice_conditionals(self, wav_path: str, exaggeration: float) -> Any:
        path = Path(wav_path)
        if not path.is_file():
            raise SeqoptError(f"voice file {wav_path!r} does not exist; give a WAV of the "
                              "speaker (about 10 s is plenty)")
        tts = self.loaded.to_tts()
        try:
            tts.prepare_conditionals(str(path), exaggeration=exaggeration)
        except Exception as exc:  # librosa/soundfile errors on a bad file
            raise SeqoptError(f"cannot use {wav_path!r} as a voice: {type(exc).__name__}: {exc}") from None
        return tts.conds

    def t3_conditionals(self, prompt_tokens: Sequence[int] | None) -> Any:
        """T3 conditionals for a segment: the voice's, with ``prompt_tokens`` (from the
        cross-segment strategy) appended to the end of its speech prompt."""
        from chatterbox.models.t3.modules.cond_enc import T3Cond

        base = self.conds.t3
        emotion = self.settings.exaggeration * torch.ones(1, 1, 1)
        prompt = base.cond_prompt_speech_tokens
        if prompt_tokens:
            tail = torch.tensor([list(prompt_tokens)], dtype=prompt.dtype, device=prompt.device)
            prompt = torch.cat([prompt, tail], dim=1)[:, -prompt.size(1):]
        return T3Cond(speaker_emb=base.speaker_emb, cond_prompt_speech_tokens=prompt,
                      emotion_adv=emotion).to(device=self.t3.device)

    # -- lengths -----------------------------------------------------------------

    def length_limits(self, text_tokens: int) -> LengthLimits:
        s = self.settings
        if s.benchmark_tokens_per_text_token is not None:
            n = max(1, math.ceil(text_tokens * s.benchmark_tokens_per_text_token))
            return LengthLimits(min(n, MAX_SPEECH_TOKENS), ignore_stop=True)
        if s.max_new_tokens is not None:
            return LengthLimits(s.max_new_tokens)
        derived = math.ceil(text_tokens * s.speech_tokens_per_text_token) + LENGTH_MARGIN_TOKENS
        return LengthLimits(min(derived, MAX_SPEECH_TOKENS))

    # -- synthesis -----------------------------------------------------------------

    def _watermark(self, audio: np.ndarray) -> np.ndarray:
        if not self.settings.watermark or len(audio) == 0:
            return audio
        if self._watermarker is None:
            import contextlib
            import sys

            import perth

            with contextlib.redirect_stdout(sys.stderr):  # it prints; stdout may carry audio
                self._watermarker = perth.PerthImplicitWatermarker()
        return np.asarray(self._watermarker.apply_watermark(audio, sample_rate=SAMPLE_RATE),
                          dtype=np.float32)

    def segment_chunks(
        self,
        segment: Segment,
        *,
        chunk_size: Any,
        context_window: Any,
        attention: Any,
        prompt_tokens: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        result: SegmentResult | None = None,
    ) -> Iterator[EngineChunk]:
        """Stream one segment's audio.

        ``chunk_size(chunk_index)`` and ``context_window(chunk_index)`` answer the
        policies' questions for this segment. ``attention`` is an attention backend
        (``attn_implementation``, ``provides_alignment``, ``aligned_heads``): backends
        that provide alignment run the alignment guard. ``result`` (if given)
        receives the speech tokens and why generation stopped.
        """
        result = result if result is not None else SegmentResult()
        text = self.text_tokens(segment)
        result.text_tokens = int(text.size(-1))
        limits = self.length_limits(result.text_tokens)
        t3_cond = self.t3_conditionals(prompt_tokens)
        alignment = alignment_options(attention)
        with attention_implementation(self.t3, attention.attn_implementation):
            tokens = self._loop.tokens(t3_cond, text, sampling=self.sampling, limits=limits,
                                       generator=generator, alignment=alignment,
                                       length_guard=self._length_guard())
            chunks = _SegmentChunks(self, segment, result, chunk_size, context_window)
            try:
                yield from chunks.feed(tokens)
            finally:
                tokens.close()  # releases the KV cache when the caller stops early
            result.stopped_by = stop_reason(len(result.speech_tokens), limits, self._loop.last_guard)
            yield chunks.finish()

    # -- batched synthesis -----------------------------------------------------------

    def kv_bytes_per_segment(self, segment: Segment) -> int:
        """KV-cache bytes one segment needs in a batch, at its longest: its rows (2
        under CFG) x :func:`.t3_batch.kv_cache_bytes_per_row` over conditioning, text
        and the most speech tokens it may generate."""
        limit = self.length_limits(segment.tokens).max_new_tokens
        tokens = COND_TOKENS_BOUND + segment.tokens + 2 + limit
        rows = 2 if self.settings.cfg_weight > 0 else 1
        return rows * kv_cache_bytes_per_row(self.t3.tfmr.config, next(self.t3.tfmr.parameters()).dtype, tokens)

    def batch_size(self, segments: Sequence[Segment]) -> int:
        """Segments per batch for ``segments``: ``synthesis.batch_size`` if a number,
        else (``auto``) as many of the longest segment's KV caches as fit in the
        device's free memory (see :func:`.t3_batch.auto_batch_size`)."""
        setting = self.settings.batch_size
        if setting != "auto":
            return int(setting)
        if not segments:
            return 1
        device = self.t3.device
        need = max(self.kv_bytes_per_segment(s) for s in segments)
        return auto_batch_size(free_memory_bytes(device), need, device_type=device.type)

    def generate_batch(self, segments: Sequence[Segment], *, attention: Any,
                       generators: Sequence[torch.Generator | None],
                       max_active: Width = None) -> list[SegmentResult]:
        """Speech tokens of ``segments`` generated together, in order (see
        :meth:`generate_stream`; this waits for all of them)."""
        results: list[SegmentResult | None] = [None] * len(segments)
        for i, result in self.generate_stream(segments, attention=attention, generators=generators,
                                              max_active=max_active):
            results[i] = result
        return [r for r in results if r is not None]

    def generate_stream(self, segments: Sequence[Segment], *, attention: Any,
                        generators: Sequence[torch.Generator | None],
                        max_active: Width = None) -> Iterator[tuple[int, SegmentResult]]:
        """Speech tokens of ``segments`` by continuous batching: ``(i, result)`` for
        ``segments[i]`` as soon as it ends.

        At most ``max_active`` segments (default: all; a number, or a function of
        how many have ended) share the batch; when one ends the next joins. Each
        segment gets exactly the tokens :meth:`segment_chunks` would sample for it
        with the same generator (same voice, no cross-segment prompt), whatever
        shares its batch. ``result.generate_seconds`` is its share of the T3 time.
        Closing the iterator early stops generation and frees the KV cache.
        """
        if len(generators) != len(segments):
            raise ValueError(f"{len(segments)} segments but {len(generators)} generators")
        items, results = [], []
        for segment, generator in zip(segments, generators):
            text = self.text_tokens(segment)
            result = SegmentResult(text_tokens=int(text.size(-1)))
            results.append(result)
            items.append(BatchItem(self.t3_conditionals(None), text,
                                   self.length_limits(result.text_tokens), generator,
                                   self._length_guard()))
        with attention_implementation(self.t3, attention.attn_implementation):
            events = self._batch_loop.events(items, sampling=self.sampling,
                                             alignment=alignment_options(attention),
                                             max_active=max_active)
            try:
                for event in events:
                    result = results[event.position]
                    if event.token is not None:
                        result.speech_tokens.append(event.token)
                        continue
                    result.stopped_by = event.stopped_by or ""
                    result.generate_seconds = event.seconds
                    yield event.position, result
            finally:
                events.close()

    def decoded_chunks(self, segment: Segment, result: SegmentResult, *, chunk_size: Any,
                       context_window: Any) -> Iterator[EngineChunk]:
        """The audio of tokens generated earlier (:meth:`generate_batch`), chunk by
        chunk exactly as :meth:`segment_chunks` cuts and decodes them, so the audio
        is the same as if the segment had been streamed alone."""
        tokens = list(result.speech_tokens)
        rate = result.generate_seconds / len(tokens) if tokens else 0.0
        replay = SegmentResult(text_tokens=result.text_tokens)
        chunks = _SegmentChunks(self, segment, replay, chunk_size, context_window, rate)
        yield from chunks.feed(tokens)
        yield chunks.finish()

    def text_tokens(self, segment: Segment) -> torch.Tensor:
        """What T3 gets for ``segment``: its text tokens, two rows under CFG."""
        return text_token_tensor(self.tokenizer, segment.text, cfg=self.settings.cfg_weight > 0,
                                 device=self.t3.device, start_token=self.t3.hp.start_text_token,
                                 stop_token=self.t3.hp.stop_text_token)

    def _length_guard(self) -> tuple[float, float] | None:
        guard = self.settings.length_guard
        return (guard.min_ratio, guard.max_ratio) if guard is not None else None

    def _vocoder(self, segment: Segment) -> ChunkVocoder:
        seed = self.settings.seed
        return ChunkVocoder(self.s3gen, self.conds.gen, crossfade_ms=self.settings.crossfade_ms,
                            seed=None if seed is None else seed * 7919 + segment.index)

    def _decode(self, vocoder: ChunkVocoder, pending: list[int], chunk_index: int, context: int,
                generate_seconds: float, *, last: bool) -> EngineChunk:
        t0 = time.perf_counter()
        audio = self._watermark(vocoder.decode(decodable(pending), context))
        return EngineChunk(audio, chunk_index, len(pending), generate_seconds,
                           time.perf_counter() - t0, is_last=last)


class _SegmentChunks:
    """Cuts one segment's speech tokens into chunks as the policies say and decodes
    each with the segment's own vocoder: :meth:`feed` yields every full chunk,
    :meth:`finish` the last one with the held-back tail.

    ``seconds_per_token`` is for tokens generated earlier (in a batch): a chunk's
    generation time is then its share of the batch, not the time spent waiting
    for the tokens here.
    """

    def __init__(self, engine: ChatterboxEngine, segment: Segment, result: SegmentResult,
                 chunk_size: Any, context_window: Any, seconds_per_token: float | None = None) -> None:
        self.engine = engine
        self.result = result
        self.chunk_size = chunk_size
        self.context_window = context_window
        self.rate = seconds_per_token
        self.vocoder = engine._vocoder(segment)
        self.pending: list[int] = []
        self.chunk_index = 0
        self.started = time.perf_counter()

    def _spent(self) -> float:
        if self.rate is not None:
            return self.rate * len(self.pending)
        return time.perf_counter() - self.started

    def feed(self, tokens: Iterable[int]) -> Iterator[EngineChunk]:
        for token in tokens:
            self.result.speech_tokens.append(token)
            self.pending.append(token)
            if len(self.pending) < self.chunk_size(self.chunk_index):
                continue
            yield self.engine._decode(self.vocoder, self.pending, self.chunk_index,
                                      self.context_window(self.chunk_index), self._spent(), last=False)
            self.pending = []
            self.chunk_index += 1
            self.started = time.perf_counter()

    def finish(self) -> EngineChunk:
        last = self.engine._decode(self.vocoder, self.pending, self.chunk_index,
                                   self.context_window(self.chunk_index), self._spent(), last=True)
        last.audio = np.concatenate([last.audio, self.vocoder.flush()])
        return last
