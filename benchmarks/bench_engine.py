"""Engine speed: time to first audio and real-time factor, ``baseline`` versus ``rtx4090``.

Run from the repository root. A full-size random checkpoint (about 3.2 GB) is
needed; without ``--checkpoint`` one is written once into
``benchmarks/.cache/ck_full`` (git-ignored)::

    python benchmarks/bench_engine.py --checkpoint /path/to/ck_full     # CPU: tens of minutes
    python benchmarks/bench_engine.py --checkpoint ck_full --device cuda --repeats 5 \\
        --tokens-per-text-token 2.5                                     # a GPU: the full matrix
    python benchmarks/bench_engine.py --quick                           # smoke test, < 1 minute

**Random weights make noise, not speech.** The model code is upstream
Chatterbox's own (T3, S3Gen) at the released sizes, so the compute is real, but
nothing here says anything about audio quality, and such a model never emits a
sensible stop token. Both profiles therefore run in benchmark length mode
(``engine.options.benchmark_tokens_per_text_token``): every segment gets exactly
``ceil(ratio x its text tokens)`` speech tokens (text tokens as T3 sees them,
start and stop token included). In that mode the engine ignores
``engine.options.max_new_tokens``, so ``baseline``'s cap of 1000 does not apply.

The engine is loaded once, through the plugins (``PluginHost.create_engine``);
each profile gets a ``Pipeline.from_config(profile=..., engine=...)``: a view of
the same loaded modules (same weights, its own ``[engine.options]`` and
``[synthesis]`` settings, e.g. ``baseline``'s ``crossfade_ms = 0``). Both run
with ``engine.options.watermark = false`` (the Perth watermark costs the same
per second of audio for both) and the same ``synthesis.seed``.

For texts of about 100, 500 and 2,000 characters (consecutive whole sentences of
``seqopt_core/corpus``, see :func:`corpus_text`) it runs, after one untimed
warm-up of a short text per profile, ``baseline`` then ``rtx4090`` for each
text, ``--repeats`` times (A B A B), and reports per text and profile:
time to first audio (TTFA), real-time factor (RTF = wall / audio seconds, pauses
between segments included; ``RTF speech`` leaves them out), wall and audio
seconds, segments, chunks (= S3Gen calls), speech tokens and tokens/s, where the
time went (T3 sampling vs S3Gen decoding, from the pipeline's ``ChunkEvent``
records: ``t3_seconds``, ``s3gen_seconds``), peak memory (on CPU the process's
peak RSS, which only grows), playback stalls (seconds of silence a listener who
starts at the first chunk would hear while waiting for later chunks,
``seqopt_core.harness.stats.playback_stalls``) and planning time; plus the rtx4090/baseline ratios
of TTFA and RTF within each round. Medians over repeats; the JSON holds every
sample.

The runtime is estimated before anything runs (from assumed per-step costs) and
again after the warm-up (from measured ones). If the measured estimate exceeds
``--budget-minutes`` (default 45; 0: no limit), the largest texts are skipped,
with a note in the output and the JSON. Results are written after every text,
so an interrupted run keeps what finished.

**The peer** (``--peer``): the real ``chatterbox-streaming==0.1.2`` (PyPI), the
fork the ``baseline`` profile imitates, as a third contender on the same
weights, texts, seed, CPU and length mode. It runs in its own process and venv
(it pins transformers 4.46.3): ``benchmarks/peer/peer_run.py --serve`` in
``benchmarks/.cache/peer_venv`` (``--peer-venv``; made by ``bash
benchmarks/peer/make_peer_venv.sh``; without it the peer is skipped with that
command in the output and the JSON). The checkpoint is converted once to the
``.pt`` files the fork loads (``benchmarks/peer/convert_checkpoint.py``, into
``benchmarks/.cache/peer_ck/<folder name>``). The peer loads and warms up while
this process waits, then runs in each round right after the profiles (baseline,
rtx4090, peer), one text at a time, so the ratios against it are within rounds
too. Its watermark is off like the profiles' (``--peer-watermark`` keeps it).
How its stages are timed and how its length is fixed: ``peer_run.py``'s doc.
``--quick`` (tiny checkpoint) cannot run the peer: the fork builds
released-size modules.

Every contender reports TTFA, RTF, S3Gen calls and seconds, T3 seconds, the
overlap achieved (``overlap_seconds``: T3 + decode seconds beyond the wall time,
i.e. model time that ran concurrently; 0 for a pipeline that runs them one after
the other, which both the profiles and the fork do today) and playback stalls.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "bench_engine"
PROFILES = ("baseline", "rtx4090")
TEXT_CHARS = (100, 500, 2000)
QUICK_CHARS = (100,)
WARMUP_CHARS = 60
TEXT_TOLERANCE = 0.1  # a text is "about N characters": within +-10 %
DEFAULT_CHECKPOINT = c.BENCH_DIR / ".cache" / "ck_full"
PEER = "peer"  #: the contender name of chatterbox-streaming in tables and JSON
PEER_DIR = c.BENCH_DIR / "peer"
DEFAULT_PEER_VENV = c.BENCH_DIR / ".cache" / "peer_venv"
PEER_CHECKPOINTS = c.BENCH_DIR / ".cache" / "peer_ck"
MAKE_PEER_VENV = "bash benchmarks/peer/make_peer_venv.sh"
#: The fork's generate_stream defaults, which it runs with (baseline's chunk and context policies).
PEER_CHUNK_SIZE = 25
PEER_CONTEXT_WINDOW = 50
#: Prior per-step costs for the first estimate, on the development CPU (2 vCPUs):
#: a full-size T3 step with CFG (batch 2) and one S3Gen call per chunk.
ASSUMED_T3_STEP_SECONDS = 0.3
ASSUMED_S3GEN_CALL_SECONDS = 20.0
SENTENCE_END = tuple('.!?…"”’\')')


# --- texts ---------------------------------------------------------------------------


def corpus_text(chars: int, splitter: Any) -> str:
    """About ``chars`` characters of the corpus, cut at sentence ends.

    The corpus paragraphs (``_common.corpus_paragraphs``: round-robin over the
    content classes) are joined by blank lines and split into sentences with
    seqopt's ``regex`` splitter; the text is the first run of consecutive whole
    sentences whose length is within 10 % of ``chars`` and whose last sentence
    ends with terminal punctuation (paragraph breaks inside it are kept).
    """
    from seqopt_core import split_sentences

    source = "\n\n".join(c.corpus_paragraphs())
    spans = split_sentences(source, splitter, "regex")
    lo, hi = chars * (1 - TEXT_TOLERANCE), chars * (1 + TEXT_TOLERANCE)
    for i in range(len(spans)):
        for j in range(i, len(spans)):
            length = spans[j].end - spans[i].start
            if length > hi:
                break
            if length >= lo and source[spans[j].start:spans[j].end].rstrip().endswith(SENTENCE_END):
                return source[spans[i].start:spans[j].end]
    raise SystemExit(f"error: no run of corpus sentences is within 10 % of {chars} characters")


# --- checkpoint ----------------------------------------------------------------------


def ensure_checkpoint(path: Path, scale: str, tokenizer: Path) -> dict[str, Any]:
    """Write a random checkpoint at ``path`` unless its files are there already."""
    from seqopt_plugins.chatterbox.checkpoint import REQUIRED_FILES, write_random_checkpoint

    if all((path / f).is_file() for f in REQUIRED_FILES):
        return {"path": c.display_path(path), "written_now": False}
    print(f"writing a random {scale} checkpoint to {path} (once; full size is about 3.2 GB)...",
          file=sys.stderr, flush=True)
    info = write_random_checkpoint(path, scale=scale, seed=0, tokenizer=tokenizer,
                                   progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    return {"path": c.display_path(path), "written_now": True, "write_seconds": info.seconds}


def benchmark_checkpoint(stack: ExitStack, checkpoint: Path | None, quick: bool, tokenizer: Path,
                         name: str) -> tuple[Path, dict[str, Any]]:
    """The checkpoint a benchmark runs on: ``checkpoint`` (full size, written at random if
    absent), else with ``quick`` a tiny one in a temporary folder ``stack`` removes, else
    :data:`DEFAULT_CHECKPOINT`. Returns the folder and its record for the JSON."""
    if checkpoint is None and quick:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"seqopt-{name}-")))
        record = ensure_checkpoint(tmp / "ck_tiny", "tiny", tokenizer)
        record["path"] = "(temporary folder)"
        return tmp / "ck_tiny", record
    folder = (checkpoint or DEFAULT_CHECKPOINT).expanduser().resolve()
    return folder, ensure_checkpoint(folder, "full", tokenizer)


# --- where the time goes -------------------------------------------------------------


@dataclass
class Meter:
    """T3 and S3Gen time of one run, read from its :class:`~seqopt_core.types.ChunkEvent`
    records by :func:`meter_of` (nothing on the model is patched)."""

    t3_seconds: float = 0.0
    s3gen_seconds: float = 0.0
    decode_seconds: float = 0.0  # S3Gen plus the watermark
    queue_seconds: float = 0.0  # batched segments' tokens waiting for their decode
    s3gen_calls: int = 0
    s3gen_tokens: int = 0  # tokens S3Gen rendered: context + new (its voice prompt not included)
    first_t3_seconds: float | None = None
    first_s3gen_seconds: float | None = None
    s3gen_call_seconds: list[float] = field(default_factory=list)


def meter_of(pipeline: Any, metrics: Any) -> Meter:
    """Where the time of a finished run went, from the pipeline's own records.

    T3: ``ChunkEvent.t3_seconds`` (a streamed chunk's sampling, the first one's
    including the prompt prefill; a batched segment's share of the batch's steps).
    S3Gen: ``ChunkEvent.s3gen_seconds`` (the vocoder alone). Each chunk's tokens
    are the next ``ChunkEvent.speech_tokens`` of its segment's tokens; S3Gen runs
    once for a chunk with decodable tokens and renders them plus the context it
    re-reads (the context policy's window for the chunk, at most the decodable
    tokens before it), as :class:`~seqopt_plugins.chatterbox.vocoder.ChunkVocoder` does.
    """
    from seqopt_plugins.chatterbox.vocoder import decodable

    meter = Meter()
    events = iter(metrics.chunks)
    for seg, tokens in zip(metrics.segments, metrics.segment_speech_tokens):
        segment, done, decoded = seg.segment, 0, 0
        for k in range(seg.chunks):
            event = next(events)
            meter.t3_seconds += event.t3_seconds
            meter.s3gen_seconds += event.s3gen_seconds
            meter.decode_seconds += event.decode_seconds
            meter.queue_seconds += event.queue_seconds
            if meter.first_t3_seconds is None:
                meter.first_t3_seconds = event.t3_seconds
            new = len(decodable(tokens[done:done + event.speech_tokens]))
            done += event.speech_tokens
            if not new:
                continue
            window = pipeline.context_policy.context_window(segment.tokens, k, segment.index)
            meter.s3gen_calls += 1
            meter.s3gen_tokens += min(decoded, max(0, window)) + new
            meter.s3gen_call_seconds.append(event.s3gen_seconds)
            decoded += new
            if meter.first_s3gen_seconds is None:
                meter.first_s3gen_seconds = event.s3gen_seconds
    return meter


# --- the work a run will do (known before it runs) -----------------------------------


def planned_work(pipeline: Any, text: str, prompt_tokens: int) -> dict[str, Any]:
    """Segments, speech tokens, T3 steps and S3Gen calls ``pipeline`` will run for ``text``
    (:func:`seqopt_core.harness.runner.planned_work` on its plan, text tokens as T3 counts them)."""
    from seqopt_core.harness.runner import planned_work as work_for_segments

    engine = pipeline.engine
    segments = pipeline.planner.plan(text).segments
    exact = [int(engine.text_tokens(seg).size(-1)) for seg in segments]
    return {"segments": len(segments), "text_tokens": sum(exact),
            **work_for_segments(pipeline, segments, exact, prompt_tokens)}


def estimate_seconds(work: dict[str, Any], t3_step: float, s3gen_call: float | None = None,
                     s3gen_token: float | None = None) -> float:
    """Seconds for ``work`` at ``t3_step`` per speech token and either ``s3gen_call``
    per S3Gen call or ``s3gen_token`` per token S3Gen renders (voice prompt included)."""
    s3 = (work["s3gen_calls"] * s3gen_call if s3gen_token is None
          else work["s3gen_tokens_with_prompt"] * s3gen_token)
    return work["speech_tokens"] * t3_step + s3


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


# --- the peer contender: chatterbox-streaming in its own venv ------------------------


class PeerError(RuntimeError):
    """The peer process failed: what it said is on stderr above."""


def peer_unavailable(venv: Path, quick: bool) -> str | None:
    """Why the peer cannot run (None when it can): no venv, or the tiny checkpoint."""
    if not (venv / "bin" / "python").is_file():
        return (f"no peer venv at {c.display_path(venv)} (no bin/python); make it with: {MAKE_PEER_VENV}"
                + ("" if venv == DEFAULT_PEER_VENV else f" (PEER_VENV={venv})"))
    if quick:
        return ("--quick runs on a tiny checkpoint, and chatterbox-streaming builds released-size "
                "modules only: run without --quick (a full-size checkpoint) for the peer")
    return None


def peer_environment(venv: Path) -> dict[str, str]:
    """The peer's environment: offline, with a Hugging Face home of its own (the fork loads
    local files only; nothing is fetched and the user's cache is left alone)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(venv / "hf_home")}


def convert_for_peer(venv: Path, checkpoint: Path) -> tuple[Path, dict[str, Any]]:
    """``checkpoint`` as the fork's ``.pt`` files (converted once, checked against the fork)."""
    target = PEER_CHECKPOINTS / checkpoint.name
    done = subprocess.run([str(venv / "bin" / "python"), str(PEER_DIR / "convert_checkpoint.py"),
                           str(checkpoint), str(target)],
                          stdout=subprocess.PIPE, text=True, env=peer_environment(venv), cwd=c.REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"error: converting {checkpoint} for the peer failed (exit {done.returncode}); "
                         "see its messages above")
    return target, json.loads(done.stdout.strip().splitlines()[-1])


class PeerProcess:
    """``benchmarks/peer/peer_run.py --serve`` in the peer venv: loads the fork and warms it
    up once (:attr:`info`), then runs one text per :meth:`run`. Its progress goes to stderr."""

    def __init__(self, venv: Path, checkpoint: Path, *, warmup_text: str, seed: int,
                 tokens_per_text_token: float, device: str, threads: int | None, watermark: bool) -> None:
        command = [str(venv / "bin" / "python"), str(PEER_DIR / "peer_run.py"), "--serve",
                   "--checkpoint", str(checkpoint), "--warmup-text", warmup_text, "--seed", str(seed),
                   "--tokens-per-text-token", repr(tokens_per_text_token), "--device", device,
                   "--watermark" if watermark else "--no-watermark"]
        if threads:
            command += ["--threads", str(threads)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=peer_environment(venv), cwd=c.REPO_ROOT)
        self.info: dict[str, Any] = self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise PeerError(f"the peer process ended (exit {self.process.wait()}); see its messages above")
        return json.loads(line)

    def run(self, label: str, text: str) -> dict[str, Any]:
        """One timed run of ``text`` in the fork: :func:`peer_row` of its record."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"label": label, "text": text}) + "\n")
        self.process.stdin.flush()
        return peer_row(self._reply())

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def peer_row(record: dict[str, Any]) -> dict[str, Any]:
    """A peer run's record with the keys a profile's row has (one segment, no pauses).

    Its ``rtf_speech`` is wall per second of the audio its decoded tokens stand for
    (40 ms each), which for the profiles is their speech audio exactly: the fork's own
    audio is shorter on random weights (``peer_run.py``: its context crop counts the
    special ids it drops), so ``rtf`` alone would overstate its real-time factor."""
    wall, tokens = record["wall_seconds"], record["speech_tokens"]
    decoded = record["decoded_audio_seconds"]
    return {**record, "rtf_speech": wall / decoded if decoded else None, "speech_audio_seconds": decoded,
            "pause_seconds": 0.0, "segments": 1, "planning_seconds": None,
            "speech_tokens_per_second": tokens / wall if wall else None,
            "stopped_by": [record["stopped_by"]], "completed": True}


def peer_planned_work(baseline_work: dict[str, Any], chunk_size: int) -> dict[str, Any]:
    """What the fork will do: baseline's one segment, ``ceil(tokens / chunk)`` S3Gen calls."""
    return {**baseline_work, "s3gen_calls": math.ceil(baseline_work["speech_tokens"] / chunk_size)}


# --- one run -------------------------------------------------------------------------


def run_once(pipeline: Any, text: str, label: str, verbose: bool) -> dict[str, Any]:
    """Stream ``text`` through ``pipeline``, consuming the audio as a player would."""
    rate = pipeline.sample_rate
    rss_before = c.rss_bytes()
    pause_samples = samples = 0
    arrivals: list[tuple[float, float]] = []  # (ready at, audio seconds) per chunk
    started = time.perf_counter()
    stream = pipeline.stream(text)
    for chunk in stream:
        arrivals.append((time.perf_counter() - started, len(chunk.audio) / rate))
        samples += len(chunk.audio)
        pause_samples += chunk.pause_samples
        if verbose:
            print(f"    {label}: segment {chunk.segment.index} chunk {chunk.event.chunk_index} "
                  f"({chunk.event.speech_tokens} tokens) at {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)
    m = stream.metrics
    meter = meter_of(pipeline, m)
    d = m.to_dict()
    speech_audio = (samples - pause_samples) / rate
    return {
        "time_to_first_audio": d["time_to_first_audio"],
        "rtf": d["rtf"],
        "rtf_speech": d["wall_seconds"] / speech_audio if speech_audio else None,
        "wall_seconds": d["wall_seconds"],
        "audio_seconds": d["audio_seconds"],
        "speech_audio_seconds": speech_audio,
        "pause_seconds": pause_samples / rate,
        "segments": d["segments"],
        "chunks": d["chunks"],
        "speech_tokens": d["speech_tokens"],
        "speech_tokens_per_second": d["speech_tokens_per_second"],
        "stopped_by": sorted({s["stopped_by"] for s in d["per_segment"]}),
        "peak_memory_bytes": d["peak_memory_bytes"],
        "rss_before_bytes": rss_before,
        "planning_seconds": d["planning_seconds"],
        "completed": d["completed"],
        "t3_seconds": meter.t3_seconds,
        "s3gen_seconds": meter.s3gen_seconds,
        "decode_seconds": meter.decode_seconds,
        "queue_seconds": meter.queue_seconds,
        "s3gen_calls": meter.s3gen_calls,
        "s3gen_tokens": meter.s3gen_tokens,
        "overlap_seconds": d.get("overlap_seconds",
                                 max(0.0, meter.t3_seconds + meter.decode_seconds - d["wall_seconds"])),
        "s3gen_call_seconds": meter.s3gen_call_seconds,
        "first_chunk_t3_seconds": meter.first_t3_seconds,
        "first_chunk_s3gen_seconds": meter.first_s3gen_seconds,
        "per_segment": d["per_segment"],
        # a listener starting at the first chunk: silent gaps while waiting for the next
        **c.playback_stalls(arrivals),
    }


# --- reporting -----------------------------------------------------------------------


SUMMARY_KEYS = ("time_to_first_audio", "rtf", "rtf_speech", "wall_seconds", "audio_seconds",
                "speech_tokens_per_second", "t3_seconds", "s3gen_seconds", "decode_seconds",
                "overlap_seconds", "first_chunk_t3_seconds", "first_chunk_s3gen_seconds",
                "planning_seconds", "peak_memory_bytes", "stall_seconds")
#: (numerator, denominator) contenders of the ratio table, when both ran
RATIO_PAIRS = (("rtx4090", "baseline"), (PEER, "baseline"), ("baseline", PEER), ("rtx4090", PEER))
RATIO_KEYS = ("time_to_first_audio", "rtf", "rtf_speech", "wall_seconds", "t3_seconds", "s3gen_seconds",
              "speech_tokens")


def summarize_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        values = [s[key] for s in samples if s.get(key) is not None]
        out[key] = c.summarize(values) if values else None
    for key in ("segments", "chunks", "speech_tokens", "s3gen_calls", "s3gen_tokens"):
        out[key] = sorted({s[key] for s in samples})  # equal across repeats (seeded)
    return out


def ratio_summary(rows: dict[str, list[dict[str, Any]]], key: str, numerator: str = "rtx4090",
                  denominator: str = "baseline") -> dict[str, Any] | None:
    """``numerator``/``denominator`` of ``key`` within each round (side by side), summarized."""
    pairs = [a[key] / b[key] for b, a in zip(rows.get(denominator, []), rows.get(numerator, []))
             if b.get(key) and a.get(key) is not None]
    return c.summarize(pairs) if pairs else None


def ratios(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Every :data:`RATIO_PAIRS` ratio whose contenders both ran: ``{"a_over_b": {key: summary}}``."""
    return {f"{a}_over_{b}": {k: ratio_summary(rows, k, a, b) for k in RATIO_KEYS}
            for a, b in RATIO_PAIRS if rows.get(a) and rows.get(b)}


def fmt_med(summary: dict[str, Any] | None, fmt: str = "{:.2f}") -> str:
    return "-" if not summary else fmt.format(summary["median"])


def fmt_med_seconds(summary: dict[str, Any] | None) -> str:
    return "-" if not summary else c.fmt_seconds(summary["median"])


def one(values: list[int]) -> str:
    return "/".join(str(v) for v in values)


def result_row(n: int, text: str, name: str, s: dict[str, Any], planned_tokens: int) -> list[Any]:
    """One line of the main table: contender ``name`` on the ``n``-character text."""
    equal = s["speech_tokens"] == [planned_tokens]
    return [
        f"{n} ({len(text)})", name, one(s["segments"]), one(s["chunks"]),
        one(s["speech_tokens"]) + ("" if equal else " (!)"), one(s["s3gen_calls"]),
        fmt_med_seconds(s["time_to_first_audio"]), fmt_med(s["rtf"]), fmt_med(s["rtf_speech"]),
        fmt_med_seconds(s["wall_seconds"]), fmt_med(s["audio_seconds"]),
        fmt_med(s["speech_tokens_per_second"], "{:.1f}"),
        f"{fmt_med(s['t3_seconds'], '{:.1f}')} / {fmt_med(s['s3gen_seconds'], '{:.1f}')}",
        fmt_med(s["overlap_seconds"], "{:.1f}"),
        "-" if not s["peak_memory_bytes"] else f"{s['peak_memory_bytes']['median'] / 2**30:.2f}",
        fmt_med(s["stall_seconds"], "{:.1f}"), fmt_med_seconds(s["planning_seconds"]),
    ]


def stage_row(n: int, name: str, rows: list[dict[str, Any]]) -> list[Any]:
    """Where one contender's time went on the ``n``-character text (first round): T3 per
    token, the first chunk's T3 and S3Gen, S3Gen per call and per rendered token."""
    r = rows[0]
    calls = r["s3gen_call_seconds"]
    per_call = sorted(calls)[len(calls) // 2] if calls else None
    tokens = r.get("s3gen_tokens") or 0
    return [
        f"{n}", name,
        f"{r['t3_seconds'] / r['speech_tokens'] * 1000:.0f} ms" if r["speech_tokens"] else "-",
        c.fmt_seconds(r["first_chunk_t3_seconds"]) if r.get("first_chunk_t3_seconds") is not None else "-",
        c.fmt_seconds(r["first_chunk_s3gen_seconds"]) if r.get("first_chunk_s3gen_seconds") is not None else "-",
        r["s3gen_calls"], tokens, c.fmt_seconds(per_call) if per_call is not None else "-",
        f"{r['s3gen_seconds'] / tokens * 1000:.0f} ms" if tokens else "-",
        c.fmt_seconds(r.get("decode_seconds", 0.0) - r["s3gen_seconds"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    c.add_model_arguments(parser)
    parser.add_argument("--chars", type=int, nargs="+", default=None, metavar="N",
                        help=f"text sizes in characters (default: {' '.join(map(str, TEXT_CHARS))}; "
                             f"--quick: {' '.join(map(str, QUICK_CHARS))})")
    parser.add_argument("--tokens-per-text-token", type=float, default=1.0, metavar="R",
                        help="benchmark length mode: speech tokens per text token, both profiles "
                             "(default 1.0, affordable on a CPU; real speech is about 2-3)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis.seed for both profiles (default 0)")
    parser.add_argument("--budget-minutes", type=float, default=45.0, metavar="MIN",
                        help="skip the largest texts when the measured estimate exceeds this "
                             "(default 45; 0: no limit, run the full matrix)")
    parser.add_argument("--peer", action="store_true",
                        help="also run the real chatterbox-streaming 0.1.2 (its own venv and process) "
                             f"as a third contender; make its venv first: {MAKE_PEER_VENV}")
    parser.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV, metavar="DIR",
                        help="the peer's venv (default benchmarks/.cache/peer_venv)")
    parser.add_argument("--peer-watermark", action="store_true",
                        help="keep the fork's Perth watermark (default off, like the profiles')")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or 1
    chars_list = sorted(set(args.chars or (QUICK_CHARS if args.quick else TEXT_CHARS)))

    import torch

    from seqopt_core import Pipeline
    from seqopt_core.api import as_loaded_config
    from seqopt_plugins.chatterbox.checkpoint import describe

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = c.resolve_tokenizer(args.tokenizer)
    verbose = not sys.stderr.isatty()
    peer_venv = args.peer_venv.expanduser().resolve()
    peer_skip = peer_unavailable(peer_venv, args.quick) if args.peer else None
    if peer_skip:
        print(f"NOTE: the peer (chatterbox-streaming) is skipped: {peer_skip}", file=sys.stderr, flush=True)

    with ExitStack() as stack:
        folder, ck_record = benchmark_checkpoint(stack, args.checkpoint, args.quick, tokenizer, NAME)
        peer_ck: tuple[Path, dict[str, Any]] | None = None
        if args.peer and not peer_skip:
            peer_ck = convert_for_peer(peer_venv, folder)

        synthesis = {"device": args.device, "dtype": args.dtype, "seed": args.seed}
        engine_options = {"checkpoint": str(folder), "watermark": False,
                          "benchmark_tokens_per_text_token": args.tokens_per_text_token}
        overrides = c.engine_overrides(synthesis, engine_options)
        configs = {p: as_loaded_config(profile=p, overrides=overrides) for p in PROFILES}

        # the engine, once, through the plugins; each profile's pipeline gets a view of it
        # with its own [engine.options] and [synthesis] settings
        shared, load_seconds = c.load_engine(configs["baseline"])
        loaded = shared.loaded
        pipelines = {p: Pipeline.from_config(configs[p], engine=shared) for p in PROFILES}
        for p in PROFILES:
            assert pipelines[p].engine.t3 is loaded.t3 and pipelines[p].engine.s3gen is loaded.s3gen
        prompt_tokens = int(shared.conds.gen["prompt_token"].shape[-1])  # S3Gen's voice prompt

        ck_record.update({"random_weights": loaded.random_weights, "arch": describe(loaded.arch),
                          "load_seconds": load_seconds, "s3gen_voice_prompt_tokens": prompt_tokens})
        info = shared.describe()
        device = info["device"]
        accel = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
        env = c.environment(tokenizer, torch=torch.__version__, torch_threads=torch.get_num_threads(),
                            model_device=device, accelerator=accel,
                            chatterbox_tts=c.package_versions(("chatterbox-tts",))["chatterbox-tts"],
                            transformers=c.package_versions(("transformers",))["transformers"])

        profile_settings = {}
        for p in PROFILES:
            cfg = configs[p].config
            pipe = pipelines[p]
            profile_settings[p] = {
                "planner": {"target_tokens": cfg.planner.target_tokens, "max_tokens": cfg.planner.max_tokens},
                "splitter": cfg.splitter.name, "estimator": cfg.estimator.name,
                "chunk_policy": {"name": cfg.chunk_policy.name, **cfg.chunk_policy.options},
                "context_policy": {"name": cfg.context_policy.name, **cfg.context_policy.options},
                "segment_context": cfg.segment_context.name, "attention": pipe.attention.attn_implementation,
                "crossfade_ms": pipe.settings.crossfade_ms,
                "max_new_tokens": pipe.engine.options.max_new_tokens,
            }

        splitter = c.plugin_host().create("splitter", "regex")
        texts = {n: corpus_text(n, splitter) for n in chars_list}
        warmup_text = corpus_text(WARMUP_CHARS, splitter)
        work = {n: {p: planned_work(pipelines[p], texts[n], prompt_tokens) for p in PROFILES}
                for n in chars_list}
        warm_work = {p: planned_work(pipelines[p], warmup_text, prompt_tokens) for p in PROFILES}
        contenders = list(PROFILES) + ([PEER] if peer_ck else [])
        if peer_ck:  # the fork: baseline's one segment, its own fixed 25-token chunks
            for n in chars_list:
                work[n][PEER] = peer_planned_work(work[n]["baseline"], PEER_CHUNK_SIZE)

        def total(w: dict, **kw: float) -> float:
            return repeats * sum(estimate_seconds(w[n][p], **kw) for n in w for p in w[n])

        prior = total(work, t3_step=ASSUMED_T3_STEP_SECONDS, s3gen_call=ASSUMED_S3GEN_CALL_SECONDS)
        notes = [
            f"checkpoint: {ck_record['path']} ({describe(loaded.arch)['scale']} size, "
            + ("RANDOM weights: the audio is noise, not speech; timings only" if info["random_weights"]
               else "real weights") + f"), loaded once in {load_seconds:.1f} s on {device}"
            + (f" ({accel})" if accel else "")
            + f", T3 dtype {args.dtype}, torch threads {torch.get_num_threads()}",
            f"both profiles: engine.options.watermark=false, synthesis.seed={args.seed}, benchmark length mode "
            f"{args.tokens_per_text_token:g} speech tokens per text token (stop token ignored; "
            "max_new_tokens does not apply in this mode)",
            f"texts: about {', '.join(map(str, chars_list))} characters of seqopt_core/corpus "
            f"(actual: {', '.join(str(len(texts[n])) for n in chars_list)}), whole sentences; "
            f"warm-up: {len(warmup_text)} characters per contender, untimed; {repeats} repeat(s), "
            f"{', '.join(contenders)} for each text",
            f"estimate before running (assumed {ASSUMED_T3_STEP_SECONDS} s per T3 step, "
            f"{ASSUMED_S3GEN_CALL_SECONDS:g} s per S3Gen call): {fmt_minutes(prior)} for "
            f"{sum(w[p]['speech_tokens'] for w in work.values() for p in w) * repeats} speech tokens "
            f"and {sum(w[p]['s3gen_calls'] for w in work.values() for p in w) * repeats} S3Gen calls",
        ]
        if args.peer:
            notes.append("peer: " + (f"SKIPPED ({peer_skip})" if peer_skip else
                                     f"chatterbox-streaming 0.1.2 in {c.display_path(peer_venv)}, own process, "
                                     f"on {c.display_path(peer_ck[0])} (the same weights as .pt), watermark "
                                     + ("on" if args.peer_watermark else "off")
                                     + ", same seed and length mode"))
        c.print_header(NAME, env, notes)
        c.print_table(
            ["text", "contender", "segments", "text tokens", "speech tokens", "S3Gen calls",
             "S3Gen tokens (with prompt)"],
            [[f"{n} chars", p, w["segments"], w["text_tokens"], w["speech_tokens"], w["s3gen_calls"],
              w["s3gen_tokens_with_prompt"] if p != PEER else "-"]
             for n in chars_list for p, w in work[n].items()],
            title="Planned work (from the plans and policies, before running)")

        # warm-up: one short text per profile; its costs calibrate the estimate
        warm: dict[str, dict[str, Any]] = {}
        with c.progress(len(PROFILES), "warm-up") as step:
            for p in PROFILES:
                warm[p] = run_once(pipelines[p], warmup_text, f"warm-up {p}", verbose)
                step(f"{p}: {warm[p]['wall_seconds']:.1f} s")
        peer: PeerProcess | None = None
        peer_record: dict[str, Any] = ({"status": "not requested"} if not args.peer else
                                       {"status": "skipped", "reason": peer_skip,
                                        "make_venv": MAKE_PEER_VENV} if peer_skip else {"status": "ran"})
        if peer_ck:
            print("starting the peer (load and warm-up in its own process)...", file=sys.stderr, flush=True)
            peer = PeerProcess(peer_venv, peer_ck[0], warmup_text=warmup_text, seed=args.seed,
                               tokens_per_text_token=args.tokens_per_text_token,
                               device="cuda" if device.startswith("cuda") else device,
                               threads=args.threads, watermark=args.peer_watermark)
            stack.callback(peer.close)
            warm[PEER] = peer_row(peer.info["warmup"])
            env["peer"] = {k: v for k, v in peer.info.items() if k not in ("warmup", "ready")}
            peer_record.update({"load_seconds": peer.info["load_seconds"], "conversion": peer_ck[1],
                                "venv": c.display_path(peer_venv)})
        t3_step = (sum(warm[p]["t3_seconds"] for p in PROFILES)
                   / max(1, sum(warm[p]["speech_tokens"] for p in PROFILES)))
        s3gen_token = (sum(warm[p]["s3gen_seconds"] for p in PROFILES)
                       / max(1, sum(warm_work[p]["s3gen_tokens_with_prompt"] for p in PROFILES)))
        per_call = (sum(warm[p]["s3gen_seconds"] for p in PROFILES)
                    / max(1, sum(warm[p]["s3gen_calls"] for p in PROFILES)))

        def text_estimate(n: int) -> float:
            ours = sum(estimate_seconds(work[n][p], t3_step=t3_step, s3gen_token=s3gen_token) for p in PROFILES)
            fork = (estimate_seconds(work[n][PEER], t3_step=t3_step, s3gen_call=per_call)
                    if PEER in work[n] else 0.0)
            return repeats * (ours + fork)

        per_text = {n: text_estimate(n) for n in chars_list}
        measured = sum(per_text.values())
        skipped: list[dict[str, Any]] = []
        budget = args.budget_minutes * 60
        while budget and sum(per_text.values()) > budget and len(per_text) > 1:
            n = max(per_text)
            skipped.append({"chars": n, "estimated_seconds": per_text.pop(n),
                            "reason": f"the measured estimate of the whole matrix "
                                      f"({fmt_minutes(measured)}) exceeds --budget-minutes "
                                      f"{args.budget_minutes:g}"})
        run_chars = [n for n in chars_list if n in per_text]
        print(f"- estimate after the warm-up (measured {t3_step:.3f} s per T3 step, "
              f"{per_call:.2f} s per S3Gen call = {s3gen_token * 1000:.1f} ms per rendered token): "
              f"{fmt_minutes(measured)} for all texts; running {fmt_minutes(sum(per_text.values()))}",
              flush=True)
        for s in skipped:
            print(f"- SKIPPED the {s['chars']}-character text ({fmt_minutes(s['estimated_seconds'])}): "
                  f"{s['reason']}. Run it with --budget-minutes 0 (or on a GPU).", flush=True)
        print(flush=True)

        samples: dict[int, dict[str, list[dict[str, Any]]]] = {}
        settings = {
            "quick": args.quick, "profiles": profile_settings, "repeats": repeats,
            "contenders": contenders,
            "order": "per text: warm-up once per contender (untimed, first), then "
                     f"{', '.join(contenders)} per round",
            "texts": {str(n): {"chars": len(texts[n]), "text": texts[n]} for n in chars_list},
            "warmup_text": warmup_text,
            "synthesis": {**synthesis, **{k: v for k, v in engine_options.items() if k != "checkpoint"}},
            "peer": {"requested": args.peer, "venv": c.display_path(peer_venv), "watermark": args.peer_watermark,
                     "chunk_size": PEER_CHUNK_SIZE, "context_window": PEER_CONTEXT_WINDOW},
            "checkpoint": ck_record, "planned_work": {str(n): work[n] for n in chars_list},
            "estimate": {"prior_seconds": prior, "assumed_t3_step_seconds": ASSUMED_T3_STEP_SECONDS,
                         "assumed_s3gen_call_seconds": ASSUMED_S3GEN_CALL_SECONDS,
                         "measured_t3_step_seconds": t3_step, "measured_s3gen_call_seconds": per_call,
                         "measured_s3gen_seconds_per_rendered_token": s3gen_token,
                         "after_warmup_seconds": measured,
                         "per_text_seconds": {str(n): v for n, v in per_text.items()}},
            "skipped": skipped, "budget_minutes": args.budget_minutes,
            "notes": ["random weights: noise, not speech; timings only" if info["random_weights"]
                      else "real weights",
                      "peak_memory_bytes on CPU is the process's peak RSS (ru_maxrss): it only grows, "
                      "so later runs inherit earlier peaks; on CUDA it is torch's max allocated, "
                      "reset per run (the peer's: its own process's peak RSS)",
                      "rtf = wall / audio seconds including the pauses between segments; "
                      "rtf_speech leaves the pauses out",
                      "overlap_seconds = max(0, T3 s + decode s - wall s): model time that ran "
                      "concurrently (the pipelines do not report it themselves)",
                      "peer: rtf_speech = wall / (decodable tokens x 40 ms); its own audio_seconds and rtf "
                      "count the audio it kept, which on random weights its context crop shortens "
                      "(benchmarks/peer/peer_run.py)"],
        }

        def save(complete: bool) -> None:
            results = {"complete": complete, "warmup": warm, "peer": peer_record, "runs": {}, "summary": {}}
            for n, rows in samples.items():
                results["runs"][str(n)] = rows
                summary = {p: summarize_samples(rows[p]) for p in contenders if rows[p]}
                summary.update(ratios(rows))
                results["summary"][str(n)] = summary
            c.write_json(args.out, NAME, env, settings, c.rounded(results))

        run_started = time.perf_counter()
        with c.progress(len(run_chars) * repeats * len(contenders), "engine") as step:
            for n in run_chars:
                samples[n] = {p: [] for p in contenders}
                for r in range(repeats):
                    for p in contenders:
                        label = f"{n} chars {p} round {r + 1}"
                        row = (peer.run(label, texts[n]) if p == PEER and peer is not None
                               else run_once(pipelines[p], texts[n], label, verbose))
                        row["round"] = r + 1
                        samples[n][p].append(row)
                        step(f"{n} chars, {p}, round {r + 1}/{repeats}: "
                             f"TTFA {row['time_to_first_audio']:.2f} s, "
                             f"RTF {row['rtf']:.2f}, wall {row['wall_seconds']:.1f} s")
                save(complete=False)
        run_seconds = time.perf_counter() - run_started
        settings["runtime_seconds"] = {"timed_runs": run_seconds,
                                       "warmup": sum(w["wall_seconds"] for w in warm.values()),
                                       "model_load": load_seconds}

        # tables
        rows_out, ratio_rows, stage_rows = [], [], []
        for n in run_chars:
            for p in contenders:
                rows_out.append(result_row(n, texts[n], p, summarize_samples(samples[n][p]),
                                           work[n][p]["speech_tokens"]))
                stage_rows.append(stage_row(n, p, samples[n][p]))
            for a, b in RATIO_PAIRS:
                if not (samples[n].get(a) and samples[n].get(b)):
                    continue
                tok_a, tok_b = samples[n][a][0]["speech_tokens"], samples[n][b][0]["speech_tokens"]
                ratio_rows.append([
                    f"{n} ({len(texts[n])})", f"{a} / {b}",
                    *(fmt_med(ratio_summary(samples[n], k, a, b), "{:.3f}×")
                      for k in ("time_to_first_audio", "rtf", "rtf_speech", "wall_seconds",
                                "t3_seconds", "s3gen_seconds")),
                    f"{tok_a} / {tok_b}" + (f" ({(tok_a - tok_b) / tok_b:+.1%})" if tok_b else ""),
                ])
        device_words = f"{device}" + (f" ({accel})" if accel else f" ({env['cpu_model']})")
        c.print_table(
            ["text chars", "contender", "segments", "chunks", "speech tokens", "S3Gen calls", "TTFA", "RTF",
             "RTF speech", "wall", "audio s", "tokens/s", "T3 s / S3Gen s", "overlap s", "peak GiB",
             "stalls s", "planning"],
            rows_out,
            title=f"Engine on {device_words}, {repeats} repeat(s), median "
                  f"(random weights: noise, not speech; peak = process peak RSS on CPU, only grows)")
        c.print_table(
            ["text chars", "contender", "T3 per token", "1st chunk T3", "1st chunk S3Gen", "S3Gen calls",
             "S3Gen tokens", "S3Gen per call", "S3Gen per token", "watermark etc."],
            stage_rows, title="Where the time went (round 1; S3Gen tokens: rendered, context included, "
                              "voice prompt not)")
        c.print_table(
            ["text chars", "ratio", "TTFA", "RTF", "RTF speech", "wall", "T3 s", "S3Gen s", "speech tokens"],
            ratio_rows, title="Ratios within each round (median; < 1: the first contender is faster)")
        if peer_skip:
            print(f"NOTE: the peer was skipped: {peer_skip}.")
        for s in skipped:
            print(f"NOTE: the {s['chars']}-character text was skipped: {s['reason']}.")
        print(f"runtime: model load {load_seconds:.1f} s, warm-up "
              f"{sum(w['wall_seconds'] for w in warm.values()):.1f} s, timed runs {fmt_minutes(run_seconds)}"
              f" (estimated {fmt_minutes(sum(per_text.values()))})", flush=True)
        save(complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
