"""Estimator error: the ``ratio`` heuristic against the exact ``chatterbox`` token count.

Run from the repository root (a few seconds)::

    SEQOPT_TOKENIZER=../shared/data/chatterbox_en_tokenizer.json \\
        python benchmarks/bench_estimator.py

    python benchmarks/bench_estimator.py --quick         # smoke test

For each content class of ``seqopt_core/corpus`` (and all of them pooled) it
compares ``ratio`` (``--chars-per-token``, default 1.6: the design report's
hypothesis) with the exact count, on

* every sentence (split by the profile's splitter, ``regex`` for rtx4090), and
* every segment of a plan made with the exact estimator and the profile's
  limits (``--profile rtx4090``: target 96, max 128 tokens),

reporting the mean signed error (ratio - exact, in tokens and in % of exact),
the mean and 95th-percentile absolute % error, the share of pieces ratio
under-counts at all, and the share it under-counts by more than the
target-to-max headroom (exact/ratio > max/target): such a piece, scaled to a
ratio-planned segment at the target, would be over ``max_tokens`` when counted
exactly. That last risk is also measured directly: each class is planned with
``ratio`` and every resulting segment is re-counted exactly.

It also fits the characters per token of this tokenizer (whitespace-collapsed
characters, as ``ratio`` counts them, divided by exact tokens minus the 2
start/stop tokens), per class and overall, plus the "safe" value (the smallest
per-segment ratio, with which ``ratio`` under-counts no exact-planned segment),
and re-plans with both fitted values to show the effect. Those fits are made
on this same corpus (in-sample). Finally it times counting every corpus
sentence with each estimator, the two timed in turn (median over ``--repeats``,
default 5).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "bench_estimator"
OVERALL = "all"
PIECES = ("sentences", "segments")


def collapsed_chars(text: str) -> int:
    """Characters as ``ratio`` counts them: whitespace runs count once."""
    return len(" ".join(text.split()))


def error_stats(pairs: list[tuple[str, int, int]], target: int, max_tokens: int) -> dict:
    """Error of ratio vs exact over ``(text, exact, ratio)`` pairs."""
    exact = [e for _, e, _ in pairs]
    signed = [r - e for _, e, r in pairs]
    signed_pct = [100.0 * (r - e) / e for _, e, r in pairs]
    abs_pct = [abs(x) for x in signed_pct]
    under = [r < e for _, e, r in pairs]
    beyond_headroom = [e * target > r * max_tokens for _, e, r in pairs]
    return {
        "n": len(pairs),
        "exact_tokens_mean": statistics.fmean(exact),
        "mean_signed_error_tokens": statistics.fmean(signed),
        "mean_signed_error_pct": statistics.fmean(signed_pct),
        "mean_abs_error_pct": statistics.fmean(abs_pct),
        "p95_abs_error_pct": c.percentile(abs_pct, 95),
        "max_under_tokens": max(0, -min(signed)),
        "under_fraction": sum(under) / len(pairs),
        "under_beyond_headroom_fraction": sum(beyond_headroom) / len(pairs),
    }


def fit_chars_per_token(pairs: list[tuple[str, int, int]], overhead: int) -> dict:
    """Chars per token that best explains ``pairs`` (pooled), and the safe (smallest) one."""
    usable = [(collapsed_chars(t), e - overhead) for t, e, _ in pairs if e - overhead > 0]
    per_piece = [ch / tok for ch, tok in usable]
    return {
        "chars": sum(ch for ch, _ in usable),
        "tokens": sum(tok for _, tok in usable),
        "best_fit": sum(ch for ch, _ in usable) / sum(tok for _, tok in usable),
        "p05": c.percentile(per_piece, 5),
        "safe": min(per_piece),
    }


def exact_counts_of_ratio_plan(splitter, splitter_name, estimator, exact, settings, text) -> list[int]:
    """Plan ``text`` with a ratio ``estimator``; the exact count of every segment."""
    from seqopt_core import SegmentPlanner

    plan = SegmentPlanner(splitter, estimator, settings, splitter_name=splitter_name,
                          estimator_name="ratio").plan(text)
    return [exact.count(s.text) for s in plan.segments]


def over_max_summary(counted: list[int], max_tokens: int) -> dict:
    over = sum(n > max_tokens for n in counted)
    return {
        "segments": len(counted),
        "over_max": over,
        "over_max_fraction": over / len(counted),
        "exact_tokens_mean": statistics.fmean(counted),
        "exact_tokens_max": max(counted),
    }


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    parser.add_argument("--chars-per-token", type=float, default=1.6,
                        help="ratio's chars_per_token under test (default 1.6, the report's hypothesis)")
    parser.add_argument("--profile", default="rtx4090",
                        help="profile whose planner limits and splitter are used (default rtx4090)")
    parser.add_argument("--splitter", default=None, help="sentence splitter (default: the profile's)")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or (1 if args.quick else 5)

    from seqopt_core import SegmentPlanner, load_config, split_sentences
    from seqopt_plugins.estimators.chatterbox import START_STOP_TOKENS

    tokenizer = c.resolve_tokenizer(args.tokenizer)
    loaded = load_config(None, profile=args.profile)
    settings = loaded.config.planner.settings()
    splitter_name = args.splitter or loaded.config.splitter.name
    host = c.plugin_host()
    (spl,) = c.enabled_splitters(host, [splitter_name])
    splitter = spl.splitter
    exact = c.exact_estimator(host, tokenizer)
    ratio = c.ratio_estimator(host, args.chars_per_token)
    overhead = ratio.options.overhead_tokens
    if overhead != START_STOP_TOKENS:
        raise SystemExit(f"error: ratio overhead {overhead} != exact start/stop {START_STOP_TOKENS}")

    corpus = c.load_corpus()
    if args.quick:  # first two paragraphs of each class: enough to exercise every path
        corpus = {k: "\n\n".join(c.paragraphs(v)[:2]) for k, v in corpus.items()}
    env = c.environment(tokenizer, splitters={spl.name: spl.description})
    c.print_header("bench_estimator", env, [
        f"ratio chars_per_token={args.chars_per_token} (+{overhead} start/stop) vs exact 'chatterbox'; "
        f"profile {args.profile}: splitter {splitter_name}, target {settings.target_tokens}, "
        f"max {settings.max_tokens}, min_fill {settings.min_fill}",
        "corpus: " + ", ".join(f"{k} {len(v.encode('utf-8'))} B" for k, v in corpus.items())
        + (" (--quick: first 2 paragraphs each)" if args.quick else ""),
    ])

    pairs: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    ratio_counts: dict[str, list[int]] = {}
    with c.progress(len(corpus), "estimator") as step:
        for cls, text in corpus.items():
            sentences = [sp.text(text) for sp in split_sentences(text, splitter, splitter_name)]
            plan = SegmentPlanner(splitter, exact, settings, splitter_name=splitter_name,
                                  estimator_name="chatterbox").plan(text)
            pairs[cls] = {
                "sentences": [(t, exact.count(t), ratio.count(t)) for t in sentences],
                "segments": [(s.text, s.tokens, ratio.count(s.text)) for s in plan.segments],
            }
            assert all(s.tokens == exact.count(s.text) for s in plan.segments)
            ratio_counts[cls] = exact_counts_of_ratio_plan(splitter, splitter_name, ratio, exact,
                                                           settings, text)
            step(cls)
    pairs[OVERALL] = {p: [x for cls in corpus for x in pairs[cls][p]] for p in PIECES}
    ratio_counts[OVERALL] = [n for cls in corpus for n in ratio_counts[cls]]
    ratio_plans = {cls: over_max_summary(v, settings.max_tokens) for cls, v in ratio_counts.items()}

    classes = [*corpus, OVERALL]
    errors = {cls: {p: error_stats(pairs[cls][p], settings.target_tokens, settings.max_tokens)
                    for p in PIECES} for cls in classes}
    fits = {cls: {p: fit_chars_per_token(pairs[cls][p], overhead) for p in PIECES} for cls in classes}

    # re-plan with the fitted chars_per_token values (overall, from segments): measured effect
    refit: dict[str, dict] = {}
    for label, value in (("best_fit", fits[OVERALL]["segments"]["best_fit"]),
                         ("safe", fits[OVERALL]["segments"]["safe"])):
        est = c.ratio_estimator(host, value)
        counted = [n for text in corpus.values()
                   for n in exact_counts_of_ratio_plan(splitter, splitter_name, est, exact, settings, text)]
        refit[label] = {"chars_per_token": value, **over_max_summary(counted, settings.max_tokens)}
    exact_plan_segments = len(pairs[OVERALL]["segments"])
    exact_plan_mean = statistics.fmean(e for _, e, _ in pairs[OVERALL]["segments"])

    # cost of one count, side by side
    all_sentences = [t for t, _, _ in pairs[OVERALL]["sentences"]]
    timed = c.time_interleaved({name: (lambda e=est: [e.count(t) for t in all_sentences])
                                for name, est in (("chatterbox", exact), ("ratio", ratio))}, repeats)
    timing = {name: {"seconds": c.summarize(samples), "counts": len(all_sentences),
                     "us_per_count": 1e6 * statistics.median(samples) / len(all_sentences)}
              for name, (samples, _) in timed.items()}
    timing["exact_vs_ratio"] = timing["chatterbox"]["us_per_count"] / timing["ratio"]["us_per_count"]

    # --- tables -------------------------------------------------------------------
    for piece in PIECES:
        what = ("sentences (" + splitter_name + ")") if piece == "sentences" else \
            f"segments of exact-estimator plans (target {settings.target_tokens}, max {settings.max_tokens})"
        c.print_table(
            ["class", "n", "exact mean", "signed err (tok)", "signed err %", "mean abs err %",
             "p95 abs err %", "max under (tok)", "under", "under > headroom"],
            [[cls, e["n"], f"{e['exact_tokens_mean']:.1f}", f"{e['mean_signed_error_tokens']:+.2f}",
              f"{e['mean_signed_error_pct']:+.1f}%", f"{e['mean_abs_error_pct']:.1f}%",
              f"{e['p95_abs_error_pct']:.1f}%", e["max_under_tokens"], f"{100 * e['under_fraction']:.1f}%",
              f"{100 * e['under_beyond_headroom_fraction']:.1f}%"]
             for cls in classes for e in [errors[cls][piece]]],
            title=f"ratio ({args.chars_per_token} chars/token) vs exact, on {what}; "
                  f"error = ratio - exact; 'under > headroom': exact/ratio > "
                  f"{settings.max_tokens}/{settings.target_tokens}",
        )
    c.print_table(
        ["class", "ratio-planned segments", f"> {settings.max_tokens} exact", "share",
         "exact mean", "exact max"],
        [[cls, r["segments"], r["over_max"], f"{100 * r['over_max_fraction']:.1f}%",
          f"{r['exact_tokens_mean']:.1f}", r["exact_tokens_max"]]
         for cls in classes for r in [ratio_plans[cls]]],
        title=f"Plans made with ratio ({args.chars_per_token} chars/token), every segment counted exactly",
    )
    c.print_table(
        ["class", "best fit (segments)", "best fit (sentences)", "p05 (segments)", "safe (segments)"],
        [[cls, f"{f['segments']['best_fit']:.3f}", f"{f['sentences']['best_fit']:.3f}",
          f"{f['segments']['p05']:.3f}", f"{f['segments']['safe']:.3f}"]
         for cls in classes for f in [fits[cls]]],
        title=f"Characters per token of this tokenizer (collapsed chars / (exact - {overhead})); "
              "'safe' = smallest per-segment value",
    )
    c.print_table(
        ["chars_per_token", "value", "segments", f"> {settings.max_tokens} exact", "share",
         "exact mean", "exact max"],
        [["hypothesis", f"{args.chars_per_token:.3f}", ratio_plans[OVERALL]["segments"],
          ratio_plans[OVERALL]["over_max"], f"{100 * ratio_plans[OVERALL]['over_max_fraction']:.1f}%",
          f"{ratio_plans[OVERALL]['exact_tokens_mean']:.1f}", ratio_plans[OVERALL]["exact_tokens_max"]]]
        + [[label, f"{r['chars_per_token']:.3f}", r["segments"], r["over_max"],
            f"{100 * r['over_max_fraction']:.1f}%", f"{r['exact_tokens_mean']:.1f}", r["exact_tokens_max"]]
           for label, r in refit.items()]
        + [["(exact estimator)", "-", exact_plan_segments, 0, "0.0%", f"{exact_plan_mean:.1f}",
            max(e for _, e, _ in pairs[OVERALL]["segments"])]],
        title="Whole corpus planned with ratio at the hypothesis and at the fitted values "
              "(in-sample), segments counted exactly",
    )
    c.print_table(
        ["estimator", "counts", "median total", "min–max", "µs per count", "relative"],
        [[name, t["counts"], c.fmt_seconds(t["seconds"]["median"]), c.fmt_spread(t["seconds"]),
          f"{t['us_per_count']:.2f}", f"{t['us_per_count'] / timing['ratio']['us_per_count']:.1f}×"]
         for name, t in timing.items() if name != "exact_vs_ratio"],
        title=f"Cost of counting every corpus sentence once (median of {repeats})",
    )

    c.write_json(args.out, NAME, env, {
        "quick": args.quick, "repeats": repeats, "profile": args.profile, "splitter": splitter_name,
        "target_tokens": settings.target_tokens, "max_tokens": settings.max_tokens,
        "min_fill": settings.min_fill, "chars_per_token": args.chars_per_token,
        "overhead_tokens": overhead,
        "corpus_bytes": {k: len(v.encode("utf-8")) for k, v in corpus.items()},
        "error_sign": "ratio - exact (negative: ratio under-counts)",
        "under_beyond_headroom": "exact * target > ratio * max_tokens",
    }, c.rounded({"errors": errors, "ratio_plans": ratio_plans, "chars_per_token_fit": fits,
                  "refit_plans": refit, "count_timing": timing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
