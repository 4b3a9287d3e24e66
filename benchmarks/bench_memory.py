"""Resident memory against seconds of audio over a long run, watermark on and off side by side.

Run from the repository root::

    python benchmarks/bench_memory.py                       # tiny checkpoint, 10 min of audio per mode (CPU: ~12 min)
    python benchmarks/bench_memory.py --audio-minutes 60    # an hour of audio per mode
    python benchmarks/bench_memory.py --checkpoint ck_full  # any checkpoint folder (full size: slow on a CPU)
    python benchmarks/bench_memory.py --quick               # smoke test, seconds of audio

**Random weights make noise, not speech**, and by default the model is seqopt's
*tiny* random checkpoint (written to a temporary folder): the same upstream code
paths (T3, S3Gen, the Perth watermark, seqopt's streaming loop) at a size where a
CPU makes many minutes of audio in minutes. What this measures is whether memory
is kept from chunk to chunk, which does not depend on the model's size: Perth, the
part that leaked, is the same network for every checkpoint.

One model is loaded; each mode is a ``Pipeline`` on it (``rtx4090`` profile, the
default ``batch_size = auto`` with look-ahead, benchmark length mode ``R`` speech
tokens per text token, seeded):

* ``watermark on``: the default (``engine.options.watermark = true``);
* ``watermark off``;
* ``watermark on, autograd (before the fix)``: the watermark applied as before the
  fix, with autograd on around Perth (it leaked about 1.9 MB per second of audio);
  it runs last and for a fraction of the audio (``--before-minutes``).

The two main modes alternate block by block (A B B A A B ...), a block being one
``stream()`` of about 1,500 characters of ``seqopt_core/corpus`` (consecutive
paragraphs, a different stretch each round, the same for both modes), so drift on
the machine hits both, and both meet new chunk lengths first equally often (torch's
per-shape kernel and FFT-plan caches grow with each new length until every
length the chunking produces has been seen: growth that stops, unlike a leak).
Before and after each block the collector runs, glibc hands freed memory back
(``malloc_trim``) and the resident set is read (``seqopt_core.system.resident_bytes``):
the block's growth is the difference. A mode's first block is its warm-up
(allocator pools, per-shape kernel caches); the slope is the growth of its later
blocks divided by their audio, in MB per hour of audio. Growth that another mode
caused between two blocks is not counted in either.

A second table measures Perth alone: ``apply_watermark`` on 1-second random
signals, with autograd on (as the engine called it before the fix) and under
``torch.inference_mode`` (as upstream and seqopt call it now).
"""

from __future__ import annotations

import ctypes
import gc
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "bench_memory"
ON, OFF, BEFORE = "watermark on", "watermark off", "watermark on, autograd (before the fix)"
DEFAULT_AUDIO_MINUTES = 10.0
QUICK_AUDIO_MINUTES = 0.15
DEFAULT_BLOCK_CHARS = 1500
QUICK_BLOCK_CHARS = 300
DEFAULT_TOKENS_PER_TEXT_TOKEN = 2.5
QUICK_TOKENS_PER_TEXT_TOKEN = 1.0
#: ``--before-minutes`` by default: this share of ``--audio-minutes``.
BEFORE_SHARE = 0.1
PERTH_CALLS, QUICK_PERTH_CALLS = 200, 10
SAMPLE_RATE = 24_000


def trimmed_rss_mb() -> float:
    """The resident set after ``gc.collect`` and glibc's ``malloc_trim`` (MB = 2**20 bytes)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: freed memory may still count
        pass
    rss = c.rss_bytes()
    if rss is None:
        raise SystemExit("error: this platform does not report the resident set size")
    return rss / c.MB


def text_blocks(chars: int) -> Any:
    """Endless texts of about ``chars`` characters: consecutive corpus paragraphs,
    each block starting where the previous one ended (cycling through the corpus)."""
    paragraphs = c.corpus_paragraphs()
    i = 0
    while True:
        parts: list[str] = []
        while sum(len(p) + 2 for p in parts) < chars:
            parts.append(paragraphs[i % len(paragraphs)])
            i += 1
        yield "\n\n".join(parts)


def autograd_watermark(engine: Any) -> None:
    """Make ``engine`` watermark as before the fix: Perth with autograd on (its
    ``watermark`` method, which every chunk's decode calls, replaced on this instance)."""
    import numpy as np
    import torch

    rate = engine.sample_rate

    def watermark(audio: np.ndarray) -> np.ndarray:
        if len(audio) == 0:
            return audio
        with torch.inference_mode(False), torch.enable_grad():
            marked = engine.loaded.watermarker().apply_watermark(audio, sample_rate=rate)
        return np.asarray(marked, dtype=np.float32)

    engine.watermark = watermark


def run_block(pipeline: Any, text: str) -> dict[str, Any]:
    before = trimmed_rss_mb()
    started = time.perf_counter()
    audio = 0.0
    for chunk in pipeline.stream(text):
        audio += len(chunk.audio) / chunk.sample_rate
    wall = time.perf_counter() - started
    after = trimmed_rss_mb()
    return {"audio_seconds": audio, "wall_seconds": wall, "rss_before_mb": before,
            "rss_after_mb": after, "growth_mb": after - before, "text_chars": len(text)}


def summarize_mode(samples: list[dict[str, Any]]) -> dict[str, Any]:
    measured = samples[1:]  # the first block is the warm-up
    audio = sum(s["audio_seconds"] for s in samples)
    measured_audio = sum(s["audio_seconds"] for s in measured)
    growth = sum(s["growth_mb"] for s in measured)
    half = len(measured) // 2
    second = measured[half:]
    second_audio = sum(s["audio_seconds"] for s in second)
    return {
        "blocks": len(samples),
        "audio_seconds": audio,
        "wall_seconds": sum(s["wall_seconds"] for s in samples),
        "warmup_growth_mb": samples[0]["growth_mb"] if samples else None,
        "measured_audio_seconds": measured_audio,
        "growth_mb": growth,
        "slope_mb_per_audio_hour": growth / (measured_audio / 3600) if measured_audio else None,
        "second_half_growth_mb": sum(s["growth_mb"] for s in second),
        "second_half_slope_mb_per_audio_hour": (sum(s["growth_mb"] for s in second) / (second_audio / 3600)
                                                if second_audio else None),
        "max_block_growth_mb": max((s["growth_mb"] for s in measured), default=None),
        "rss_first_mb": samples[0]["rss_before_mb"] if samples else None,
        "rss_last_mb": samples[-1]["rss_after_mb"] if samples else None,
        "samples": samples,
    }


def perth_alone(calls: int, seed: int) -> dict[str, Any]:
    """Resident growth of ``calls`` 1-second ``apply_watermark`` calls, autograd on vs
    inference mode (inference mode first, so the leak does not lift its baseline)."""
    import numpy as np
    import torch

    from seqopt_plugins.chatterbox.checkpoint import _quiet_perth_watermarker

    watermarker = _quiet_perth_watermarker()
    signal = (np.random.default_rng(seed).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
    out: dict[str, Any] = {}
    for label, mode in (("inference mode", torch.inference_mode), ("autograd on", torch.enable_grad)):
        for _ in range(3):  # warm-up
            with mode():
                watermarker.apply_watermark(signal, sample_rate=SAMPLE_RATE)
        start = trimmed_rss_mb()
        started = time.perf_counter()
        for _ in range(calls):
            with mode():
                watermarker.apply_watermark(signal, sample_rate=SAMPLE_RATE)
        wall = time.perf_counter() - started
        growth = trimmed_rss_mb() - start
        out[label] = {"calls": calls, "growth_mb": growth, "mb_per_audio_second": growth / calls,
                      "seconds_per_call": wall / calls}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                        help="checkpoint folder (released layout, any size); default: a tiny random "
                             "one written to a temporary folder")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                        help="T3's dtype (default float32)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default 1)")
    parser.add_argument("--audio-minutes", type=float, default=None, metavar="MIN",
                        help=f"audio per main mode (default {DEFAULT_AUDIO_MINUTES:g}; --quick: "
                             f"{QUICK_AUDIO_MINUTES:g})")
    parser.add_argument("--before-minutes", type=float, default=None, metavar="MIN",
                        help=f"audio of the before-the-fix mode (default {BEFORE_SHARE:.0%} of "
                             "--audio-minutes; 0 skips it)")
    parser.add_argument("--block-chars", type=int, default=None, metavar="N",
                        help=f"characters per block (default {DEFAULT_BLOCK_CHARS}; --quick: {QUICK_BLOCK_CHARS})")
    parser.add_argument("--tokens-per-text-token", type=float, default=None, metavar="R",
                        help=f"benchmark length mode (default {DEFAULT_TOKENS_PER_TEXT_TOKEN:g}; "
                             f"--quick: {QUICK_TOKENS_PER_TEXT_TOKEN:g})")
    parser.add_argument("--perth-calls", type=int, default=None, metavar="N",
                        help=f"1-second calls per mode of the Perth-alone table (default {PERTH_CALLS}; "
                             f"--quick: {QUICK_PERTH_CALLS}; 0 skips it)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis.seed (default 0)")
    args = parser.parse_args(argv)
    quick = args.quick
    minutes = args.audio_minutes if args.audio_minutes is not None else (
        QUICK_AUDIO_MINUTES if quick else DEFAULT_AUDIO_MINUTES)
    before_minutes = args.before_minutes if args.before_minutes is not None else minutes * BEFORE_SHARE
    block_chars = args.block_chars or (QUICK_BLOCK_CHARS if quick else DEFAULT_BLOCK_CHARS)
    rate = args.tokens_per_text_token or (QUICK_TOKENS_PER_TEXT_TOKEN if quick else DEFAULT_TOKENS_PER_TEXT_TOKEN)
    perth_calls = args.perth_calls if args.perth_calls is not None else (QUICK_PERTH_CALLS if quick else PERTH_CALLS)

    import torch

    from bench_engine import ensure_checkpoint
    from seqopt_core import Pipeline
    from seqopt_core.api import as_loaded_config
    from seqopt_plugins.chatterbox.engine import ChatterboxEngine

    torch.set_num_threads(args.threads or 1)
    tokenizer = c.resolve_tokenizer(args.tokenizer)

    with ExitStack() as stack:
        if args.checkpoint is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"seqopt-{NAME}-")))
            ck_record = ensure_checkpoint(tmp / "ck_tiny", "tiny", tokenizer)
            ck_record["path"] = "(temporary folder)"
            folder = tmp / "ck_tiny"
        else:
            folder = args.checkpoint.expanduser().resolve()
            ck_record = {"path": c.display_path(folder), "written_now": False}

        synthesis = {"device": args.device, "dtype": args.dtype, "seed": args.seed}
        engine_options = {"checkpoint": str(folder), "benchmark_tokens_per_text_token": rate}

        def config(**extra: Any) -> Any:
            return as_loaded_config(profile="rtx4090",
                                    overrides=c.engine_overrides(synthesis, {**engine_options, **extra}))

        shared, load_seconds = c.load_engine(config(watermark=True))
        pipelines = {ON: Pipeline.from_config(config(watermark=True), engine=shared),
                     OFF: Pipeline.from_config(config(watermark=False), engine=shared)}
        # a second engine on the same modules and options, its watermark as before the fix
        before_engine = ChatterboxEngine(shared.loaded, shared.options, shared.runtime)
        autograd_watermark(before_engine)
        pipelines[BEFORE] = Pipeline.from_config(config(watermark=True), engine=before_engine)
        assert pipelines[BEFORE].engine is before_engine and pipelines[ON].engine is not before_engine

        loaded = shared.loaded
        device = loaded.device
        accel = torch.cuda.get_device_name(device) if device.type == "cuda" else None
        versions = c.package_versions(("chatterbox-tts", "transformers", "resemble-perth", "librosa"))
        env = c.environment(tokenizer, torch=torch.__version__, torch_threads=torch.get_num_threads(),
                            model_device=str(device), accelerator=accel,
                            chatterbox_tts=versions["chatterbox-tts"], transformers=versions["transformers"],
                            perth=versions["resemble-perth"], librosa=versions["librosa"])
        scale = loaded.arch.scale
        notes = [
            c.checkpoint_note(ck_record, loaded, load_seconds, device, accel,
                              f"torch threads {torch.get_num_threads()}"),
            f"rtx4090 profile, batch_size auto with look-ahead, benchmark length mode {rate:g} speech "
            f"tokens per text token, seed {args.seed}; blocks of about {block_chars} characters of "
            "seqopt_core/corpus",
            f"audio per main mode: {minutes:g} min (alternating block by block); before-the-fix mode: "
            f"{before_minutes:g} min, last",
        ]
        c.print_header(NAME, env, notes)

        blocks = text_blocks(block_chars)
        samples: dict[str, list[dict[str, Any]]] = {ON: [], OFF: [], BEFORE: []}
        target = {ON: minutes * 60, OFF: minutes * 60, BEFORE: before_minutes * 60}
        # for the progress total only: a block's speech seconds, from its plan
        planner = pipelines[ON].planner
        per_block = sum(-(-s.tokens * rate // 1) for s in planner.plan(next(text_blocks(block_chars))).segments) / 25
        estimate = sum(max(2, int(-(-target[m] // max(per_block, 1e-9)))) for m in (ON, OFF))
        if target[BEFORE] > 0:
            estimate += max(2, int(-(-target[BEFORE] // max(per_block, 1e-9))))

        def done(mode: str) -> bool:
            # at least a warm-up and one measured block, then until the mode's audio target
            have = samples[mode]
            return len(have) >= 2 and sum(s["audio_seconds"] for s in have) >= target[mode]

        run_started = time.perf_counter()
        with c.progress(estimate, NAME) as tick:
            order = [ON, OFF]
            while not all(done(m) for m in order):
                text = next(blocks)
                # both modes get the same block, one after the other, and which goes first
                # alternates: the first to meet a new chunk length pays its kernel caches
                order.reverse()
                for mode in order:
                    if not done(mode):
                        samples[mode].append(run_block(pipelines[mode], text))
                        audio = sum(s["audio_seconds"] for s in samples[mode])
                        tick(f"{mode}: {audio / 60:.1f} min of audio, RSS "
                             f"{samples[mode][-1]['rss_after_mb']:.0f} MB")
            if target[BEFORE] > 0:
                while not done(BEFORE):
                    samples[BEFORE].append(run_block(pipelines[BEFORE], next(blocks)))
                    audio = sum(s["audio_seconds"] for s in samples[BEFORE])
                    tick(f"{BEFORE}: {audio / 60:.1f} min of audio, RSS "
                         f"{samples[BEFORE][-1]['rss_after_mb']:.0f} MB")
            perth = perth_alone(perth_calls, args.seed) if perth_calls > 0 else {}
        run_wall = time.perf_counter() - run_started

        modes = {m: summarize_mode(s) for m, s in samples.items() if s}
        rows = []
        for mode, r in modes.items():
            slope = r["slope_mb_per_audio_hour"]
            second = r["second_half_slope_mb_per_audio_hour"]
            rows.append([mode, f"{r['audio_seconds'] / 60:.1f}", r["blocks"], f"{r['wall_seconds'] / 60:.1f}",
                         f"{r['rss_first_mb']:.0f} → {r['rss_last_mb']:.0f}",
                         f"{r['warmup_growth_mb']:+.1f}", f"{r['growth_mb']:+.1f}",
                         f"{slope:+.1f}" if slope is not None else "-",
                         f"{second:+.1f}" if second is not None else "-",
                         f"{r['max_block_growth_mb']:+.1f}" if r["max_block_growth_mb"] is not None else "-"])
        c.print_table(["mode", "audio min", "blocks", "wall min", "RSS MB first → last", "warm-up MB",
                       "growth MB after warm-up",
                       "MB per audio hour", "2nd half MB/h", "largest block MB"], rows,
                      title=f"Resident memory over the run ({scale} checkpoint, {device})")
        if perth:
            c.print_table(["Perth alone, 1-second calls", "calls", "growth MB", "MB per audio second",
                           "ms per call"],
                          [[label, r["calls"], f"{r['growth_mb']:+.1f}", f"{r['mb_per_audio_second']:+.3f}",
                            f"{r['seconds_per_call'] * 1e3:.1f}"] for label, r in perth.items()],
                          title="Perth's apply_watermark alone")

        settings = {"audio_minutes": minutes, "before_minutes": before_minutes, "block_chars": block_chars,
                    "tokens_per_text_token": rate, "seed": args.seed, "profile": "rtx4090",
                    "batch_size": "auto", "lookahead": True, "perth_calls": perth_calls,
                    "device": str(device), "dtype": args.dtype, "checkpoint": ck_record, "scale": scale,
                    "random_weights": loaded.random_weights, "quick": quick,
                    "run_wall_seconds": run_wall}
        c.write_json(args.out, NAME, env, settings, c.rounded({"modes": modes, "perth_alone": perth}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
