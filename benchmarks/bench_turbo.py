"""Chatterbox Turbo against the English model: time to first audio, RTF and S3Gen's share.

Two engines, each with its own profile, streaming the same text in one process,
interleaved (English ``rtx4090``, then ``turbo``, ``--repeats`` times):

* **rtx4090** on a full-size English checkpoint (Llama T3 with CFG: two rows per
  segment; S3Gen with 10 flow-matching steps);
* **turbo** on a full-size Turbo checkpoint (GPT-2 T3 without CFG: one row; the
  mean-flow S3Gen in 2 steps), with its own segment limits and the chunk sizes the
  deadline policy plans from Turbo's own measured costs.

Both run in benchmark length mode with the same number of speech tokens for the
text (``--speech-tokens-per-char`` x its characters; each engine's ratio per text
token follows from its own exact count, since the two tokenizers differ), the
watermark off and the same seed. Reported per engine: TTFA, RTF, wall and audio
seconds, where the time went (T3 vs S3Gen, from the pipeline's chunk records, as
``bench_engine`` reads them), S3Gen calls and their median, playback stalls, and
the turbo/rtx4090 ratios within each round.

Random weights make noise, not speech, and never stop on their own: this measures
cost, never quality.

    python benchmarks/bench_turbo.py                    # full size; writes the checkpoints if absent
    python benchmarks/bench_turbo.py --quick            # tiny checkpoints, a minute
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402
import bench_engine  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
CONTENDERS = ("rtx4090", "turbo")
REPORTED = ("time_to_first_audio", "rtf", "wall_seconds", "audio_seconds", "t3_seconds", "s3gen_seconds",
            "stall_seconds")


def _checkpoint(path: Path | None, default: Path, model: str, quick: bool, tmp: Path, tokenizer: Path) -> Path:
    """``path``, else ``default`` (full size) or a tiny one in ``tmp`` with ``--quick``, written
    at random when its folder is empty."""
    from seqopt_plugins.chatterbox.checkpoint import LAYOUTS, write_random_checkpoint

    folder = path or (tmp / model if quick else default)
    if not all((folder / f).is_file() for f in LAYOUTS[model].required_files):
        scale = "tiny" if quick else "full"
        print(f"writing a {scale} random {model} checkpoint to {folder}", file=sys.stderr)
        write_random_checkpoint(folder, model=model, scale=scale, seed=0,
                                tokenizer=tokenizer if model == "english" else None)
    return folder


def pipeline_for(profile: str, checkpoint: Path, args: Any, text: str, speech_tokens: int) -> Any:
    """``profile`` on ``checkpoint`` in benchmark length mode: about ``speech_tokens`` for ``text``."""
    from seqopt_core.api import as_loaded_config
    from seqopt_core.pipeline import Pipeline

    loaded = as_loaded_config(None, profile=profile, overrides=common.engine_overrides(
        {"device": args.device, "dtype": args.dtype, "seed": 0},
        {"checkpoint": str(checkpoint), "watermark": False}))
    engine, load_seconds = common.load_engine(loaded)
    probe = Pipeline.from_config(loaded, engine=engine)
    ratio = speech_tokens / probe.planner.plan(text).total_tokens
    pipe = Pipeline.from_config(as_loaded_config(loaded, overrides={"engine": {"options": {
        "benchmark_tokens_per_text_token": ratio}}}), engine=engine)
    return pipe, load_seconds, ratio


def main() -> None:
    parser = common.base_parser("bench_turbo", __doc__)
    common.add_model_arguments(parser)
    parser.add_argument("--turbo-checkpoint", type=Path, default=None, metavar="DIR",
                        help="full-size Turbo checkpoint (default benchmarks/.cache/ck_turbo_full, written if absent)")
    parser.add_argument("--chars", type=int, default=None, help="text length in characters (default 300; --quick 80)")
    parser.add_argument("--speech-tokens-per-char", type=float, default=1.5,
                        help="speech tokens generated per character of text, on both sides (default 1.5)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = common.check_repeats(args.repeats) or 1
    chars = args.chars or (80 if args.quick else 300)
    tokenizer = common.resolve_tokenizer(args.tokenizer)
    tmp = tempfile.TemporaryDirectory()
    english = _checkpoint(args.checkpoint, CACHE / "ck_full", "english", args.quick, Path(tmp.name), tokenizer)
    turbo = _checkpoint(args.turbo_checkpoint, CACHE / "ck_turbo_full", "turbo", args.quick, Path(tmp.name),
                        tokenizer)
    text = bench_engine.corpus_text(chars, common.plugin_host().create("splitter", "regex"))
    speech_tokens = round(args.speech_tokens_per_char * len(text))

    pipes: dict[str, Any] = {}
    notes = []
    for name, folder in (("rtx4090", english), ("turbo", turbo)):
        pipe, load_seconds, ratio = pipeline_for(name, folder, args, text, speech_tokens)
        pipes[name] = pipe
        info = pipe.engine.describe()
        notes.append(f"{name}: engine {info['name']}, {info['scale']} checkpoint {common.display_path(folder)} "
                     f"({'RANDOM weights: noise, not speech' if info['random_weights'] else 'real weights'}), "
                     f"loaded in {load_seconds:.1f} s; {ratio:.2f} speech tokens per text token")
    device = pipes["rtx4090"].engine.describe()["device"]
    env = common.environment(tokenizer=tokenizer, device=device, torch=torch.__version__,
                             torch_threads=torch.get_num_threads())
    with common.progress(len(CONTENDERS), "costs and warm-up") as step:
        for name, pipe in pipes.items():
            if pipe.scheduler.uses_playback:
                model = pipe.costs  # measured once per device and engine settings, then cached
                notes.append(f"{name} costs: a vocoder call {model.decode_fixed_seconds:.2f} s + "
                             f"{model.decode_per_token_seconds * 1000:.1f} ms/token, a T3 step "
                             f"{model.t3_step_seconds * 1000:.1f} ms ({model.source})")
            bench_engine.run_once(pipe, "A short warm-up.", name, False)
            step(name)
    common.print_header("bench_turbo", env, [
        f"text: {len(text)} characters of the corpus; about {speech_tokens} speech tokens on each side; "
        f"{repeats} round(s), rtx4090 then turbo", *notes])

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with common.progress(repeats * len(CONTENDERS), "turbo vs rtx4090") as step:
        for _ in range(repeats):
            for name in CONTENDERS:
                runs[name].append(bench_engine.run_once(pipes[name], text, name, False))
                step(name)

    summary: dict[str, Any] = {}
    for name, samples in runs.items():
        row = {key: statistics.median(s[key] for s in samples) for key in REPORTED}
        row["s3gen_share"] = statistics.median(s["s3gen_seconds"] / s["wall_seconds"] for s in samples)
        row["t3_share"] = statistics.median(s["t3_seconds"] / s["wall_seconds"] for s in samples)
        calls = [t for s in samples for t in s["s3gen_call_seconds"]]
        row["s3gen_calls"] = statistics.median(s["s3gen_calls"] for s in samples)
        row["s3gen_call_median_seconds"] = statistics.median(calls) if calls else None
        row["segments"] = samples[0]["segments"]
        row["speech_tokens"] = samples[0]["speech_tokens"]
        summary[name] = row
    ratios = {key: statistics.median(t[key] / r[key] for t, r in zip(runs["turbo"], runs["rtx4090"]) if r[key])
              for key in ("time_to_first_audio", "rtf", "wall_seconds", "t3_seconds", "s3gen_seconds")}
    summary["turbo_over_rtx4090"] = ratios

    def cell(value: Any, seconds: bool = True) -> str:
        if value is None:
            return "-"
        return common.fmt_seconds(value) if seconds else f"{value:.2f}"

    r, t = summary["rtx4090"], summary["turbo"]
    rows = [
        ["segments", r["segments"], t["segments"], "-"],
        ["speech tokens", r["speech_tokens"], t["speech_tokens"], "-"],
        ["time to first audio", cell(r["time_to_first_audio"]), cell(t["time_to_first_audio"]),
         f"{ratios['time_to_first_audio']:.2f}x"],
        ["RTF", cell(r["rtf"], False), cell(t["rtf"], False), f"{ratios['rtf']:.2f}x"],
        ["wall", cell(r["wall_seconds"]), cell(t["wall_seconds"]), f"{ratios['wall_seconds']:.2f}x"],
        ["T3", cell(r["t3_seconds"]), cell(t["t3_seconds"]), f"{ratios['t3_seconds']:.2f}x"],
        ["S3Gen", cell(r["s3gen_seconds"]), cell(t["s3gen_seconds"]), f"{ratios['s3gen_seconds']:.2f}x"],
        ["S3Gen share of wall", f"{r['s3gen_share']:.0%}", f"{t['s3gen_share']:.0%}", "-"],
        ["S3Gen calls (median call)", f"{r['s3gen_calls']:g} ({cell(r['s3gen_call_median_seconds'])})",
         f"{t['s3gen_calls']:g} ({cell(t['s3gen_call_median_seconds'])})", "-"],
        ["playback stalls", cell(r["stall_seconds"]), cell(t["stall_seconds"]), "-"],
    ]
    common.print_table(["measure", "rtx4090 (English)", "turbo", "turbo / rtx4090"], rows,
                       title=f"Turbo vs the English model, {len(text)} characters (medians of {repeats})")
    common.write_json(args.out, "bench_turbo", env,
                      {"chars": len(text), "speech_tokens": speech_tokens, "repeats": repeats,
                       "speech_tokens_per_char": args.speech_tokens_per_char, "quick": args.quick,
                       "notes": notes},
                      common.rounded({"text": text, "summary": summary, "runs": runs}))
    tmp.cleanup()


if __name__ == "__main__":
    main()
