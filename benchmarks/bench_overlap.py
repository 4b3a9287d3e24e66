"""T3 and S3Gen overlapped (``synthesis.overlap = true``) against in turn, ``rtx4090`` profile.

Run from the repository root. A full-size random checkpoint (about 3.2 GB) is
needed; without ``--checkpoint`` one is written once into
``benchmarks/.cache/ck_full`` (git-ignored), as ``bench_engine.py`` does::

    python benchmarks/bench_overlap.py                          # CPU: about 10 minutes
    python benchmarks/bench_overlap.py --device cuda --repeats 5
    python benchmarks/bench_overlap.py --quick                  # smoke test, tiny checkpoint

One text of about ``--chars`` characters (corpus sentences, ``bench_engine.corpus_text``)
is streamed with the ``rtx4090`` profile (deadline chunks from this device's cost
model, measured once before anything is timed), in benchmark length mode, with
the watermark off and one seed, ``--repeats`` times in turn then overlapped (A B A
B). Reported per mode: wall, time to first audio, RTF, T3 and S3Gen seconds (from
the chunk events), **overlap achieved** = (T3 + S3Gen - wall) / min(T3, S3Gen):
0 when the stages ran one after the other, 1 when the shorter one was hidden
entirely; and whether the two modes made the same audio. Medians over repeats;
the JSON holds every sample. **Random weights make noise, not speech.**
"""

from __future__ import annotations

import statistics
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
from bench_engine import benchmark_checkpoint, corpus_text  # noqa: E402

NAME = "bench_overlap"
MODEL_PACKAGES = ("torch", "transformers", "chatterbox-tts", "numpy")
CHARS = 500
QUICK_CHARS = 150
MODES = {"in turn": False, "overlapped": True}


def overlap_achieved(t3: float, s3gen: float, wall: float) -> float:
    """Share of the shorter stage hidden behind the other: (t3 + s3gen - wall) / min."""
    shorter = min(t3, s3gen)
    return max(0.0, (t3 + s3gen - wall) / shorter) if shorter > 0 else 0.0


def run_once(pipeline: Any, text: str) -> dict[str, Any]:
    import numpy as np

    stream = pipeline.stream(text)
    audio = np.concatenate([chunk.audio for chunk in stream])
    metrics = stream.metrics
    g = metrics.generation
    t3 = sum(e.t3_seconds for e in metrics.chunks)
    s3gen = sum(e.decode_seconds for e in metrics.chunks)
    return {"wall": g.wall_seconds, "ttfa": g.time_to_first_audio, "rtf": g.rtf,
            "audio_seconds": g.audio_seconds, "chunks": g.chunks, "t3_seconds": t3, "decode_seconds": s3gen,
            "overlap": overlap_achieved(t3, s3gen, g.wall_seconds), "audio": audio}


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    c.add_model_arguments(parser)
    parser.add_argument("--chars", type=int, default=None, help=f"text length (default {CHARS}; --quick {QUICK_CHARS})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or (1 if args.quick else 2)

    import numpy as np
    import torch

    from seqopt_core import Pipeline, load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = c.resolve_tokenizer(args.tokenizer)
    with ExitStack() as stack:
        folder, ck_record = benchmark_checkpoint(stack, args.checkpoint, args.quick, tokenizer, NAME)
        base = c.engine_overrides({"device": args.device, "dtype": args.dtype, "seed": args.seed},
                                  {"checkpoint": str(folder), "watermark": False,
                                   "benchmark_tokens_per_text_token": 1.0})
        engine, load_seconds = c.load_engine(load_config(profile="rtx4090", overrides=base))
        pipelines = {mode: Pipeline.from_config(profile="rtx4090", engine=engine, overrides={
            **base, "synthesis": {**base["synthesis"], "overlap": on}}) for mode, on in MODES.items()}
        text = corpus_text(args.chars or (QUICK_CHARS if args.quick else CHARS),
                           c.plugin_host().create("splitter", "regex"))
        env = c.environment(tokenizer, device=str(engine.describe()["device"]), checkpoint=ck_record,
                            load_seconds=round(load_seconds, 3), threads=torch.get_num_threads(),
                            model_packages=c.package_versions(MODEL_PACKAGES))
        c.print_header(NAME, env)
        costs = pipelines["overlapped"].costs  # measured (or read) before anything is timed
        figures = ("decode_fixed_seconds", "decode_per_token_seconds", "t3_step_seconds", "t3_prefill_seconds")
        other = pipelines["in turn"].costs  # the same cache entry: the same chunks
        if any(getattr(other, f) != getattr(costs, f) for f in figures):
            raise SystemExit("error: the two modes plan with different cost models")
        print(f"cost model ({costs.source}): decode {costs.decode_fixed_seconds:.3f} s + "
              f"{costs.decode_per_token_seconds * 1000:.2f} ms/token, T3 step {costs.t3_step_seconds * 1000:.1f} ms",
              file=sys.stderr)
        samples: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        print(f"{len(text)} characters, {repeats} round(s) of: " + ", ".join(MODES), file=sys.stderr)
        for r in range(repeats):
            for mode in MODES:
                samples[mode].append(run_once(pipelines[mode], text))
                s = samples[mode][-1]
                print(f"  round {r + 1} {mode}: wall {s['wall']:.1f} s, overlap {s['overlap']:.2f}", file=sys.stderr)
        same = all(np.array_equal(a["audio"], b["audio"]) for a, b in zip(samples["in turn"], samples["overlapped"]))
        keys = ("wall", "ttfa", "rtf", "t3_seconds", "decode_seconds", "overlap")
        summary = {mode: {k: statistics.median(s[k] for s in samples[mode]) for k in keys} for mode in MODES}
        rows = [[mode, f"{m['wall']:.2f}", f"{m['ttfa']:.2f}", f"{m['rtf']:.2f}", f"{m['t3_seconds']:.2f}",
                 f"{m['decode_seconds']:.2f}", f"{m['overlap']:.2f}"] for mode, m in summary.items()]
        rows.append(["overlapped / in turn", f"{summary['overlapped']['wall'] / summary['in turn']['wall']:.2f}x",
                     f"{summary['overlapped']['ttfa'] / summary['in turn']['ttfa']:.2f}x", "", "", "", ""])
        c.print_table(["mode", "wall s", "TTFA s", "RTF", "T3 s", "decode s", "overlap"], rows,
                      title=f"{len(text)} characters, median of {repeats}; same audio: {same}")
        results = {"text_chars": len(text), "same_audio": same, "median": summary,
                   "cost_model": costs.to_dict(),
                   "samples": {mode: [{k: v for k, v in s.items() if k != "audio"} for s in ss]
                               for mode, ss in samples.items()}}
        settings = {"repeats": repeats, "seed": args.seed, "device": args.device, "dtype": args.dtype,
                    "quick": args.quick, "profile": "rtx4090"}
        c.write_json(args.out, NAME, env, settings, c.rounded(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
