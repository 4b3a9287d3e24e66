"""What one S3Gen call costs, exact and with the opt-in approximations, and how far they move the output.

Run from the repository root. A full-size random checkpoint (about 3.2 GB) is
needed; without ``--checkpoint`` one is written once into
``benchmarks/.cache/ck_full`` (git-ignored), as ``bench_engine.py`` does::

    python benchmarks/bench_s3gen.py                                  # CPU: about 3 minutes
    python benchmarks/bench_s3gen.py --checkpoint ck_full --device cuda --repeats 5
    python benchmarks/bench_s3gen.py --quick                          # smoke test, tiny checkpoint

Each timed case is one vocoder call (``ChunkVocoder.decode``: S3Gen's flow
matching under CFG, then HiFT) on ``N`` new speech tokens with no context, with
the checkpoint's built-in voice, for N in ``--tokens`` and each mode:

* ``exact``: what every profile runs (upstream's 10 flow-matching steps, the
  whole voice prompt: 250 tokens, 10 s, on the released voice);
* ``cfm_steps=5``: ``engine.options.s3gen_cfm_steps = 5``;
* ``prompt=5s`` / ``prompt=2.5s``: ``engine.options.s3gen_prompt_seconds``
  (half and a quarter of the built-in voice prompt).

Modes run interleaved, one call each per round, after one untimed call per
mode. Reported per mode: the median seconds per N, the fitted cost
``fixed + per_token x N`` (:func:`seqopt_core.costs.fit_linear` over the
medians), each as a ratio to ``exact``, and how far the audio moves: the mean
absolute difference of the log-mel spectrograms (80 bands, natural log, 1e-5
floor) against ``exact``'s audio for the same tokens and seed, next to the
same distance between two ``exact`` calls with different seeds (what the
flow-matching noise alone moves it). **Random weights make noise, not speech**:
these distances say how much an approximation changes the output, never whether
it sounds worse; judge that with the released weights.

``--batched`` measures batched decoding instead (``ChatterboxEngine.decode_batch``,
one flow-matching call on ``B`` rows, then HiFT per row) against ``B``
one-at-a-time calls (``ChatterboxDecoder.decode``), for B in ``--batch-sizes``
(default 1 2 4; ``--quick``: 1 2), each row ``N`` new tokens (``--tokens``,
default 25; ``--quick``: 10) of its own, no context, exact settings. Sequential
and batched run interleaved, after one untimed call of each; reported: the median
wall seconds of each, their ratio, and the largest sample difference between the
two (float32 noise: the batch must equal the rows alone). It also times
upstream's ``s3gen.inference`` against seqopt's one-row path on the same row
(what the per-reference preparation and the removed syncs save per call) and the
preparation alone::

    python benchmarks/bench_s3gen.py --batched --tokens 25 --batch-sizes 1 2 4 \
        --out benchmarks/results/bench_s3gen_batch_cpu.json
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
from bench_engine import benchmark_checkpoint  # noqa: E402

NAME = "bench_s3gen"
#: The model stack's versions, recorded with the results.
MODEL_PACKAGES = ("torch", "transformers", "chatterbox-tts", "numpy", "librosa")
TOKENS = (10, 25, 75)
QUICK_TOKENS = (10, 25)
#: --batched: rows per S3Gen call, and new tokens per row.
BATCH_SIZES = (1, 2, 4)
QUICK_BATCH_SIZES = (1, 2)
BATCH_TOKENS = 25
QUICK_BATCH_TOKENS = 10
#: --batched: reference preparations timed (their mean is reported).
PREPARATIONS = 50
#: Modes: name -> engine options.
MODES: dict[str, dict[str, Any]] = {
    "exact": {},
    "cfm_steps=5": {"s3gen_cfm_steps": 5},
    "prompt=5s": {"s3gen_prompt_seconds": 5.0},
    "prompt=2.5s": {"s3gen_prompt_seconds": 2.5},
}


def log_mel(audio: Any, sample_rate: int) -> Any:
    """80-band log-mel spectrogram (natural log, 1e-5 floor) of ``audio``."""
    import librosa
    import numpy as np

    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sample_rate,
                                         n_fft=1024, hop_length=256, n_mels=80)
    return np.log(np.maximum(mel, 1e-5))


def mel_distance(a: Any, b: Any, sample_rate: int) -> float:
    """Mean absolute log-mel difference of two waveforms (cut to the shorter)."""
    import numpy as np

    n = min(len(a), len(b))
    return float(np.mean(np.abs(log_mel(a[:n], sample_rate) - log_mel(b[:n], sample_rate))))


def load_engine(args: Any, stack: ExitStack, tokenizer: Path) -> tuple[Path, dict[str, Any], Any, float]:
    """The benchmark's checkpoint folder and record, its Chatterbox engine (watermark off;
    ``--threads`` applied first) and the seconds the load took."""
    import torch

    from seqopt_core.engine import EngineRuntime
    from seqopt_plugins.chatterbox.engine import ChatterboxEngine
    from seqopt_plugins.chatterbox.options import ChatterboxOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    folder, ck_record = benchmark_checkpoint(stack, args.checkpoint, args.quick, tokenizer, NAME)
    started = time.perf_counter()
    engine = ChatterboxEngine.load(ChatterboxOptions(checkpoint=str(folder), watermark=False),
                                   EngineRuntime(args.device, args.dtype))
    return folder, ck_record, engine, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    c.add_model_arguments(parser)
    parser.add_argument("--tokens", type=int, nargs="+", default=None, metavar="N",
                        help=f"new speech tokens per call (default {' '.join(map(str, TOKENS))}; "
                             f"--quick: {' '.join(map(str, QUICK_TOKENS))}; --batched: the first, "
                             f"default {BATCH_TOKENS}, --quick {QUICK_BATCH_TOKENS})")
    parser.add_argument("--batched", action="store_true",
                        help="time one S3Gen call on B rows against B calls (see above)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, metavar="B",
                        help=f"--batched: rows per call (default {' '.join(map(str, BATCH_SIZES))}; "
                             f"--quick: {' '.join(map(str, QUICK_BATCH_SIZES))})")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    if args.batched:
        return batched_main(args)
    repeats = args.repeats or 1
    counts = sorted(set(args.tokens or (QUICK_TOKENS if args.quick else TOKENS)))

    import numpy as np

    from seqopt_core.costs import fit_linear
    from seqopt_core.engine import SegmentJob
    from seqopt_core.types import Segment
    from seqopt_plugins.chatterbox.options import ChatterboxOptions
    from seqopt_plugins.chatterbox.vocoder import SAMPLE_RATE, SPEECH_VOCAB

    tokenizer = c.resolve_tokenizer(args.tokenizer)
    with ExitStack() as stack:
        folder, ck_record, base, load_seconds = load_engine(args, stack, tokenizer)
        engines = {mode: base.configured(ChatterboxOptions(checkpoint=str(folder), watermark=False, **opts))
                   for mode, opts in MODES.items()}
        prompt_tokens = int(base.conds.gen["prompt_token"].size(1))
        env = c.environment(tokenizer, device=str(base.t3.device), checkpoint=ck_record,
                            load_seconds=round(load_seconds, 3), model_packages=c.package_versions(MODEL_PACKAGES))
        for line in c.environment_lines(env):
            print(line)
        rng = np.random.default_rng(0)
        tokens = {n: rng.integers(0, SPEECH_VOCAB, size=n).tolist() for n in counts}

        def call(mode: str, n: int, seed: int) -> tuple[float, Any]:
            engine = engines[mode]
            segment = Segment(0, "x", 0, 1, 1, "end")
            decoder = engine.decoder(SegmentJob(0, segment, seed), crossfade_ms=0.0)
            with engine.work():
                out = decoder.decode(tokens[n], 0, last=True)
            return out.vocoder_seconds, out.audio

        print(f"warm-up: one call per mode ({len(MODES)} calls)", file=sys.stderr)
        for mode in MODES:
            call(mode, counts[0], 1)
        seconds: dict[str, dict[int, list[float]]] = {m: {n: [] for n in counts} for m in MODES}
        audio: dict[str, dict[int, Any]] = {m: {} for m in MODES}
        for r in range(repeats):
            for n in counts:
                for mode in MODES:
                    s, wav = call(mode, n, 1)
                    seconds[mode][n].append(s)
                    audio[mode][n] = wav
                    print(f"[{NAME}] round {r + 1}/{repeats}: {mode:12} N={n:3}: {s:.2f} s", file=sys.stderr)
        noise_floor = {n: mel_distance(audio["exact"][n], call("exact", n, 2)[1], SAMPLE_RATE) for n in counts}

        results: dict[str, Any] = {"modes": {}, "noise_floor_mel_distance": noise_floor}
        exact_fit = fit_linear([(n, float(np.median(seconds["exact"][n]))) for n in counts])
        rows = []
        for mode, opts in MODES.items():
            medians = {n: float(np.median(seconds[mode][n])) for n in counts}
            fit = fit_linear(list(medians.items()))
            distance = {n: (0.0 if mode == "exact" else mel_distance(audio["exact"][n], audio[mode][n], SAMPLE_RATE))
                        for n in counts}
            results["modes"][mode] = {
                "engine_options": opts, "median_seconds": medians, "samples": seconds[mode],
                "fit": None if fit is None else fit.to_dict(), "mel_distance_to_exact": distance,
                "speedup_vs_exact": {n: medians_exact / medians[n] for n, medians_exact in
                                     ((n, float(np.median(seconds["exact"][n]))) for n in counts)},
            }
            fixed = "n/a" if fit is None else f"{fit.fixed_seconds:.2f} s"
            per = "n/a" if fit is None else f"{fit.per_token_seconds * 1000:.1f} ms"
            ratio = ("n/a" if fit is None or exact_fit is None or not exact_fit.fixed_seconds
                     else f"{fit.fixed_seconds / exact_fit.fixed_seconds:.2f}x")
            rows.append([mode, *[c.fmt_seconds(medians[n]) for n in counts], fixed, ratio, per,
                         " / ".join(f"{distance[n]:.2f}" for n in counts)])
        c.print_table(["mode", *[f"N={n}" for n in counts], "fixed", "fixed vs exact", "per token",
                       "log-mel distance to exact"], rows,
                      title=f"One S3Gen call on {base.t3.device} (voice prompt {prompt_tokens} tokens; "
                            f"{repeats} round(s), median; random weights: noise, not speech)")
        print("log-mel distance of exact vs exact with another seed (the noise floor): "
              + " / ".join(f"N={n}: {noise_floor[n]:.2f}" for n in counts))
        settings = {"tokens": counts, "repeats": repeats, "device": str(base.t3.device), "dtype": args.dtype,
                    "voice_prompt_tokens": prompt_tokens, "checkpoint": ck_record, "quick": args.quick,
                    "modes": MODES}
        c.write_json(args.out, NAME, env, settings, c.rounded(results))
    return 0


def batched_main(args: Any) -> int:
    """``--batched``: one S3Gen call on B rows vs B calls, and seqopt's one-row path vs upstream's."""
    repeats = args.repeats or 1
    sizes = sorted(set(args.batch_sizes or (QUICK_BATCH_SIZES if args.quick else BATCH_SIZES)))
    n = (args.tokens or [QUICK_BATCH_TOKENS if args.quick else BATCH_TOKENS])[0]
    if min(sizes) < 1 or n < 1:
        raise SystemExit("--batch-sizes and --tokens must be at least 1")

    import numpy as np
    import torch

    from seqopt_core.engine import DecodeCall, SegmentJob
    from seqopt_core.types import Segment
    from seqopt_plugins.chatterbox.s3gen_batch import (RenderRow, native_cpu_kernels, prepare_reference,
                                                       prepared_reference, render_rows)
    from seqopt_plugins.chatterbox.vocoder import SPEECH_VOCAB

    tokenizer = c.resolve_tokenizer(args.tokenizer)
    with ExitStack() as stack:
        folder, ck_record, engine, load_seconds = load_engine(args, stack, tokenizer)
        s3gen, ref = engine.s3gen, engine.conds.gen
        env = c.environment(tokenizer, device=str(engine.t3.device), checkpoint=ck_record,
                            load_seconds=round(load_seconds, 3), model_packages=c.package_versions(MODEL_PACKAGES))
        for line in c.environment_lines(env):
            print(line)
        rng = np.random.default_rng(0)
        rows = [tuple(rng.integers(0, SPEECH_VOCAB, size=n).tolist()) for _ in range(max(sizes))]

        def decoders(b: int) -> list[Any]:
            return [engine.decoder(SegmentJob(i, Segment(i, "x", 0, 1, 1, "end"), 1), crossfade_ms=0.0)
                    for i in range(b)]

        def sequential(b: int) -> tuple[float, list[Any]]:
            started = time.perf_counter()
            with engine.work():
                audio = [d.decode(rows[i], 0, last=True).audio for i, d in enumerate(decoders(b))]
            return time.perf_counter() - started, audio

        def batched(b: int) -> tuple[float, list[Any]]:
            calls = [DecodeCall(d, rows[i], 0, True) for i, d in enumerate(decoders(b))]
            started = time.perf_counter()
            with engine.work():
                audio = [out.audio for out in engine.decode_batch(calls)]
            return time.perf_counter() - started, audio

        row = RenderRow(rows[0], prepared_reference(s3gen, ref), seed=5)

        def upstream() -> float:
            started = time.perf_counter()
            with torch.random.fork_rng(), torch.inference_mode(), native_cpu_kernels(s3gen.device):
                torch.manual_seed(5)
                s3gen.inference(speech_tokens=torch.tensor(rows[0], device=s3gen.device), ref_dict=ref)
            return time.perf_counter() - started

        def ours() -> float:
            started = time.perf_counter()
            render_rows(s3gen, [row])
            return time.perf_counter() - started

        print(f"warm-up: one untimed call of each path (B = {sizes[-1]} batched)", file=sys.stderr)
        sequential(1)
        batched(sizes[-1])
        upstream()
        ours()
        timed: dict[int, dict[str, list[float]]] = {b: {"sequential": [], "batched": []} for b in sizes}
        difference: dict[int, float] = {}
        one_row: dict[str, list[float]] = {"upstream": [], "seqopt": []}
        for r in range(repeats):
            for b in sizes:
                seq_s, seq_audio = sequential(b)
                bat_s, bat_audio = batched(b)
                timed[b]["sequential"].append(seq_s)
                timed[b]["batched"].append(bat_s)
                difference[b] = max(difference.get(b, 0.0), max(float(np.max(np.abs(x - y)))
                                                                 for x, y in zip(seq_audio, bat_audio, strict=True)))
                print(f"[{NAME}] round {r + 1}/{repeats}: B={b}: {b} calls {seq_s:.2f} s, one call {bat_s:.2f} s",
                      file=sys.stderr)
            one_row["upstream"].append(upstream())
            one_row["seqopt"].append(ours())
        started = time.perf_counter()
        for _ in range(PREPARATIONS):
            prepare_reference(s3gen, ref)
        preparation = (time.perf_counter() - started) / PREPARATIONS

        results: dict[str, Any] = {"batch_sizes": {}, "one_row": {}, "reference_preparation_seconds": preparation}
        table = []
        for b in sizes:
            seq_m, bat_m = (float(np.median(timed[b][k])) for k in ("sequential", "batched"))
            results["batch_sizes"][b] = {"sequential_seconds": seq_m, "batched_seconds": bat_m,
                                         "speedup": seq_m / bat_m, "samples": timed[b],
                                         "max_abs_difference": difference[b]}
            table.append([str(b), c.fmt_seconds(seq_m), c.fmt_seconds(bat_m), f"{seq_m / bat_m:.2f}x",
                          f"{difference[b]:.1e}"])
        c.print_table(["B", "B calls", "one call", "speedup", "max |difference|"], table,
                      title=f"S3Gen on {engine.t3.device}: B rows of {n} tokens in one call vs B calls "
                            f"({repeats} round(s), median; random weights)")
        up_m, ours_m = (float(np.median(one_row[k])) for k in ("upstream", "seqopt"))
        results["one_row"] = {"upstream_seconds": up_m, "seqopt_seconds": ours_m, "saved_seconds": up_m - ours_m,
                              "samples": one_row}
        print(f"one row of {n} tokens: upstream s3gen.inference {up_m:.3f} s, seqopt {ours_m:.3f} s "
              f"(saved {1000 * (up_m - ours_m):+.1f} ms); preparing the reference once: "
              f"{1e6 * preparation:.0f} us")
        settings = {"batched": True, "tokens": n, "batch_sizes": sizes, "repeats": repeats,
                    "device": str(engine.t3.device), "dtype": args.dtype, "checkpoint": ck_record,
                    "quick": args.quick, "voice_prompt_tokens": int(ref["prompt_token"].size(1))}
        c.write_json(args.out, NAME, env, settings, c.rounded(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
