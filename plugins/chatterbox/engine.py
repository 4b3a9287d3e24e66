"""The Chatterbox engine: the worker that runs T3 steps and S3Gen calls on what it is given.

:class:`ChatterboxEngine` implements :class:`seqopt_core.engine.Engine` over
upstream's modules (``T3``, ``S3Gen``, ``VoiceEncoder``, ``EnTokenizer``,
``Conditionals``): a job becomes a T3 row (:meth:`ChatterboxEngine.open_batch`,
the one T3 step of :mod:`.t3_step`) and its tokens become audio chunk by chunk
(:meth:`ChatterboxEngine.decoder`: S3Gen through :mod:`.vocoder`, then Perth's
watermark). What runs when is the scheduler's decision
(:mod:`seqopt_core.scheduler`); the engine's own settings are
:class:`~.options.ChatterboxOptions` (``[engine.options]``).

Everything the engine runs on the model happens in short pieces of work
(:meth:`ChatterboxEngine.work`): the scheduler holds one per chunk of a streamed
segment (its T3 steps, S3Gen decode and watermark), per stretch of batched
steps up to a segment's end, and per decoded chunk of a batched segment. Each
piece holds the checkpoint's lock, runs under ``torch.inference_mode`` (no
autograd graph is ever built, so nothing accumulates from chunk to chunk) and
sets T3's attention implementation for itself, putting the previous one back
before the lock is released. Between pieces nothing is held: several streams,
in one thread or several, interleave piece by piece and each gets exactly the
audio it gets alone (seeded), and a stream that is abandoned blocks nobody.
"""

from __future__ import annotations

import contextlib
import math
import resource
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqopt_core import ConfigError, SeqoptError
from seqopt_core.engine import (AttentionSettings, DecodeCall, DecodedAudio, EngineRuntime, SegmentJob, TokenStep,
                               segment_seed)
from seqopt_core.errors import SynthesisError
from seqopt_core.types import Segment

from .attention_kernels import check_heads
from .checkpoint import LoadedCheckpoint, load_checkpoint
from .checkpoint.files import LAYOUTS
from .options import ChatterboxOptions
from .t3_batch import auto_batch_size, free_memory_bytes, is_out_of_memory, kv_cache_bytes_per_row
from .t3_step import COND_TOKENS_BOUND, BatchItem, T3Batch
from .t3_stream import AlignmentOptions, LengthLimits, SamplingOptions, english_text_ids, t3_text_tensor
from .s3gen_batch import RenderedRow, render_rows
from .vocoder import SAMPLE_RATE, ChunkRequest, ChunkVocoder, decodable
from .voice import VoiceError, VoiceFile, VoiceWarning, check_voice_file

HF_REPO = "ResembleAI/chatterbox"
ENGINE_NAME = "chatterbox"
#: Where each model's released files are on the Hugging Face Hub.
HF_REPOS = {"english": HF_REPO, "multilingual": HF_REPO, "turbo": "ResembleAI/chatterbox-turbo"}
#: Derived length cap: speech tokens per text token, plus this many.
LENGTH_MARGIN_TOKENS = 50
#: T3's learned speech positions (4096 + 2) bound any segment's speech tokens.
MAX_SPEECH_TOKENS = 4000


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


def download_released_checkpoint(model: str = "english") -> Path:
    """Fetch the released files of ``model`` (English: the five of ResembleAI/chatterbox,
    about 3.2 GB the first time) into the Hugging Face cache and return their folder."""
    from huggingface_hub import hf_hub_download

    path = None
    for name in LAYOUTS[model].files:
        path = hf_hub_download(repo_id=HF_REPOS[model], filename=name)
    assert path is not None
    return Path(path).parent


@contextmanager
def attention_implementation(t3: Any, name: str) -> Iterator[None]:
    """Run T3 with ``name`` attention and put the previous implementation back after
    (a custom kernel must be registered first: :attr:`AttentionSettings.setup`)."""
    previous = t3.tfmr.config._attn_implementation
    if name != previous:
        t3.tfmr.set_attn_implementation(name)
    try:
        yield
    finally:
        if t3.tfmr.config._attn_implementation != previous:
            t3.tfmr.set_attn_implementation(previous)


@contextmanager
def _stage_threads(device: torch.device, threads: int, stage: str) -> Iterator[None]:
    """This thread's torch threads for a stage that runs beside the other (CPU only):
    ``tokens`` gets half of ``threads`` (rounded down, at least 1), ``decode`` the rest."""
    if device.type != "cpu" or threads < 2:
        yield
        return
    share = max(1, threads // 2) if stage == "tokens" else max(1, threads - threads // 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(share)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def alignment_options(attention: AttentionSettings | None) -> AlignmentOptions | None:
    """The alignment guard's settings if the attention backend provides alignment."""
    if attention is None or not attention.provides_alignment:
        return None
    return AlignmentOptions(attention.aligned_heads, attention.repetition_run, attention.keep_all_layers)


class ChatterboxEngine:
    """Loaded Chatterbox modules plus the voice (implements :class:`seqopt_core.engine.Engine`).

    The English model; :class:`~.multilingual.ChatterboxMultilingualEngine` and
    :class:`~.turbo.ChatterboxTurboEngine` are the same worker on the Multilingual and Turbo
    models (what differs is in those modules).
    """

    sample_rate = SAMPLE_RATE
    #: The engine's name in the engine slot.
    name = ENGINE_NAME
    #: The checkpoint layout it loads (:data:`.checkpoint.files.LAYOUTS`).
    model = "english"
    #: Its ``[engine.options]`` model.
    options_type: type[ChatterboxOptions] = ChatterboxOptions
    #: Speech tokens the model's generate appends to a segment before S3Gen (Turbo's silence).
    end_tokens: tuple[int, ...] = ()

    def __init__(self, loaded: LoadedCheckpoint, options: ChatterboxOptions | None = None,
                 runtime: EngineRuntime | None = None) -> None:
        options = options if options is not None else self.options_type()
        self.loaded = loaded
        self.options = options
        self.runtime = runtime if runtime is not None else EngineRuntime()
        self.t3 = loaded.t3
        self.s3gen = loaded.s3gen
        self.tokenizer = loaded.tokenizer
        #: What was read from ``options.voice`` (``None``: the built-in voice).
        self.voice: VoiceFile | None = None
        if options.watermark:  # load Perth now, not inside the first chunk's time
            loaded.watermarker()
        if options.voice:
            self.conds = self._voice_conditionals(options.voice, options.exaggeration)
        elif loaded.conds is not None:
            self.conds = loaded.conds
        else:
            raise SeqoptError(
                f"{loaded.path} has no conds.pt (built-in voice): give a reference WAV with "
                "--voice ref.wav (engine.options.voice)")
        self.sampling = SamplingOptions(
            temperature=options.temperature, top_p=options.top_p, min_p=options.min_p,
            repetition_penalty=options.repetition_penalty, cfg_weight=options.cfg_weight)
        self._references = self._s3gen_references()
        self._set_up: set[int] = set()
        #: torch's threads in the process when the engine was made (what the stages divide).
        self._threads = torch.get_num_threads()

    @classmethod
    def load(cls, options: ChatterboxOptions | None = None,
             runtime: EngineRuntime | None = None) -> ChatterboxEngine:
        """Load the checkpoint ``options`` name (or the released one from Hugging Face)."""
        options = options if options is not None else cls.options_type()
        runtime = runtime if runtime is not None else EngineRuntime()
        device = pick_device(runtime.device)
        folder = Path(options.checkpoint) if options.checkpoint else download_released_checkpoint(cls.model)
        loaded = load_checkpoint(folder, device=device, dtype=torch_dtype(runtime.dtype), model=cls.model)
        return cls(loaded, options, runtime)

    def configured(self, options: ChatterboxOptions) -> ChatterboxEngine:
        """This engine with other options, on the same loaded modules."""
        kind = self.options_type
        options = kind.model_validate(options.model_dump() if not isinstance(options, kind) else options)
        if options == self.options:
            return self
        if options.checkpoint and Path(options.checkpoint).resolve() != Path(self.loaded.path).resolve():
            raise ConfigError(f"engine.options.checkpoint is {options.checkpoint!r}, but the engine given "
                              f"has {str(self.loaded.path)!r} loaded; load the engine from this config")
        return type(self)(self.loaded, options, self.runtime)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "device": str(self.t3.device), "dtype": self.runtime.dtype,
                "checkpoint": str(self.loaded.path), "scale": self.loaded.arch.scale,
                "random_weights": bool(self.loaded.random_weights),
                "tokenizer": str(Path(self.loaded.path) / LAYOUTS[self.model].tokenizer_files[0])}

    def cost_key(self) -> dict[str, Any]:
        """What the cost of a chunk depends on (a measured cost model is kept per key):
        the model's sizes, device, dtype and threads, and the options that change the work."""
        o = self.options
        first, rest = self._references
        cfg = self.t3.tfmr.config
        return {"name": self.name, "device": str(self.t3.device), "dtype": self.runtime.dtype,
                "t3": [cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads],
                "s3gen_parameters": sum(p.numel() for p in self.s3gen.parameters()),
                "threads": torch.get_num_threads(), "cfg": o.cfg_weight > 0, "watermark": o.watermark,
                "s3gen_cfm_steps": o.s3gen_cfm_steps,
                "prompt_tokens": [int(first["prompt_token"].size(1)), int(rest["prompt_token"].size(1))]}

    # -- voice -------------------------------------------------------------------

    def _voice_conditionals(self, wav_path: str, exaggeration: float) -> Any:
        """The voice's conditionals, by upstream's own ``prepare_conditionals`` once
        :func:`check_voice_file` has found the file usable. Upstream's
        ``ChatterboxTTS`` is built without a watermarker (it needs none for this),
        so no second Perth network is loaded and nothing is printed."""
        self.voice = check_voice_file(wav_path)
        tts = self.loaded.to_tts(with_watermarker=False)
        try:
            with self.loaded.lock, self.loaded.decode_lock, torch.no_grad():  # no autograd graph
                tts.prepare_conditionals(str(self.voice.path), exaggeration=exaggeration)
        except Exception as exc:  # noqa: BLE001 - the file passed the checks; say what failed
            raise VoiceError(
                f"cannot use voice file {wav_path!r} ({self.voice.describe()}): preparing the "
                f"voice failed with {type(exc).__name__}: {exc}") from exc
        return tts.conds

    def with_voice(self, wav_path: str | Path) -> ChatterboxEngine:
        """This engine speaking in the voice of ``wav_path`` (its conditionals prepared now,
        by upstream's ``prepare_conditionals``), on the same loaded model; a
        :class:`VoiceError` says what is wrong with an unusable file."""
        return self.configured(self.options.model_copy(update={"voice": str(wav_path)}))

    def voiced(self, job: SegmentJob) -> ChatterboxEngine:
        """The engine that makes ``job``'s rows: its own voice's (on this model), else this one."""
        engine = job.engine
        if engine is None:
            return self
        if not self.is_voice_of(engine):
            raise ValueError(f"segment job {job.key}: its engine ({type(engine).__name__}) is not a voice of "
                             "this engine; a batch holds the rows of one loaded model and one set of options, "
                             "in any voices (with_voice)")
        return engine

    def is_voice_of(self, engine: Any) -> bool:
        """Whether ``engine`` is this one or one of its voices: the same loaded model and the
        same options but for ``voice``, so its rows and chunks can share this engine's batches."""
        if not isinstance(engine, ChatterboxEngine) or engine.loaded is not self.loaded:
            return False
        return engine.options.model_copy(update={"voice": None}) == self.options.model_copy(update={"voice": None})

    def t3_conditionals(self, prompt_tokens: Sequence[int] | None) -> Any:
        """T3 conditionals for a segment: the voice's, with ``prompt_tokens`` (from the
        cross-segment strategy) appended to the end of its speech prompt."""
        from chatterbox.models.t3.modules.cond_enc import T3Cond

        base = self.conds.t3
        emotion = self.options.exaggeration * torch.ones(1, 1, 1)
        prompt = base.cond_prompt_speech_tokens
        if prompt_tokens:
            tail = torch.tensor([list(prompt_tokens)], dtype=prompt.dtype, device=prompt.device)
            prompt = torch.cat([prompt, tail], dim=1)[:, -prompt.size(1):]
        return T3Cond(speaker_emb=base.speaker_emb, cond_prompt_speech_tokens=prompt,
                      emotion_adv=emotion).to(device=self.t3.device)

    # -- lengths -----------------------------------------------------------------

    def length_limits(self, text_tokens: int) -> LengthLimits:
        o = self.options
        if o.benchmark_tokens_per_text_token is not None:
            n = max(1, math.ceil(text_tokens * o.benchmark_tokens_per_text_token))
            return LengthLimits(min(n, MAX_SPEECH_TOKENS), ignore_stop=True)
        if o.max_new_tokens is not None:
            return LengthLimits(o.max_new_tokens)
        derived = math.ceil(text_tokens * o.speech_tokens_per_text_token) + LENGTH_MARGIN_TOKENS
        return LengthLimits(min(derived, MAX_SPEECH_TOKENS))

    def text_ids(self, segment: Segment) -> torch.Tensor:
        """``segment``'s text as the model's generate tokenizes it, ``(1, n)``."""
        return english_text_ids(self.tokenizer, segment.text)

    def text_tokens(self, segment: Segment) -> torch.Tensor:
        """What T3 gets for ``segment``: its text tokens, two rows under CFG."""
        return t3_text_tensor(self.text_ids(segment), cfg=self.options.cfg_weight > 0,
                              device=self.t3.device, start_token=self.t3.hp.start_text_token,
                              stop_token=self.t3.hp.stop_text_token)

    def _length_guard(self) -> tuple[float, float] | None:
        guard = self.options.length_guard
        return (guard.min_ratio, guard.max_ratio) if guard is not None else None

    # -- the Engine protocol -----------------------------------------------------------

    def check_attention(self, attention: AttentionSettings) -> None:
        """The config load checked the heads against the released T3 (30 layers of 16);
        a smaller checkpoint is only known now: refuse heads it lacks."""
        if not (attention.provides_alignment and attention.aligned_heads):
            return
        cfg = self.t3.tfmr.config
        try:
            check_heads(attention.aligned_heads, cfg.num_hidden_layers, cfg.num_attention_heads)
        except ValueError as exc:
            raise ConfigError(f"attention.options.aligned_heads: {exc} (checkpoint {self.loaded.path}); "
                              "choose (layer, head) pairs within it, counted from 0") from None

    @contextmanager
    def work(self, attention: AttentionSettings | None = None, *, stage: str = "all") -> Iterator[None]:
        """One piece of work on the model: the stage's lock held (shared by all engines
        on these modules), ``torch.inference_mode`` on, and T3 set to ``attention``'s
        implementation (if given) and put back before the lock is released.
        Reentrant in one thread.

        ``stage``: ``all`` holds both locks (T3's, then S3Gen's); ``tokens`` only T3's
        (:attr:`LoadedCheckpoint.lock`), ``decode`` only S3Gen's and the watermark's
        (:attr:`LoadedCheckpoint.decode_lock`), so one thread's T3 steps run while
        another decodes (the scheduler's overlap). On a CPU the two stages then
        divide torch's threads between them (T3 half, rounded down, at least one;
        the decode the rest), each in its own thread."""
        if stage not in ("all", "tokens", "decode"):
            raise ValueError(f"unknown stage {stage!r}; use all, tokens or decode")
        locks = {"all": (self.loaded.lock, self.loaded.decode_lock), "tokens": (self.loaded.lock,),
                 "decode": (self.loaded.decode_lock,)}[stage]
        with contextlib.ExitStack() as held:
            for lock in locks:
                held.enter_context(lock)
            held.enter_context(torch.inference_mode())
            if stage != "all":
                held.enter_context(_stage_threads(self.t3.device, self._threads, stage))
            if attention is None or stage == "decode":
                yield
                return
            if attention.setup is not None and id(attention.setup) not in self._set_up:
                attention.setup()
                self._set_up.add(id(attention.setup))
            with attention_implementation(self.t3, attention.attn_implementation):
                yield

    def prefers_overlap(self) -> bool:
        """Whether ``synthesis.overlap = "auto"`` turns the overlap on: on a GPU (T3's
        steps are bound by kernel launches, which a second thread keeps issuing while
        S3Gen runs); not on a CPU, where both stages need the same cores
        (docs/engine.md, "Overlap")."""
        return self.t3.device.type == "cuda"

    def decode_batch_capacity(self) -> int:
        """Segments ``synthesis.decode_batch_size = "auto"`` decodes together: 8 on a GPU
        (S3Gen's call is bound by launches, so rows cost little), 1 on a CPU (a batched
        call costs what its rows cost one at a time; docs/benchmarks.md, "bench_s3gen")."""
        return 8 if self.t3.device.type == "cuda" else 1

    def open_batch(self, attention: AttentionSettings | None = None) -> ChatterboxBatch:
        return ChatterboxBatch(self, T3Batch(self.t3, self.sampling, alignment_options(attention)))

    def batch_item(self, job: SegmentJob) -> BatchItem:
        """What T3 needs for ``job``: conditionals, text tokens, limits, its own generator."""
        text = self.text_tokens(job.segment)
        return BatchItem(self.t3_conditionals(job.prompt_tokens), text,
                         self.length_limits(int(text.size(-1))), self.row_generator(job), self._length_guard())

    def row_generator(self, job: SegmentJob) -> torch.Generator:
        """``job``'s own sampling generator (from its segment's seed, else a random one).
        Each row draws from a generator of its own, never from torch's global RNG, which
        S3Gen's seeded noise uses (a decode may run in another thread meanwhile)."""
        seed = segment_seed(job.seed, job.segment.index) if job.seed is not None else secrets.randbits(63)
        return torch.Generator(device=self.t3.device).manual_seed(seed)

    def decoder(self, job: SegmentJob, *, crossfade_ms: float) -> ChatterboxDecoder:
        seed = job.seed
        first, rest = self._references
        vocoder = ChunkVocoder(self.s3gen, first, crossfade_ms=crossfade_ms,
                               n_cfm_timesteps=self.options.s3gen_cfm_steps,
                               seed=None if seed is None else seed * 7919 + job.segment.index,
                               end_tokens=self.end_tokens)
        return ChatterboxDecoder(self, vocoder, rest)

    def decode_batch(self, calls: Sequence[DecodeCall]) -> list[DecodedAudio]:
        """Chunks of several segments with one S3Gen flow-matching call (implements
        :class:`seqopt_core.engine.BatchDecodingEngine`); run inside :meth:`work`.

        Each result is what ``call.decoder.decode(...)`` returns alone, within float32
        tolerance when seeded (see :mod:`.s3gen_batch`), and each decoder moves on
        the same way. Rows with different voice references (``s3gen_short_prompt``)
        share the call, padded. A result's ``vocoder_seconds`` is its share of the
        flow call (split by the rows' mel frames, voice prompt included) plus its own
        noise draw, HiFT and trimming; ``decode_seconds`` adds its watermark.
        """
        decoders = self._own_decoders(calls)
        started = time.perf_counter()
        requests = [d._prepare(c.tokens, c.context, last=c.last) for d, c in zip(decoders, calls, strict=True)]
        rendering = [(d, r) for d, r in zip(decoders, requests, strict=True) if r is not None]
        prepare_share = (time.perf_counter() - started) / len(calls) if calls else 0.0
        rendered = iter(render_rows(self.s3gen, [d.vocoder.render_row(r) for d, r in rendering]))
        results = []
        for decoder, call, request in zip(decoders, calls, requests, strict=True):
            row = next(rendered) if request is not None else None
            seconds = prepare_share + (row.seconds if row is not None else 0.0)
            results.append(decoder._finish(request, row, last=call.last, seconds=seconds))
        return results

    def _own_decoders(self, calls: Sequence[DecodeCall]) -> list[ChatterboxDecoder]:
        """The calls' decoders, each one of this engine's and at most once."""
        seen: set[int] = set()
        decoders = []
        for i, call in enumerate(calls):
            decoder = call.decoder
            if not isinstance(decoder, ChatterboxDecoder) or not self.is_voice_of(decoder.engine):
                raise ValueError(f"decode_batch call {i}: its decoder ({type(decoder).__name__}) was not made "
                                 "by this engine or one of its voices (with_voice: the same model and options); "
                                 "decode each engine's chunks with that engine")
            if id(decoder) in seen:
                raise ValueError(f"decode_batch call {i}: its decoder appears twice; a segment's chunks "
                                 "follow each other (the second reads the first's audio): one per batch")
            seen.add(id(decoder))
            decoders.append(decoder)
        return decoders

    def _s3gen_references(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """S3Gen's voice reference for each segment's first chunk and for the chunks after
        it (``s3gen_prompt_seconds``, ``s3gen_short_prompt``); the same for every segment."""
        o = self.options
        short = self.s3gen_reference(o.s3gen_prompt_seconds)
        full = self.conds.gen
        first = short if short is not None else full
        rest = short if short is not None and o.s3gen_short_prompt == "every_chunk" else full
        return first, rest

    def s3gen_reference(self, seconds: float | None) -> dict[str, Any] | None:
        """The voice's S3Gen reference cut to its last ``seconds`` (whole speech tokens, two
        mel frames each), or ``None`` for the whole of it (or when it is no longer)."""
        if seconds is None:
            return None
        ref = self.conds.gen
        tokens = ref["prompt_token"]
        keep = max(1, int(round(seconds * 25)))
        if keep >= tokens.size(1):
            return None
        cut = dict(ref)
        cut["prompt_token"] = tokens[:, -keep:]
        cut["prompt_token_len"] = torch.full_like(torch.as_tensor(ref["prompt_token_len"]), keep)
        feat = ref["prompt_feat"]
        cut["prompt_feat"] = feat[:, -2 * keep:]
        if ref.get("prompt_feat_len") is not None:
            cut["prompt_feat_len"] = torch.full_like(torch.as_tensor(ref["prompt_feat_len"]), 2 * keep)
        return cut

    def kv_bytes_per_segment(self, segment: Segment) -> int:
        """KV-cache bytes one segment needs in a batch, at its longest: its rows (2
        under CFG) x :func:`.t3_batch.kv_cache_bytes_per_row` over conditioning, text
        and the most speech tokens it may generate."""
        limit = self.length_limits(segment.tokens).max_new_tokens
        tokens = COND_TOKENS_BOUND + segment.tokens + 2 + limit
        rows = 2 if self.options.cfg_weight > 0 else 1
        return rows * kv_cache_bytes_per_row(self.t3.tfmr.config, next(self.t3.tfmr.parameters()).dtype, tokens)

    def batch_capacity(self, jobs: Sequence[SegmentJob]) -> int:
        """As many of the longest segment's KV caches as fit in the device's free
        memory (see :func:`.t3_batch.auto_batch_size`)."""
        if not jobs:
            return 1
        device = self.t3.device
        need = max(self.kv_bytes_per_segment(j.segment) for j in jobs)
        return auto_batch_size(free_memory_bytes(device), need, device_type=device.type)

    def speech_token_limit(self, segment: Segment, text_tokens: int | None = None) -> int:
        """The most speech tokens ``segment`` may get (exactly this many in benchmark mode)."""
        n = text_tokens if text_tokens is not None else int(self.text_tokens(segment).size(-1))
        return self.length_limits(n).max_new_tokens

    #: How an out-of-memory error is recognised (tests replace it to simulate one).
    is_out_of_memory = staticmethod(is_out_of_memory)

    def reset_peak_memory(self) -> None:
        if self.t3.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.t3.device)

    def peak_memory_bytes(self) -> int | None:
        device = self.t3.device
        if device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(device))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return int(rss if sys.platform == "darwin" else rss * 1024)

    def watermark(self, audio: np.ndarray) -> np.ndarray:
        """Perth's watermark on ``audio``, as upstream applies it to each waveform, and
        as upstream under ``torch.inference_mode``: with autograd on, each call's
        graph stays alive (about 1.9 MB per second of audio, never freed)."""
        if not self.options.watermark or len(audio) == 0:
            return audio
        watermarker = self.loaded.watermarker()
        with torch.inference_mode():
            marked = watermarker.apply_watermark(audio, sample_rate=SAMPLE_RATE)
        return np.asarray(marked, dtype=np.float32)


class ChatterboxBatch:
    """A :class:`.t3_step.T3Batch` whose rows are scheduler jobs (implements
    :class:`seqopt_core.engine.TokenBatch`)."""

    def __init__(self, engine: ChatterboxEngine, batch: T3Batch) -> None:
        self.engine = engine
        self.t3_batch = batch

    @property
    def rows(self) -> int:
        return self.t3_batch.rows

    def step(self, joining: Sequence[SegmentJob] = ()) -> list[TokenStep]:
        # each row's key is its job, so every step names the job it belongs to
        steps = self.t3_batch.step([(job, self.engine.voiced(job).batch_item(job)) for job in joining])
        return [TokenStep(row.key, row.token, row.finished) for row in steps]

    def drop(self, jobs: Sequence[SegmentJob]) -> None:
        """These jobs' rows leave the batch now (see :meth:`.t3_step.T3Batch.drop`)."""
        self.t3_batch.drop(list(jobs))

    def close(self) -> None:
        self.t3_batch.close()


class ChatterboxDecoder:
    """One segment's S3Gen state, then Perth's watermark (implements
    :class:`seqopt_core.engine.ChunkDecoder`). :meth:`decode` is a batch of one of
    :meth:`ChatterboxEngine.decode_batch`."""

    def __init__(self, engine: ChatterboxEngine, vocoder: ChunkVocoder,
                 later_reference: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.vocoder = vocoder
        vocoder.carry_source = engine.options.s3gen_carry_source
        #: The S3Gen reference of the chunks after the first (``s3gen_short_prompt``).
        self.later_reference = later_reference if later_reference is not None else vocoder.ref_dict

    def decode(self, tokens: Sequence[int], context: int, *, last: bool) -> DecodedAudio:
        return self.engine.decode_batch([DecodeCall(self, tuple(tokens), context, last)])[0]

    def _prepare(self, tokens: Sequence[int], context: int, *, last: bool = False) -> ChunkRequest | None:
        """This chunk's S3Gen call (``None``: no decodable token and no end tokens, no call);
        ``last`` ends the segment (the vocoder's end tokens follow: Turbo's)."""
        return self.vocoder.prepare(decodable(tokens), context, last=last)

    def _finish(self, request: ChunkRequest | None, rendered: RenderedRow | None, *,
                last: bool, seconds: float) -> DecodedAudio:
        """The chunk's audio from its rendered call: trimmed and crossfaded, watermarked,
        the held-back tail added if ``last``. ``seconds`` is the vocoder time so far."""
        started = time.perf_counter()
        audio = np.zeros(0, dtype=np.float32)
        if request is not None and rendered is not None:
            audio = self.vocoder.finish(request, rendered)
            self.vocoder.ref_dict = self.later_reference  # the chunks after this one
        vocoder_seconds = seconds + time.perf_counter() - started
        audio = self.engine.watermark(audio)
        decode_seconds = seconds + time.perf_counter() - started
        if last:  # the held-back crossfade tail, as it is
            audio = np.concatenate([audio, self.vocoder.flush()])
        return DecodedAudio(audio, vocoder_seconds, decode_seconds)


__all__ = ["ChatterboxEngine", "SynthesisError", "VoiceError", "VoiceWarning", "attention_implementation",
           "check_voice_file", "pick_device"]
