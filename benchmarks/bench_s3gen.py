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


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    c.add_model_arguments(parser)
    parser.add_argument("--tokens", type=int, nargs="+", default=None, metavar="N",
                        help=f"new speech tokens per call (default {' '.join(map(str, TOKENS))}; "
                             f"--quick: {' '.join(map(str, QUICK_TOKENS))})")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or 1
    counts = sorted(set(args.tokens or (QUICK_TOKENS if args.quick else TOKENS)))

    import numpy as np
    import torch

    from seqopt_core.costs import fit_linear
    from seqopt_core.engine import EngineRuntime, SegmentJob
    from seqopt_core.types import Segment
    from seqopt_plugins.chatterbox.engine import ChatterboxEngine
    from seqopt_plugins.chatterbox.options import ChatterboxOptions
    from seqopt_plugins.chatterbox.vocoder import SAMPLE_RATE, SPEECH_VOCAB

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = c.resolve_tokenizer(args.tokenizer)
    with ExitStack() as stack:
        folder, ck_record = benchmark_checkpoint(stack, args.checkpoint, args.quick, tokenizer, NAME)
        started = time.perf_counter()
        base = ChatterboxEngine.load(ChatterboxOptions(checkpoint=str(folder), watermark=False),
                                     EngineRuntime(args.device, args.dtype))
        load_seconds = time.perf_counter() - started
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


if __name__ == "__main__":
    raise SystemExit(main())
