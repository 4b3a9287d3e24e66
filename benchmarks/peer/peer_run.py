"""Run the real chatterbox-streaming 0.1.2 (``ChatterboxTTS.generate_stream``) on given texts, timed.

Runs in the peer venv (``bash benchmarks/peer/make_peer_venv.sh``), on a folder
of ``.pt`` files (``benchmarks/peer/convert_checkpoint.py``), as the peer
contender of ``benchmarks/bench_engine.py --peer``; it can also run by hand::

    benchmarks/.cache/peer_venv/bin/python benchmarks/peer/peer_run.py \\
        --checkpoint benchmarks/.cache/peer_ck_full --text "Hello there." --out /tmp/peer.json

Nothing of the fork is changed or copied: its own ``generate_stream`` runs with
its defaults (chunk 25 speech tokens, context window 50, 20 ms fade-in, the
built-in voice of ``conds.pt``, temperature 0.8, CFG 0.5, its sampling: top-p 0.8,
repetition penalty 2.0), and this script only wraps three of the loaded model's
attributes to time them: ``model.inference_stream`` (T3: the time spent producing
each chunk of tokens, the prompt prefill in the first), ``model.s3gen.inference``
(each S3Gen call and the tokens it rendered, context included) and
``model.watermarker.apply_watermark``. The audio is consumed as a player would:
each chunk's arrival time and length give time to first audio (TTFA), RTF (wall /
audio seconds) and the playback stalls, computed by seqopt's own
``playback_stalls`` (``seqopt_core/harness/stats.py``, loaded by its path: it
imports only the standard library, so the peer venv needs no seqopt).

**Benchmark length mode** (``--tokens-per-text-token R``, as bench_engine's):
random weights never emit a sensible stop token, so the fork would sample to its
hard-coded ``max_new_tokens=1000``. Instead exactly ``N = ceil(R x text tokens)``
speech tokens are sampled (text tokens as T3 sees them: the fork's ``punc_norm``
and tokenizer, start and stop token included; seqopt counts them the same way).
The fork builds its ``RepetitionPenaltyLogitsProcessor`` from
``transformers.generation.logits_process`` at every call; for the run that class
is replaced by a subclass that masks the stop token out of the first N draws and
forces it at draw N + 1, before applying the penalty as usual; the
``max_new_tokens`` the fork passes is raised to N + 1. The fork's loop thus ends
as on a real stop, yielding its last partial chunk (at ``max_new_tokens`` it would
drop it). Costs against seqopt's N draws: one more T3 step (the forced stop's).
When N is a multiple of the chunk size the fork would yield a chunk holding only
the stop token and vocode just its context for no audio; the wrapper does not
pass such a chunk on, so both contenders make ceil(N / chunk) S3Gen calls.
Without ``--tokens-per-text-token`` the fork samples until its stop token (real
weights).

**Special ids** (random weights only): T3's vocabulary has 8,194 ids, S3Gen's
6,561; real weights never sample the others (start/stop of speech, padding)
inside speech, random ones do (about one token in five). The fork's
``drop_invalid_tokens`` only cuts at the first start and stop tokens, so S3Gen
would get the others and fail on its embedding (or cut the chunk at a sampled
start token). The fork's chunk step therefore gets, as ``chatterbox.tts``'s
``drop_invalid_tokens``, the rule seqopt and chatterbox-tts 0.1.7 apply: keep
the ids below 6,561. Nothing else in its chunk step changes. One effect remains:
the fork crops each chunk's re-rendered context by the number of context tokens
*before* that filter, so with special ids in the context it cuts 40 ms of new
audio per special id, and its chunks come out shorter than its decoded tokens
(``audio_seconds`` < ``decoded_audio_seconds`` = decodable tokens x 40 ms; real
weights sample no special ids, and there both agree). Compare wall time and TTFA,
or RTF per decoded second, rather than its own ``rtf``.

``--no-watermark`` (default; bench_engine runs seqopt with the watermark off)
replaces the fork's Perth watermarker by a pass-through; ``--watermark`` keeps it,
as the fork always runs, and times it.

Writes one JSON file (``--out``): versions, settings, model load, the untimed
warm-up and, per text, one record per repeat.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
STATS_FILE = REPO_ROOT / "seqopt_core" / "harness" / "stats.py"
PEER_DISTRIBUTION = "chatterbox-streaming"
#: S3Gen's vocabulary: T3 ids from here on are special (start/stop of speech, padding).
SPEECH_VOCAB = 6561
#: Audio one speech token stands for (S3 tokens run at 25 per second).
SECONDS_PER_TOKEN = 1 / 25
VERSIONED = (PEER_DISTRIBUTION, "torch", "transformers", "diffusers", "librosa", "numpy",
             "resemble-perth", "s3tokenizer", "safetensors", "tokenizers")


def load_playback_stalls() -> Callable[[list[tuple[float, float]]], dict[str, float | int]]:
    """seqopt's ``playback_stalls``, from its file (the module imports only the standard library)."""
    spec = importlib.util.spec_from_file_location("seqopt_harness_stats", STATS_FILE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {STATS_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.playback_stalls


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def peak_rss_bytes() -> int:
    """The process's peak resident memory (``ru_maxrss``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --- benchmark length mode -----------------------------------------------------------


@dataclass
class LengthControl:
    """How many speech tokens the current generation samples before its stop token.

    ``target`` None: the fork's own stopping (its stop token or ``max_new_tokens``).
    Otherwise draws ``0 .. target - 1`` have the stop token masked out and draw
    ``target`` is forced to it. ``draws`` counts the draws of the current generation.
    """

    stop_token: int
    target: int | None = None
    draws: int = 0

    def reset(self, target: int | None) -> None:
        self.target, self.draws = target, 0

    def apply(self, scores: Any) -> Any:
        if self.target is not None:
            if self.draws < self.target:
                scores[:, self.stop_token] = -float("inf")
            else:
                scores.fill_(-float("inf"))
                scores[:, self.stop_token] = 0.0
        self.draws += 1
        return scores


def keep_decodable(tokens: Any) -> Any:
    """``tokens`` (1-D, or one row) without T3's special ids: what S3Gen can render."""
    row = tokens.reshape(-1)
    return row[(row >= 0) & (row < SPEECH_VOCAB)]


def install_decodable_filter() -> None:
    """The fork's chunk step filters special ids as seqopt does (see the module doc)."""
    import chatterbox.tts as fork_tts

    fork_tts.drop_invalid_tokens = keep_decodable


def install_length_control(control: LengthControl) -> None:
    """Make the fork's repetition-penalty processor apply ``control`` first (see the module doc)."""
    import transformers.generation.logits_process as lp

    base = lp.RepetitionPenaltyLogitsProcessor
    if getattr(base, "seqopt_length_control", None) is not None:
        base.seqopt_length_control = control
        return

    class LengthControlledRepetitionPenalty(base):  # type: ignore[misc, valid-type]
        """The fork's repetition penalty, after :class:`LengthControl` masks or forces the stop token."""

        seqopt_length_control = control

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            return super().__call__(input_ids, type(self).seqopt_length_control.apply(scores))

    lp.RepetitionPenaltyLogitsProcessor = LengthControlledRepetitionPenalty


# --- timing the fork's stages --------------------------------------------------------


@dataclass
class Chunk:
    """One audio chunk the fork yielded, as a player received it."""

    ready_at: float  # seconds after generate_stream was called
    audio_seconds: float
    speech_tokens: int  # new tokens T3 sampled for it (the forced stop not counted)
    decodable_tokens: int  # of those, the ones S3Gen renders (special ids left out)
    t3_seconds: float  # producing its tokens (the first: prompt prefill included)
    s3gen_seconds: float  # S3Gen calls since the previous chunk
    s3gen_tokens: int  # tokens those calls rendered, context included
    watermark_seconds: float


@dataclass
class StageTimes:
    """What the wrappers measured since the last chunk went out (then moved into a :class:`Chunk`)."""

    t3_seconds: float = 0.0
    speech_tokens: int = 0
    decodable_tokens: int = 0
    s3gen_seconds: float = 0.0
    s3gen_tokens: int = 0
    s3gen_calls: int = 0
    watermark_seconds: float = 0.0
    s3gen_call_seconds: list[float] = field(default_factory=list)


class PassThroughWatermarker:
    """Stands in for Perth: returns the audio unchanged (seqopt's benchmark runs without it)."""

    def apply_watermark(self, wav: Any, sample_rate: int) -> Any:  # noqa: ARG002 - Perth's signature
        return wav


class InstrumentedFork:
    """A loaded ``ChatterboxTTS`` of the fork with its T3 stream, S3Gen call and watermark timed."""

    def __init__(self, model: Any, *, chunk_size: int, context_window: int, watermark: bool) -> None:
        self.model = model
        self.chunk_size = chunk_size
        self.context_window = context_window
        self.stop_token = int(model.t3.hp.stop_speech_token)
        self.control = LengthControl(self.stop_token)
        install_length_control(self.control)
        install_decodable_filter()
        self.pending = StageTimes()
        self.totals = StageTimes()
        if not watermark:
            model.watermarker = PassThroughWatermarker()
        self._wrap_stream(model)
        self._wrap_s3gen(model.s3gen)
        self._wrap_watermark(model.watermarker)

    # the wrappers -------------------------------------------------------------------

    def _wrap_stream(self, model: Any) -> None:
        original = model.inference_stream

        def timed_stream(**kwargs: Any) -> Iterator[Any]:
            if self.control.target is not None:
                kwargs["max_new_tokens"] = self.control.target + 1
            tokens = original(**kwargs)
            while True:
                started = time.perf_counter()
                try:
                    chunk = next(tokens)
                except StopIteration:
                    self.pending.t3_seconds += time.perf_counter() - started
                    return
                self.pending.t3_seconds += time.perf_counter() - started
                stops = int((chunk == self.stop_token).sum())
                self.pending.speech_tokens += int(chunk.size(-1)) - stops
                self.pending.decodable_tokens += int(keep_decodable(chunk).numel())
                if stops and int(chunk.size(-1)) == stops:
                    continue  # only the stop token: no new audio (see the module doc)
                yield chunk

        model.inference_stream = timed_stream

    def _wrap_s3gen(self, s3gen: Any) -> None:
        original = s3gen.inference

        def timed_inference(*args: Any, **kwargs: Any) -> Any:
            tokens = kwargs.get("speech_tokens", args[0] if args else None)
            started = time.perf_counter()
            out = original(*args, **kwargs)
            seconds = time.perf_counter() - started
            self.pending.s3gen_seconds += seconds
            self.pending.s3gen_calls += 1
            self.pending.s3gen_call_seconds.append(seconds)
            self.pending.s3gen_tokens += int(tokens.size(-1)) if tokens is not None else 0
            return out

        s3gen.inference = timed_inference

    def _wrap_watermark(self, watermarker: Any) -> None:
        original = watermarker.apply_watermark

        def timed_watermark(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            out = original(*args, **kwargs)
            self.pending.watermark_seconds += time.perf_counter() - started
            return out

        watermarker.apply_watermark = timed_watermark

    # one text -----------------------------------------------------------------------

    def text_tokens(self, text: str) -> int:
        """Text tokens as the fork's T3 sees ``text``: ``punc_norm``, its tokenizer, start and stop."""
        from chatterbox.tts import punc_norm

        return int(self.model.tokenizer.text_to_tokens(punc_norm(text)).size(-1)) + 2

    def run(self, text: str, *, seed: int, tokens_per_text_token: float | None) -> dict[str, Any]:
        """Stream ``text`` once through the fork's ``generate_stream``; the record of the run."""
        import torch

        text_tokens = self.text_tokens(text)
        target = (max(1, math.ceil(text_tokens * tokens_per_text_token))
                  if tokens_per_text_token is not None else None)
        self.control.reset(target)
        self.pending = StageTimes()
        torch.manual_seed(seed)
        sample_rate = self.model.sr
        chunks: list[Chunk] = []
        fork_metrics: Any = None
        started = time.perf_counter()
        for audio, fork_metrics in self.model.generate_stream(
                text, chunk_size=self.chunk_size, context_window=self.context_window, print_metrics=False):
            ready = time.perf_counter() - started
            p = self.pending
            chunks.append(Chunk(ready, audio.shape[-1] / sample_rate, p.speech_tokens, p.decodable_tokens,
                                p.t3_seconds, p.s3gen_seconds, p.s3gen_tokens, p.watermark_seconds))
            self._carry(p)
        wall = time.perf_counter() - started
        tail = self.pending  # T3's last step after the final chunk (the stop check), if any
        self._carry(tail)
        return self._record(text, text_tokens, target, chunks, wall, fork_metrics, tail)

    def _carry(self, p: StageTimes) -> None:
        """Add ``p`` to the run's totals and start a new pending record."""
        t = self.totals
        t.t3_seconds += p.t3_seconds
        t.speech_tokens += p.speech_tokens
        t.decodable_tokens += p.decodable_tokens
        t.s3gen_seconds += p.s3gen_seconds
        t.s3gen_tokens += p.s3gen_tokens
        t.s3gen_calls += p.s3gen_calls
        t.watermark_seconds += p.watermark_seconds
        t.s3gen_call_seconds.extend(p.s3gen_call_seconds)
        self.pending = StageTimes()

    def _record(self, text: str, text_tokens: int, target: int | None, chunks: list[Chunk],
                wall: float, fork_metrics: Any, tail: StageTimes) -> dict[str, Any]:
        totals, self.totals = self.totals, StageTimes()
        audio = sum(c.audio_seconds for c in chunks)
        t3 = totals.t3_seconds
        decode = totals.s3gen_seconds + totals.watermark_seconds
        return {
            "chars": len(text),
            "text_tokens": text_tokens,
            "target_speech_tokens": target,
            "speech_tokens": totals.speech_tokens,
            "stopped_by": "benchmark_length" if target is not None else "fork",
            "time_to_first_audio": chunks[0].ready_at if chunks else None,
            "wall_seconds": wall,
            "audio_seconds": audio,
            "rtf": wall / audio if audio else None,
            "decodable_tokens": totals.decodable_tokens,
            "decoded_audio_seconds": totals.decodable_tokens * SECONDS_PER_TOKEN,
            "chunks": len(chunks),
            "s3gen_calls": totals.s3gen_calls,
            "s3gen_tokens": totals.s3gen_tokens,
            "t3_seconds": t3,
            "s3gen_seconds": totals.s3gen_seconds,
            "watermark_seconds": totals.watermark_seconds,
            "decode_seconds": decode,
            # the fork runs T3 and S3Gen one after the other: nothing overlaps
            "overlap_seconds": max(0.0, t3 + decode - wall),
            "s3gen_call_seconds": totals.s3gen_call_seconds,
            "first_chunk_t3_seconds": chunks[0].t3_seconds if chunks else None,
            "first_chunk_s3gen_seconds": chunks[0].s3gen_seconds if chunks else None,
            "t3_seconds_after_last_chunk": tail.t3_seconds,
            "per_chunk": [asdict(c) for c in chunks],
            "peak_memory_bytes": peak_rss_bytes(),
            "fork_metrics": (None if fork_metrics is None else
                             {k: getattr(fork_metrics, k) for k in
                              ("latency_to_first_chunk", "rtf", "total_generation_time",
                               "total_audio_duration", "chunk_count")}),
            **PLAYBACK_STALLS([(c.ready_at, c.audio_seconds) for c in chunks]),
        }


PLAYBACK_STALLS = load_playback_stalls()


# --- command line --------------------------------------------------------------------


def read_texts(args: argparse.Namespace) -> dict[str, str]:
    texts: dict[str, str] = {}
    if args.texts_json:
        data = json.loads(Path(args.texts_json).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise SystemExit(f"error: {args.texts_json} must hold a JSON object of label -> text")
        texts.update(data)
    for i, text in enumerate(args.text or [], start=1):
        texts[f"text{i}"] = text
    if not texts and not args.serve:
        raise SystemExit("error: give --text TEXT or --texts-json FILE (or --serve)")
    return texts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="folder of the fork's .pt files (benchmarks/peer/convert_checkpoint.py)")
    parser.add_argument("--text", action="append", help="a text to speak (repeatable)")
    parser.add_argument("--texts-json", type=Path, help="JSON object: label -> text")
    parser.add_argument("--warmup-text", default=None, help="spoken once, untimed, before the texts")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed before each run (default 0)")
    parser.add_argument("--tokens-per-text-token", type=float, default=None, metavar="R",
                        help="benchmark length mode: exactly ceil(R x text tokens) speech tokens")
    parser.add_argument("--chunk-size", type=int, default=25, help="the fork's chunk_size (default 25)")
    parser.add_argument("--context-window", type=int, default=50,
                        help="the fork's context_window (default 50)")
    parser.add_argument("--watermark", action=argparse.BooleanOptionalAction, default=False,
                        help="keep the fork's Perth watermark (default: off, as bench_engine runs seqopt)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file (required unless --serve)")
    parser.add_argument("--serve", action="store_true",
                        help="after loading (and the warm-up), answer requests: one JSON line "
                             '{"text": ...} on stdin -> one JSON line (the run\'s record) on stdout; '
                             "the first stdout line describes the loaded peer. Used by bench_engine")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("error: --repeats must be at least 1")
    if args.out is None and not args.serve:
        raise SystemExit("error: --out FILE is required (unless --serve)")
    return args


def log(line: str) -> None:
    print(f"[peer] {line}", file=sys.stderr, flush=True)


def protocol_stream() -> Any:
    """A text stream on the original stdout, for the --serve replies; everything else the
    process (the fork, Perth, C libraries) writes to stdout goes to stderr from now on."""
    sys.stdout.flush()
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(reply_fd, "w", encoding="utf-8", buffering=1)


def load_fork(args: argparse.Namespace) -> tuple[InstrumentedFork, dict[str, Any]]:
    """The fork's model, loaded from ``args.checkpoint`` and instrumented; its description."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from chatterbox.tts import ChatterboxTTS

    started = time.perf_counter()
    model = ChatterboxTTS.from_local(args.checkpoint, args.device)
    load_seconds = time.perf_counter() - started
    if model.conds is None:
        raise SystemExit(f"error: {args.checkpoint} has no conds.pt (the built-in voice the runs use)")
    fork = InstrumentedFork(model, chunk_size=args.chunk_size, context_window=args.context_window,
                            watermark=args.watermark)
    log(f"loaded {args.checkpoint} in {load_seconds:.1f} s on {args.device}, "
        f"torch threads {torch.get_num_threads()}")
    info = {
        "peer": PEER_DISTRIBUTION,
        "versions": versions(),
        "python": platform.python_version(),
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "checkpoint": str(args.checkpoint),
        "load_seconds": load_seconds,
        "settings": {"seed": args.seed, "tokens_per_text_token": args.tokens_per_text_token,
                     "chunk_size": args.chunk_size, "context_window": args.context_window,
                     "watermark": args.watermark, "repeats": args.repeats,
                     "fork_defaults": "temperature 0.8, cfg_weight 0.5, exaggeration 0.5, top-p 0.8, "
                                      "repetition penalty 2.0, fade-in 20 ms, built-in voice"},
        "warmup": None,
    }
    if args.warmup_text:
        info["warmup"] = fork.run(args.warmup_text, seed=args.seed,
                                  tokens_per_text_token=args.tokens_per_text_token)
        log(f"warm-up: {info['warmup']['wall_seconds']:.1f} s")
    return fork, info


def run_logged(fork: InstrumentedFork, args: argparse.Namespace, label: str, text: str) -> dict[str, Any]:
    row = fork.run(text, seed=args.seed, tokens_per_text_token=args.tokens_per_text_token)
    log(f"{label}: TTFA {row['time_to_first_audio']:.2f} s, RTF {row['rtf']:.2f}, "
        f"wall {row['wall_seconds']:.1f} s, {row['speech_tokens']} tokens, {row['chunks']} chunks")
    return row


def serve(fork: InstrumentedFork, args: argparse.Namespace, info: dict[str, Any], replies: Any) -> int:
    """Answer one request line at a time until stdin closes (see ``--serve``)."""
    replies.write(json.dumps({"ready": True, **info}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        row = run_logged(fork, args, str(request.get("label", "text")), request["text"])
        replies.write(json.dumps(row) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts = read_texts(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the fork's from_local never needs the hub
    replies = protocol_stream() if args.serve else None
    fork, info = load_fork(args)
    if replies is not None:
        return serve(fork, args, info, replies)
    payload: dict[str, Any] = {**info, "runs": {}}

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

    for label, text in texts.items():
        payload["runs"][label] = []
        for r in range(args.repeats):
            row = run_logged(fork, args, f"{label} round {r + 1}/{args.repeats}", text)
            row["round"] = r + 1
            payload["runs"][label].append(row)
            save()
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
