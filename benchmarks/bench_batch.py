"""Batched segment synthesis: T3 throughput at B = 1, 2, 4, 8 and look-ahead time to first audio.

Run from the repository root. A full-size random checkpoint (about 3.2 GB) is
needed; without ``--checkpoint`` one is written once into
``benchmarks/.cache/ck_full`` (git-ignored), as ``bench_engine.py`` does::

    python benchmarks/bench_batch.py --checkpoint /path/to/ck_full          # CPU: tens of minutes
    python benchmarks/bench_batch.py --checkpoint ck_full --device cuda --repeats 3
    python benchmarks/bench_batch.py --quick                                # smoke test, tiny checkpoint

**Random weights make noise, not speech**: the compute is upstream Chatterbox's
own at the released sizes; nothing here says anything about audio quality. Every
segment runs in benchmark length mode (exactly ``ceil(R x its text tokens)``
speech tokens, stop token ignored), so every mode generates the same tokens.

A text of about 5,000 characters of ``seqopt_core/corpus`` (whole sentences,
``bench_engine.corpus_text``) is planned with the ``rtx4090`` profile. Then, for
each repeat, interleaved:

* **T3 throughput**: all the plan's speech tokens, sequentially (seqopt's
  one-segment loop, ``SpeechTokenLoop``, as streaming uses it), by continuous
  batching with B = 2, 4, 8 segments at a time (``BatchedSpeechTokenLoop.generate``
  with ``max_active = B``: a finished segment is replaced by the next, as the
  scheduler does), and, for comparison, in consecutive fixed batches of 8 that
  each run to their longest segment ("B=8 fixed"); each segment with its own
  seeded generator (``ChatterboxEngine.batch_item`` of the segment's ``SegmentJob``). Reported: wall time, speech tokens/s, throughput
  relative to sequential, peak memory during the mode above the level before it
  (``seqopt_core.harness.runner.peak_memory``: CUDA's peak allocated bytes, or on
  a CPU the peak resident set after ``malloc_trim``, sampled every 20 ms, so the
  mode that ran before cannot hide this one's growth), and whether every
  segment's tokens equal the sequential ones.
* **Time to first audio**: ``Pipeline.stream`` with ``batch_size = 1`` (plain
  streaming) and with ``batch_size = 8, lookahead = true`` (first segment alone,
  later segments batched); the stream is closed after its first chunk.

Medians over ``--repeats`` (default 1; the JSON holds every sample).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
from bench_engine import benchmark_checkpoint, corpus_text  # noqa: E402

from seqopt_core.harness.runner import peak_memory  # noqa: E402

NAME = "bench_batch"
TEXT_CHARS = 5000
QUICK_CHARS = 250
QUICK_TOKENS_PER_TEXT_TOKEN = 0.25
BATCH_SIZES = (2, 4, 8)
#: The comparison mode: consecutive fixed batches of this size (no continuous batching).
FIXED_BATCH = 8
LOOKAHEAD_BATCH = 8


# --- memory --------------------------------------------------------------------------


# --- the modes -------------------------------------------------------------------------


def _items(pipeline: Any, segments: list[Any]) -> list[Any]:
    """T3's input for each segment, as the scheduler hands it to the engine: the voice's
    conditionals, the text tokens, the length limits and the segment's own seeded generator
    (new ones each call, so every mode draws what the segment draws alone)."""
    from seqopt_core.engine import SegmentJob

    seed = pipeline.settings.seed
    return [pipeline.engine.batch_item(SegmentJob(i, segment, seed)) for i, segment in enumerate(segments)]


def _alignment(pipeline: Any) -> Any:
    from seqopt_plugins.chatterbox.engine import alignment_options

    return alignment_options(pipeline.attention)


def sequential_tokens(pipeline: Any) -> Callable[[list[Any]], list[list[int]]]:
    """The one-segment loop, segment after segment (what streaming runs per segment)."""
    from seqopt_plugins.chatterbox.t3_stream import SpeechTokenLoop

    engine = pipeline.engine
    loop = SpeechTokenLoop(engine.t3)

    def run(segments: list[Any]) -> list[list[int]]:
        out = []
        with engine.work(pipeline.attention):
            for item in _items(pipeline, segments):
                out.append(list(loop.tokens(item.t3_cond, item.text_tokens, sampling=engine.sampling,
                                            limits=item.limits, generator=item.generator,
                                            alignment=_alignment(pipeline),
                                            length_guard=item.length_guard)))
        return out

    return run


def _generate(pipeline: Any, segments: list[Any], max_active: int | None) -> list[list[int]]:
    from seqopt_plugins.chatterbox.t3_batch import BatchedSpeechTokenLoop

    engine = pipeline.engine
    with engine.work(pipeline.attention):
        results = BatchedSpeechTokenLoop(engine.t3).generate(
            _items(pipeline, segments), sampling=engine.sampling, alignment=_alignment(pipeline),
            max_active=max_active)
    return [list(r.tokens) for r in results]


def batched_tokens(pipeline: Any, batch_size: int) -> Callable[[list[Any]], list[list[int]]]:
    """Continuous batching (what the scheduler does): all segments through
    ``BatchedSpeechTokenLoop.generate`` with at most ``batch_size`` in the batch at once."""

    def run(segments: list[Any]) -> list[list[int]]:
        return _generate(pipeline, segments, batch_size)

    return run


def fixed_batches(pipeline: Any, batch_size: int) -> Callable[[list[Any]], list[list[int]]]:
    """Consecutive fixed batches of ``batch_size`` segments, each run until its
    longest segment ends (no replacement of finished segments): for comparison."""

    def run(segments: list[Any]) -> list[list[int]]:
        out = []
        for i in range(0, len(segments), batch_size):
            out.extend(_generate(pipeline, segments[i:i + batch_size], None))
        return out

    return run


def time_to_first_audio(pipeline: Any, text: str, plan: Any) -> float:
    stream = pipeline.stream(text, plan=plan)
    started = time.perf_counter()
    next(stream)
    seconds = time.perf_counter() - started
    stream.close()
    return seconds


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    c.add_model_arguments(parser)
    parser.add_argument("--chars", type=int, default=None, metavar="N",
                        help=f"text size in characters (default {TEXT_CHARS}; --quick: {QUICK_CHARS})")
    parser.add_argument("--tokens-per-text-token", type=float, default=None, metavar="R",
                        help="benchmark length mode: speech tokens per text token (default 1.0; "
                             f"--quick: {QUICK_TOKENS_PER_TEXT_TOKEN})")
    parser.add_argument("--seed", type=int, default=0, help="synthesis.seed (default 0)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES), metavar="B",
                        help=f"continuous batch sizes to time (default {' '.join(map(str, BATCH_SIZES))})")
    parser.add_argument("--no-fixed", action="store_true",
                        help=f"skip the fixed-batch comparison mode at B = {FIXED_BATCH}")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or 1
    chars = args.chars or (QUICK_CHARS if args.quick else TEXT_CHARS)
    if args.tokens_per_text_token is None:
        args.tokens_per_text_token = QUICK_TOKENS_PER_TEXT_TOKEN if args.quick else 1.0

    import torch

    from seqopt_core import Pipeline
    from seqopt_core.api import as_loaded_config

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = c.resolve_tokenizer(args.tokenizer)

    with ExitStack() as stack:
        folder, ck_record = benchmark_checkpoint(stack, args.checkpoint, args.quick, tokenizer, NAME)

        synthesis = {"device": args.device, "dtype": args.dtype, "seed": args.seed}
        engine_options = {"checkpoint": str(folder), "watermark": False,
                          "benchmark_tokens_per_text_token": args.tokens_per_text_token}

        def config(**extra: Any) -> Any:
            return as_loaded_config(profile="rtx4090",
                                    overrides=c.engine_overrides({**synthesis, **extra}, engine_options))

        def pipeline(**extra: Any) -> Any:
            return Pipeline.from_config(config(**extra), engine=shared)

        shared, load_seconds = c.load_engine(config(batch_size=1))
        plain = pipeline(batch_size=1)
        lookahead = pipeline(batch_size=LOOKAHEAD_BATCH, lookahead=True)
        loaded = shared.loaded
        device = loaded.device
        accel = torch.cuda.get_device_name(device) if device.type == "cuda" else None
        env = c.environment(tokenizer, torch=torch.__version__, torch_threads=torch.get_num_threads(),
                            model_device=str(device), accelerator=accel,
                            chatterbox_tts=c.package_versions(("chatterbox-tts",))["chatterbox-tts"],
                            transformers=c.package_versions(("transformers",))["transformers"])

        splitter = c.plugin_host().create("splitter", "regex")
        text = corpus_text(chars, splitter)
        plan = plain.planner.plan(text)
        segments = list(plan.segments)
        auto = pipeline().batching(plan)
        notes = [
            c.checkpoint_note(ck_record, loaded, load_seconds, device, accel, f"T3 dtype {args.dtype}",
                              f"torch threads {torch.get_num_threads()}"),
            f"text: {len(text)} characters of seqopt_core/corpus, {len(segments)} segments "
            f"(rtx4090 planner), {plan.total_tokens} text tokens; benchmark length mode "
            f"{args.tokens_per_text_token:g} speech tokens per text token; seed {args.seed}; "
            f"attention {plain.attention.attn_implementation}",
            f"batch_size = auto would pick B = {auto} here; {repeats} repeat(s), modes interleaved",
        ]
        c.print_header(NAME, env, notes)

        modes: dict[str, Callable[[list[Any]], list[list[int]]]] = {"sequential": sequential_tokens(plain)}
        for b in args.batch_sizes:
            modes[f"B={b}"] = batched_tokens(plain, b)
        if not args.no_fixed:
            modes[f"B={FIXED_BATCH} fixed"] = fixed_batches(plain, FIXED_BATCH)
        samples: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        ttfa: dict[str, list[float]] = {"plain": [], "lookahead": []}
        reference: list[list[int]] | None = None
        # warm-up, untimed: one short batch and one segment alone
        batched_tokens(plain, 2)(segments[:2])
        with c.progress(repeats * (len(modes) + 2), "bench_batch") as tick:
            for r in range(repeats):
                for mode, run in modes.items():
                    with peak_memory(device) as mem:
                        t0 = time.perf_counter()
                        tokens = run(segments)
                        wall = time.perf_counter() - t0
                    if reference is None and mode == "sequential":
                        reference = tokens
                    n = sum(len(t) for t in tokens)
                    samples[mode].append({"wall_seconds": wall, "speech_tokens": n,
                                          "speech_tokens_per_second": n / wall if wall else 0.0,
                                          "equal_to_sequential": tokens == reference,
                                          "peak_above_start_bytes": mem.get("bytes")})
                    tick(f"repeat {r + 1}: {mode}")
                for label, pipe in (("plain", plain), ("lookahead", lookahead)):
                    ttfa[label].append(time_to_first_audio(pipe, text, plan))
                    tick(f"repeat {r + 1}: TTFA {label}")

        seq_rate = c.summarize([s["speech_tokens_per_second"] for s in samples["sequential"]])["median"]
        results: dict[str, Any] = {"modes": {}, "time_to_first_audio": {}}
        rows = []
        for mode, runs in samples.items():
            wall = c.summarize([s["wall_seconds"] for s in runs])
            rate = c.summarize([s["speech_tokens_per_second"] for s in runs])
            peaks = [s["peak_above_start_bytes"] for s in runs if s["peak_above_start_bytes"] is not None]
            equal = all(s["equal_to_sequential"] for s in runs)
            results["modes"][mode] = {"wall_seconds": wall, "speech_tokens_per_second": rate,
                                      "ratio_to_sequential": rate["median"] / seq_rate if seq_rate else None,
                                      "peak_above_start_bytes": max(peaks) if peaks else None,
                                      "equal_to_sequential": equal, "samples": runs}
            rows.append([mode, c.fmt_seconds(wall["median"]), c.fmt_spread(wall), runs[0]["speech_tokens"],
                         f"{rate['median']:.1f}", f"{rate['median'] / seq_rate:.2f}x" if seq_rate else "-",
                         f"{max(peaks) / c.MB:.0f}" if peaks else "-", "yes" if equal else "NO"])
        c.print_table(["mode", "wall", "spread", "speech tokens", "tokens/s", "vs sequential",
                       "peak MB above start", "tokens = sequential"], rows,
                      title=f"T3 speech tokens for {len(segments)} segments")
        rows = []
        for label, values in ttfa.items():
            summary = c.summarize(values)
            results["time_to_first_audio"][label] = {**summary, "samples": values}
            rows.append([label, c.fmt_seconds(summary["median"]), c.fmt_spread(summary)])
        c.print_table(["stream", "time to first audio", "spread"], rows,
                      title=f"Time to first audio: batch_size 1 (plain) vs {LOOKAHEAD_BATCH} with look-ahead")

        settings = {"chars": chars, "text_chars": len(text), "segments": len(segments),
                    "text_tokens": plan.total_tokens, "batch_sizes": list(args.batch_sizes),
                    "fixed_batch": None if args.no_fixed else FIXED_BATCH,
                    "lookahead_batch_size": LOOKAHEAD_BATCH, "auto_batch_size": auto,
                    "tokens_per_text_token": args.tokens_per_text_token, "seed": args.seed,
                    "repeats": repeats, "device": str(device), "dtype": args.dtype,
                    "attention": plain.attention.attn_implementation, "checkpoint": ck_record,
                    "quick": args.quick}
        c.write_json(args.out, NAME, env, settings, c.rounded(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
