"""The Chatterbox engine: one segment of text in, a stream of audio chunks out.

It drives upstream's modules (``T3``, ``S3Gen``, ``VoiceEncoder``, ``EnTokenizer``,
``Conditionals``) with seqopt's own token loop (:mod:`.t3_stream`) and chunk
decoder (:mod:`.vocoder`). The strategies from the config decide chunk sizes,
context windows, the attention implementation and what carries over between
segments; :mod:`.pipeline` puts planning and synthesis together.

Everything the engine runs on the model happens in short pieces of work
(:meth:`ChatterboxEngine.model_work`): one chunk of a streamed segment (its T3
steps, S3Gen decode and watermark), or one segment's end in batched generation.
Each piece holds the checkpoint's lock, runs under ``torch.inference_mode`` (no
autograd graph is ever built, so nothing accumulates from chunk to chunk) and
sets T3's attention implementation for itself, putting the previous one back
before the lock is released. Between pieces, while the caller holds a chunk,
nothing is held: several streams, in one thread or several, interleave chunk by
chunk and each gets exactly the audio it gets alone (seeded), and a stream that
is abandoned without being closed blocks nobody.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
#: Voices shorter than this get a :class:`VoiceWarning`: upstream's
#: ``ChatterboxTTS.ENC_COND_LEN`` (6 s), the most of the voice T3's speech
#: prompt is made from; S3Gen's reference takes up to ``DEC_COND_LEN`` (10 s).
MIN_VOICE_SECONDS = 6.0
#: How long a voice S3Gen's reference takes at most (upstream's ``DEC_COND_LEN``).
FULL_VOICE_SECONDS = 10.0
#: Shorter voices are refused: one speech token (25 per second). Upstream's own
#: preparation fails below about 0.03 s (S3Gen's mel padding is longer than the audio).
MIN_USABLE_VOICE_SECONDS = 0.04

T = TypeVar("T")


class SynthesisError(SeqoptError):
    """A segment could not be synthesized (after its retry and further splitting)."""


class VoiceError(SeqoptError):
    """The reference WAV given as the voice (``--voice``, ``synthesis.voice``) cannot be used."""


class VoiceWarning(UserWarning):
    """The voice can be used, but probably not well (too short to match the speaker)."""


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
        #: The one-segment loop for direct use (benchmarks); each stream makes its own.
        self._loop = SpeechTokenLoop(self.t3)
        self._batch_loop = BatchedSpeechTokenLoop(self.t3)
        #: What was read from ``settings.voice`` (``None``: the built-in voice).
        self.voice: VoiceFile | None = None
        if settings.watermark:  # load Perth now, not inside the first chunk's time
            loaded.watermarker()
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
        """The voice's conditionals, by upstream's own ``prepare_conditionals`` once
        :func:`check_voice_file` has found the file usable. Upstream's
        ``ChatterboxTTS`` is built without a watermarker (it needs none for this),
        so no second Perth network is loaded and nothing is printed."""
        self.voice = check_voice_file(wav_path)
        tts = self.loaded.to_tts(with_watermarker=False)
        try:
            with self.loaded.lock, torch.no_grad():  # conditionals without an autograd graph
                tts.prepare_conditionals(str(self.voice.path), exaggeration=exaggeration)
        except Exception as exc:  # noqa: BLE001 - the file passed the checks; say what failed
            raise VoiceError(
                f"cannot use voice file {wav_path!r} ({self.voice.describe()}): preparing the "
                f"voice failed with {type(exc).__name__}: {exc}") from exc
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

    @contextmanager
    def model_work(self, attention: Any = None) -> Iterator[None]:
        """One piece of work on the model: the checkpoint's lock held (shared by all
        engines on these modules), ``torch.inference_mode`` on, and T3 set to
        ``attention``'s implementation (if given) and put back before the lock is
        released. Reentrant in one thread."""
        with self.loaded.lock, torch.inference_mode():
            if attention is None:
                yield
            else:
                with attention_implementation(self.t3, attention.attn_implementation):
                    yield

    def _serialized(self, work: Iterator[T], attention: Any = None) -> Iterator[T]:
        """``work``'s items, each made inside one :meth:`model_work`; nothing is held
        while the caller has an item, so an abandoned iterator blocks no one (and
        closing it, or its garbage collection, needs no lock)."""
        try:
            while True:
                with self.model_work(attention):
                    try:
                        item = next(work)
                    except StopIteration:
                        return
                yield item
        finally:
            work.close()

    def _watermark(self, audio: np.ndarray) -> np.ndarray:
        """Perth's watermark on ``audio``, as upstream applies it to each waveform, and
        as upstream under ``torch.inference_mode``: with autograd on, each call's
        graph stays alive (about 1.9 MB per second of audio, never freed)."""
        if not self.settings.watermark or len(audio) == 0:
            return audio
        watermarker = self.loaded.watermarker()
        with torch.inference_mode():
            marked = watermarker.apply_watermark(audio, sample_rate=SAMPLE_RATE)
        return np.asarray(marked, dtype=np.float32)

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

        Each chunk is made in one :meth:`model_work` (T3 set to ``attention``'s
        implementation for it); nothing is held between chunks.
        """
        work = self._segment_work(segment, chunk_size=chunk_size, context_window=context_window,
                                  attention=attention, prompt_tokens=prompt_tokens,
                                  generator=generator, result=result)
        return self._serialized(work, attention)

    def _segment_work(self, segment: Segment, *, chunk_size: Any, context_window: Any, attention: Any,
                      prompt_tokens: Sequence[int] | None, generator: torch.Generator | None,
                      result: SegmentResult | None) -> Iterator[EngineChunk]:
        result = result if result is not None else SegmentResult()
        text = self.text_tokens(segment)
        result.text_tokens = int(text.size(-1))
        limits = self.length_limits(result.text_tokens)
        t3_cond = self.t3_conditionals(prompt_tokens)
        loop = SpeechTokenLoop(self.t3)  # its own: last_guard belongs to this segment
        tokens = loop.tokens(t3_cond, text, sampling=self.sampling, limits=limits,
                             generator=generator, alignment=alignment_options(attention),
                             length_guard=self._length_guard())
        chunks = _SegmentChunks(self, segment, result, chunk_size, context_window)
        try:
            yield from chunks.feed(tokens)
        finally:
            tokens.close()  # releases the KV cache when the caller stops early
        result.stopped_by = stop_reason(len(result.speech_tokens), limits, loop.last_guard)
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
        The work up to each segment's end is one :meth:`model_work`.
        """
        if len(generators) != len(segments):
            raise ValueError(f"{len(segments)} segments but {len(generators)} generators")
        return self._serialized(self._batch_work(segments, attention, generators, max_active), attention)

    def _batch_work(self, segments: Sequence[Segment], attention: Any,
                    generators: Sequence[torch.Generator | None],
                    max_active: Width) -> Iterator[tuple[int, SegmentResult]]:
        items, results = [], []
        for segment, generator in zip(segments, generators):
            text = self.text_tokens(segment)
            result = SegmentResult(text_tokens=int(text.size(-1)))
            results.append(result)
            items.append(BatchItem(self.t3_conditionals(None), text,
                                   self.length_limits(result.text_tokens), generator,
                                   self._length_guard()))
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
        is the same as if the segment had been streamed alone. Each chunk is one
        :meth:`model_work`."""
        return self._serialized(self._replay_work(segment, result, chunk_size, context_window))

    def _replay_work(self, segment: Segment, result: SegmentResult, chunk_size: Any,
                     context_window: Any) -> Iterator[EngineChunk]:
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


# -- the voice file ----------------------------------------------------------------------

#: Audio formats libsndfile (soundfile, what librosa reads with first) knows, for messages.
_KNOWN_FORMATS = "FLAC, OGG/Vorbis, MP3, AIFF"
#: RIFF and ``data`` sizes from this up mean "unknown length": streaming writers that
#: cannot seek put (nearly) 0xFFFFFFFF there (``seqopt speak -o -``: 0xFFFFFFFF and
#: 0xFFFFFFDB), others 0x7FFFF000 and the like; 0 means the same.
_STREAMED_WAV_SIZE = 0x7FFFF000
_TEXT_BYTES = b"\t\n\r\x0c" + bytes(range(0x20, 0x7f))


@dataclass(frozen=True)
class VoiceFile:
    """A reference WAV that passed :func:`check_voice_file`."""

    path: Path
    seconds: float
    sample_rate: int
    channels: int
    format: str  # soundfile's format and subtype, "WAV PCM_16"; "" when only librosa read it

    def describe(self) -> str:
        kind = f"{self.format}, " if self.format else ""
        return f"{kind}{self.seconds:.2f} s at {self.sample_rate} Hz, {self.channels} channel(s)"


def check_voice_file(wav_path: str | Path) -> VoiceFile:
    """What ``wav_path`` holds, or a :class:`VoiceError` saying exactly what is wrong
    with it: missing, a folder, not a regular or readable file, empty, a WAV cut
    short (its header promises more audio than the file holds), not an audio
    format this install reads, or no audio at all. A voice shorter than
    :data:`MIN_VOICE_SECONDS` is usable but gets a :class:`VoiceWarning`
    (``warnings.warn``; the CLI shows it as a note)."""
    path = Path(wav_path).expanduser()
    shown = str(wav_path)
    hint = f"give a WAV file of the speaker ({MIN_VOICE_SECONDS:.0f}-{FULL_VOICE_SECONDS:.0f} s of clear speech)"
    if not path.exists():
        where = path.parent if str(path.parent) not in ("", ".") else Path.cwd()
        extra = "" if where.is_dir() else f" (not even its folder {str(where)!r} exists)"
        raise VoiceError(f"voice file {shown!r} does not exist{extra}; {hint}")
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir()
                        if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"))
        listed = (f"; it holds {len(inside)} audio file(s), e.g. {inside[0]!r}: give one of them"
                  if inside else "")
        raise VoiceError(f"voice {shown!r} is a folder, not an audio file{listed}; {hint}")
    if not path.is_file():
        raise VoiceError(f"voice {shown!r} is not a regular file (a device, pipe or socket?); {hint}")
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        size = path.stat().st_size
    except OSError as exc:
        raise VoiceError(f"cannot read voice file {shown!r}: {exc.strerror or exc}") from None
    if size == 0:
        raise VoiceError(f"voice file {shown!r} is empty (0 bytes); {hint}")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        problem = _wav_truncation(path, size)
        if problem:
            raise VoiceError(f"voice file {shown!r} is a truncated WAV: {problem}; copy or export it again")
    info = _read_audio_info(path, shown, head)
    if info.seconds <= 0:
        after = _bytes_after_empty_data_chunk(path, size) if head[:4] == b"RIFF" else 0
        note = (f"; its header says 0 bytes of audio although {after:,} bytes follow it (a WAV "
                "whose writer never filled in its size?): save it again" if after else f"; {hint}")
        raise VoiceError(f"voice file {shown!r} holds no audio ({info.describe()}){note}")
    if info.seconds < MIN_USABLE_VOICE_SECONDS:
        raise VoiceError(f"voice file {shown!r} is too short to use ({info.describe()}; at least "
                         f"{MIN_USABLE_VOICE_SECONDS} s, one speech token); {hint}")
    if info.seconds < MIN_VOICE_SECONDS:
        warnings.warn(
            f"voice file {shown!r} is only {info.seconds:.2f} s long: Chatterbox builds T3's speech "
            f"prompt from up to {MIN_VOICE_SECONDS:.0f} s of the voice and S3Gen's reference from up "
            f"to {FULL_VOICE_SECONDS:.0f} s, so a voice this short matches the speaker poorly; "
            f"{MIN_VOICE_SECONDS:.0f}-{FULL_VOICE_SECONDS:.0f} s of clear speech is best",
            VoiceWarning, stacklevel=2)
    return info


def _read_audio_info(path: Path, shown: str, head: bytes) -> VoiceFile:
    """Duration and format through soundfile (libsndfile); for formats only librosa's
    fallback (audioread, e.g. ffmpeg) reads, by decoding the file."""
    import soundfile

    try:
        info = soundfile.info(str(path))
        return VoiceFile(path, float(info.frames) / info.samplerate if info.samplerate else 0.0,
                         int(info.samplerate), int(info.channels), f"{info.format} {info.subtype}")
    except Exception as exc:  # noqa: BLE001 - soundfile.LibsndfileError, RuntimeError, ...
        reason = str(exc).replace(f"Error opening '{path}': ", "").replace(str(path), "it")
    try:  # what librosa.load does next: audioread, which may have an ffmpeg backend
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's "PySoundFile failed" FutureWarning
            audio, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception:  # noqa: BLE001 - audioread.NoBackendError, EOFError, ...
        raise VoiceError(f"voice file {shown!r} {_not_audio(head)} (libsndfile: {reason}); give a "
                         f"WAV (or {_KNOWN_FORMATS}) file of the speaker") from None
    frames = audio.shape[-1] if audio.ndim else 0
    return VoiceFile(path, frames / rate if rate else 0.0, int(rate),
                     1 if audio.ndim < 2 else int(audio.shape[0]), "")


def _not_audio(head: bytes) -> str:
    """What a file that no audio reader accepted looks like, from its first bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        tag = _wav_format_tag(head)
        return ("is a WAV file in an encoding this install cannot decode"
                + (f" (format tag {tag:#06x})" if tag is not None else ""))
    if head[:4] == b"RIFF":
        return f"is a RIFF file of type {head[8:12].decode('latin-1')!r}, not a WAV"
    if not head.translate(None, _TEXT_BYTES):
        return "is a text file, not audio"
    return f"is not a WAV file or another audio format this install reads (it starts with {head[:8]!r})"


def _wav_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(id, declared size, offset of its body)`` of each RIFF chunk whose header is in ``data``."""
    offset = 12
    while offset + 8 <= len(data):
        ident, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        yield ident, size, offset + 8
        if ident == b"data":
            return
        offset += 8 + size + (size & 1)


def _wav_format_tag(head: bytes) -> int | None:
    for ident, _size, body in _wav_chunks(head):
        if ident == b"fmt " and body + 2 <= len(head):
            return int.from_bytes(head[body:body + 2], "little")
    return None


def _wav_truncation(path: Path, size: int) -> str:
    """Why the RIFF/WAVE file at ``path`` (``size`` bytes) is cut short, or ``""``.

    Its ``data`` chunk must start inside the file and hold the bytes its header
    declares; sizes of 0 or near 0xFFFFFFFF (a WAV streamed by a writer that could
    not seek back, e.g. saved from ``seqopt speak -o -``) mean "until the end" and
    are accepted.
    """
    with path.open("rb") as handle:
        data = handle.read(min(size, 1 << 20))  # headers end well before 1 MiB
    riff_size = int.from_bytes(data[4:8], "little")
    for ident, declared, body in _wav_chunks(data):
        if ident != b"data":
            continue
        if any(v == 0 or v >= _STREAMED_WAV_SIZE for v in (riff_size, declared)):
            return ""  # unknown length; a 0-byte ``data`` is reported when nothing is read
        present = size - body
        if present < declared:
            rate = _wav_byte_rate(data)
            seconds = f" ({present / rate:.2f} s of {declared / rate:.2f} s)" if rate else ""
            return (f"its header promises {declared:,} bytes of audio but the file holds only "
                    f"{max(present, 0):,}{seconds}")
        return ""
    if len(data) < size:  # a header chunk over 1 MiB: leave the verdict to the decoder
        return ""
    return f"it ends after {size:,} bytes, before its audio ('data' chunk) begins"


def _bytes_after_empty_data_chunk(path: Path, size: int) -> int:
    """Bytes after a ``data`` chunk that declares 0 bytes (0 if it declares more, or is absent)."""
    with path.open("rb") as handle:
        data = handle.read(min(size, 1 << 20))
    for ident, declared, body in _wav_chunks(data):
        if ident == b"data":
            return max(size - body, 0) if declared == 0 else 0
    return 0


def _wav_byte_rate(data: bytes) -> int:
    for ident, _size, body in _wav_chunks(data):
        if ident == b"fmt " and body + 12 <= len(data):
            return int.from_bytes(data[body + 8:body + 12], "little")
    return 0
