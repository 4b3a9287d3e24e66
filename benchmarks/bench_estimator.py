"""Estimator error: the tokenizer-free ``ratio`` estimator against the exact ``chatterbox`` count.

Run from the repository root (a few seconds)::

    SEQOPT_TOKENIZER=../shared/data/chatterbox_en_tokenizer.json \\
        python benchmarks/bench_estimator.py

    python benchmarks/bench_estimator.py --quick         # smoke test

Two forms of ``ratio`` are measured against the exact count:

* ``features``: its default, which counts what the tokenizer does (after
  ``punc_norm``, every character other than ``a``-``z`` and every event tag is
  one token; lowercase runs are looked up in a word table, the others cost
  ``per_word + per_letter * letters``), with the coefficients it ships;
* ``chars/token``: the old formula, ``ratio`` with ``chars_per_token`` set
  (``--chars-per-token``, default 1.6: the design report's hypothesis).

For each content class of ``seqopt_core/corpus`` (and all of them pooled) each
is compared with the exact count on

* every sentence (split by the profile's splitter, ``regex`` for rtx4090), and
* every segment of a plan made with the exact estimator and the profile's
  limits (``--profile rtx4090``: target 96, max 128 tokens),

reporting the mean signed error (estimate - exact, in tokens and in % of
exact), the mean and 95th-percentile absolute % error, the share of pieces it
under-counts at all, and the share it under-counts by more than the
target-to-max headroom (exact/estimate > max/target): such a piece, scaled to
a segment planned at the target, would be over ``max_tokens`` when counted
exactly. That risk is also measured directly: each class is planned with each
form and every resulting segment is re-counted exactly.

Fits, all on the exact-planned segments:

* the feature coefficients (``per_word``, ``per_letter``) by least squares
  weighted by 1/exact² (so relative errors count alike), on the whole corpus
  (in-sample; what ``ratio`` ships, rounded), and held out: leave one class out
  (fit on the other four classes, evaluate on the fifth) and two-fold (fit on
  the odd-numbered segments of every class, evaluate on the even ones, and the
  other way round);
* the characters per token of this tokenizer (whitespace-collapsed characters,
  as ``chars/token`` counts them, divided by exact tokens minus the 2
  start/stop tokens), per class and overall, plus the "safe" value (the
  smallest per-segment ratio, with which ``chars/token`` under-counts no
  exact-planned segment).

The whole corpus is re-planned with the fitted values to show the effect.
Finally it times counting every corpus sentence with each estimator, timed in
turn (median over ``--repeats``, default 5).
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
FEATURES = "features"  # ratio's default
CPT = "chars/token"  # ratio with chars_per_token set


def collapsed_chars(text: str) -> int:
    """Characters as ``chars/token`` counts them: whitespace runs count once."""
    return len(" ".join(text.split()))


def error_stats(pairs: list[tuple[str, int, int]], target: int, max_tokens: int) -> dict:
    """Error of an estimate vs exact over ``(text, exact, estimate)`` triples."""
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


# --- the feature fit ------------------------------------------------------------------


def fit_features(rows: list[tuple[str, int]], overhead: int) -> dict | None:
    """``ratio``'s least-squares fit of ``per_word``, ``per_letter`` (weights 1/exact²)."""
    from seqopt_plugins.estimators.ratio import fit_coefficients

    return fit_coefficients(rows, overhead)


def predict(rows: list[tuple[str, int]], fit: dict, overhead: int) -> list[tuple[str, int, int]]:
    from seqopt_plugins.estimators.ratio import estimate, features

    return [(t, e, estimate(features(t), fit["per_word"], fit["per_letter"], overhead)) for t, e in rows]


def held_out(segments: dict[str, list[tuple[str, int]]], overhead: int) -> dict:
    """Leave-one-class-out and two-fold (odd/even segments) fits and their predictions."""
    classes = list(segments)
    loco_fits: dict[str, dict | None] = {}
    loco_pred: dict[str, list[tuple[str, int, int]]] = {}
    for cls in classes:
        fit = fit_features([r for k in classes if k != cls for r in segments[k]], overhead)
        loco_fits[cls] = fit
        if fit is not None:
            loco_pred[cls] = predict(segments[cls], fit, overhead)
    folds = {parity: {cls: rows[parity::2] for cls, rows in segments.items()} for parity in (0, 1)}
    fold_fits = {parity: fit_features([r for rows in folds[1 - parity].values() for r in rows], overhead)
                 for parity in (0, 1)}
    fold_pred: dict[str, list[tuple[str, int, int]]] = {cls: [] for cls in classes}
    for parity, fit in fold_fits.items():
        if fit is None:
            fold_pred = {}
            break
        for cls, rows in folds[parity].items():
            fold_pred[cls] += predict(rows, fit, overhead)
    fold_pred = {cls: p for cls, p in fold_pred.items() if p}
    for pred in (loco_pred, fold_pred):
        if pred:
            pred[OVERALL] = [x for cls in classes if cls in pred for x in pred[cls]]
    return {
        "leave_one_class_out": {"fits": loco_fits, "predictions": loco_pred},
        "two_fold": {"fits": {"fit_on_odd_eval_even": fold_fits[0], "fit_on_even_eval_odd": fold_fits[1]},
                     "predictions": fold_pred},
    }


# --- plans ----------------------------------------------------------------------------


def exact_counts_of_plan(splitter, splitter_name, estimator, exact, settings, text) -> list[int]:
    """Plan ``text`` with ``estimator`` (a ratio); the exact count of every segment."""
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


class _FittedRatio:
    """``ratio``'s feature count with other coefficients (for the re-plan with a fresh fit)."""

    def __init__(self, per_word: float, per_letter: float, overhead: int) -> None:
        self.per_word, self.per_letter, self.overhead = per_word, per_letter, overhead

    def count(self, text: str) -> int:
        from seqopt_plugins.estimators.ratio import estimate, features

        return estimate(features(text), self.per_word, self.per_letter, self.overhead)


def _pct(x: float) -> str:
    return f"{x:.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    parser.add_argument("--chars-per-token", type=float, default=1.6,
                        help="chars_per_token of the old formula compared with the default "
                             "(default 1.6, the report's hypothesis)")
    parser.add_argument("--profile", default="rtx4090",
                        help="profile whose planner limits and splitter are used (default rtx4090)")
    parser.add_argument("--splitter", default=None, help="sentence splitter (default: the profile's)")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or (1 if args.quick else 5)

    from seqopt_core import SegmentPlanner, load_config, split_sentences
    from seqopt_plugins.estimators import ratio as ratio_module
    from seqopt_plugins.estimators.chatterbox import START_STOP_TOKENS

    tokenizer = c.resolve_tokenizer(args.tokenizer)
    loaded = load_config(None, profile=args.profile)
    settings = loaded.config.planner.settings()
    splitter_name = args.splitter or loaded.config.splitter.name
    host = c.plugin_host()
    (spl,) = c.enabled_splitters(host, [splitter_name])
    splitter = spl.splitter
    exact = c.exact_estimator(host, tokenizer)
    estimators = {FEATURES: c.ratio_estimator(host), CPT: c.ratio_estimator(host, args.chars_per_token)}
    if estimators[FEATURES].options.chars_per_token is not None:
        raise SystemExit("error: ratio's default is not the feature count")
    overhead = estimators[FEATURES].options.overhead_tokens
    if overhead != START_STOP_TOKENS or estimators[CPT].options.overhead_tokens != START_STOP_TOKENS:
        raise SystemExit(f"error: ratio overhead {overhead} != exact start/stop {START_STOP_TOKENS}")
    shipped = {"per_word": ratio_module.PER_WORD, "per_letter": ratio_module.PER_LETTER}
    labels = {FEATURES: f"ratio, features (per_word {shipped['per_word']}, per_letter {shipped['per_letter']})",
              CPT: f"ratio, {args.chars_per_token} chars/token"}

    corpus = c.load_corpus()
    if args.quick:  # first two paragraphs of each class: enough to exercise every path
        corpus = {k: "\n\n".join(c.paragraphs(v)[:2]) for k, v in corpus.items()}
    env = c.environment(tokenizer, splitters={spl.name: spl.description})
    c.print_header("bench_estimator", env, [
        f"ratio (+{overhead} start/stop) vs exact 'chatterbox': {labels[FEATURES]}; {labels[CPT]}; "
        f"profile {args.profile}: splitter {splitter_name}, target {settings.target_tokens}, "
        f"max {settings.max_tokens}, min_fill {settings.min_fill}",
        "corpus: " + ", ".join(f"{k} {len(v.encode('utf-8'))} B" for k, v in corpus.items())
        + (" (--quick: first 2 paragraphs each)" if args.quick else ""),
    ])

    pieces: dict[str, dict[str, list[tuple[str, int]]]] = {}  # class -> piece -> (text, exact)
    counts: dict[str, dict[str, dict[str, list[int]]]] = {name: {} for name in estimators}
    planned: dict[str, dict[str, list[int]]] = {name: {} for name in estimators}
    with c.progress(len(corpus), "estimator") as step:
        for cls, text in corpus.items():
            sentences = [sp.text(text) for sp in split_sentences(text, splitter, splitter_name)]
            plan = SegmentPlanner(splitter, exact, settings, splitter_name=splitter_name,
                                  estimator_name="chatterbox").plan(text)
            assert all(s.tokens == exact.count(s.text) for s in plan.segments)
            pieces[cls] = {"sentences": [(t, exact.count(t)) for t in sentences],
                           "segments": [(s.text, s.tokens) for s in plan.segments]}
            for name, est in estimators.items():
                planned[name][cls] = exact_counts_of_plan(splitter, splitter_name, est, exact, settings, text)
            step(cls)
    pieces[OVERALL] = {p: [x for cls in corpus for x in pieces[cls][p]] for p in PIECES}
    classes = [*corpus, OVERALL]
    triples = {name: {cls: {p: [(t, e, est.count(t)) for t, e in pieces[cls][p]] for p in PIECES}
                      for cls in classes} for name, est in estimators.items()}
    errors = {name: {cls: {p: error_stats(triples[name][cls][p], settings.target_tokens, settings.max_tokens)
                           for p in PIECES} for cls in classes} for name in estimators}
    plans = {}
    for name in estimators:
        planned[name][OVERALL] = [n for cls in corpus for n in planned[name][cls]]
        plans[name] = {cls: over_max_summary(v, settings.max_tokens) for cls, v in planned[name].items()}

    # the feature coefficients: in-sample (whole corpus) and held out
    segments = {cls: pieces[cls]["segments"] for cls in corpus}
    fitted = fit_features(pieces[OVERALL]["segments"], overhead)
    ho = held_out(segments, overhead)
    mae_rows: dict[str, dict[str, dict]] = {
        f"{CPT} {args.chars_per_token}": {cls: errors[CPT][cls]["segments"] for cls in classes},
        "features, shipped (in-sample)": {cls: errors[FEATURES][cls]["segments"] for cls in classes},
    }
    if fitted is not None:
        refit_triples = {cls: predict(pieces[cls]["segments"], fitted, overhead) for cls in classes}
        mae_rows["features, refit (in-sample)"] = {
            cls: error_stats(v, settings.target_tokens, settings.max_tokens) for cls, v in refit_triples.items()}
    for key, label in (("leave_one_class_out", "features, leave one class out"),
                       ("two_fold", "features, two-fold (odd/even)")):
        preds = ho[key]["predictions"]
        mae_rows[label] = {cls: error_stats(preds[cls], settings.target_tokens, settings.max_tokens)
                           for cls in classes if preds.get(cls)}
    feature_fit = {
        "weights": "1 / exact^2 per segment (relative squared error)",
        "pieces": "segments of exact-estimator plans",
        "shipped": shipped,
        "in_sample": fitted,
        "leave_one_class_out": ho["leave_one_class_out"]["fits"],
        "two_fold": ho["two_fold"]["fits"],
        "segment_errors": mae_rows,
        "word_table_entries": len(ratio_module.WORD_TOKENS),
    }

    fits = {cls: {p: fit_chars_per_token([(t, e, 0) for t, e in pieces[cls][p]], overhead) for p in PIECES}
            for cls in classes}

    # re-plan the whole corpus with the fitted values: measured effect
    refit: dict[str, dict] = {}
    candidates = [(f"{CPT} best_fit", c.ratio_estimator(host, fits[OVERALL]["segments"]["best_fit"]),
                   {"chars_per_token": fits[OVERALL]["segments"]["best_fit"]}),
                  (f"{CPT} safe", c.ratio_estimator(host, fits[OVERALL]["segments"]["safe"]),
                   {"chars_per_token": fits[OVERALL]["segments"]["safe"]})]
    if fitted is not None:
        candidates.append((f"{FEATURES} refit", _FittedRatio(fitted["per_word"], fitted["per_letter"], overhead),
                           {"per_word": fitted["per_word"], "per_letter": fitted["per_letter"]}))
    for label, est, values in candidates:
        counted = [n for text in corpus.values()
                   for n in exact_counts_of_plan(splitter, splitter_name, est, exact, settings, text)]
        refit[label] = {**values, **over_max_summary(counted, settings.max_tokens)}
    exact_plan_segments = len(pieces[OVERALL]["segments"])
    exact_plan_mean = statistics.fmean(e for _, e in pieces[OVERALL]["segments"])
    exact_plan_max = max(e for _, e in pieces[OVERALL]["segments"])

    # cost of one count, side by side
    all_sentences = [t for t, _ in pieces[OVERALL]["sentences"]]
    timed_estimators = {"chatterbox": exact, f"ratio ({FEATURES})": estimators[FEATURES],
                        f"ratio ({CPT})": estimators[CPT]}
    timed = c.time_interleaved({name: (lambda e=est: [e.count(t) for t in all_sentences])
                                for name, est in timed_estimators.items()}, repeats)
    timing = {name: {"seconds": c.summarize(samples), "counts": len(all_sentences),
                     "us_per_count": 1e6 * statistics.median(samples) / len(all_sentences)}
              for name, (samples, _) in timed.items()}
    feature_us = timing[f"ratio ({FEATURES})"]["us_per_count"]
    ratios = {"exact_vs_ratio_features": timing["chatterbox"]["us_per_count"] / feature_us,
              "ratio_features_vs_chars_per_token": feature_us / timing[f"ratio ({CPT})"]["us_per_count"]}

    # --- tables -------------------------------------------------------------------
    for name in estimators:
        for piece in PIECES:
            what = ("sentences (" + splitter_name + ")") if piece == "sentences" else \
                f"segments of exact-estimator plans (target {settings.target_tokens}, max {settings.max_tokens})"
            c.print_table(
                ["class", "n", "exact mean", "signed err (tok)", "signed err %", "mean abs err %",
                 "p95 abs err %", "max under (tok)", "under", "under > headroom"],
                [[cls, e["n"], f"{e['exact_tokens_mean']:.1f}", f"{e['mean_signed_error_tokens']:+.2f}",
                  f"{e['mean_signed_error_pct']:+.1f}%", _pct(e["mean_abs_error_pct"]),
                  _pct(e["p95_abs_error_pct"]), e["max_under_tokens"], _pct(100 * e["under_fraction"]),
                  _pct(100 * e["under_beyond_headroom_fraction"])]
                 for cls in classes for e in [errors[name][cls][piece]]],
                title=f"{labels[name]} vs exact, on {what}; error = estimate - exact; "
                      f"'under > headroom': exact/estimate > {settings.max_tokens}/{settings.target_tokens}",
            )
    c.print_table(
        ["class", "estimator", "planned segments", f"> {settings.max_tokens} exact", "share",
         "exact mean", "exact max"],
        [[cls, name, r["segments"], r["over_max"], _pct(100 * r["over_max_fraction"]),
          f"{r['exact_tokens_mean']:.1f}", r["exact_tokens_max"]]
         for cls in classes for name in estimators for r in [plans[name][cls]]],
        title=f"Plans made with ratio ({FEATURES}; {args.chars_per_token} {CPT}), "
              "every segment counted exactly",
    )
    coef_rows = [["shipped (ratio.py)", "whole corpus, rounded", f"{shipped['per_word']:.3f}",
                  f"{shipped['per_letter']:.3f}"]]
    if fitted is not None:
        coef_rows.append(["in-sample", f"whole corpus ({fitted['n']} segments)", f"{fitted['per_word']:.3f}",
                          f"{fitted['per_letter']:.3f}"])
    for cls, fit in feature_fit["leave_one_class_out"].items():
        if fit is not None:
            coef_rows.append(["leave one class out", f"all but {cls} ({fit['n']})", f"{fit['per_word']:.3f}",
                              f"{fit['per_letter']:.3f}"])
    for key, fit in feature_fit["two_fold"].items():
        if fit is not None:
            coef_rows.append(["two-fold", key.replace("_", " ") + f" ({fit['n']})", f"{fit['per_word']:.3f}",
                              f"{fit['per_letter']:.3f}"])
    c.print_table(["fit", "fitted on", "per_word", "per_letter"], coef_rows,
                  title="Feature coefficients (least squares, weights 1/exact²): tokens of a lowercase run "
                        "not in the word table = per_word + per_letter × letters")
    c.print_table(
        ["estimate", *classes],
        [[label, *(_pct(v[cls]["mean_abs_error_pct"]) if cls in v else "-" for cls in classes)]
         for label, v in mae_rows.items()],
        title="Mean absolute error per exact-planned segment, % of exact (held-out rows: each segment "
              "estimated with coefficients fitted without it)",
    )
    c.print_table(
        ["estimate", *classes],
        [[label, *(f"{v[cls]['mean_signed_error_pct']:+.1f}% / {100 * v[cls]['under_fraction']:.0f}%"
                   if cls in v else "-" for cls in classes)]
         for label, v in mae_rows.items()],
        title="Mean signed error / share under-counted, per exact-planned segment",
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
        ["estimator", "values", "segments", f"> {settings.max_tokens} exact", "share", "exact mean",
         "exact max"],
        [[f"{FEATURES} shipped", f"{shipped['per_word']:.3f} / {shipped['per_letter']:.3f}",
          plans[FEATURES][OVERALL]["segments"], plans[FEATURES][OVERALL]["over_max"],
          _pct(100 * plans[FEATURES][OVERALL]["over_max_fraction"]),
          f"{plans[FEATURES][OVERALL]['exact_tokens_mean']:.1f}", plans[FEATURES][OVERALL]["exact_tokens_max"]],
         [f"{CPT} hypothesis", f"{args.chars_per_token:.3f}", plans[CPT][OVERALL]["segments"],
          plans[CPT][OVERALL]["over_max"], _pct(100 * plans[CPT][OVERALL]["over_max_fraction"]),
          f"{plans[CPT][OVERALL]['exact_tokens_mean']:.1f}", plans[CPT][OVERALL]["exact_tokens_max"]]]
        + [[label, (f"{r['per_word']:.3f} / {r['per_letter']:.3f}" if "per_word" in r
                    else f"{r['chars_per_token']:.3f}"), r["segments"], r["over_max"],
            _pct(100 * r["over_max_fraction"]), f"{r['exact_tokens_mean']:.1f}", r["exact_tokens_max"]]
           for label, r in refit.items()]
        + [["(exact estimator)", "-", exact_plan_segments, 0, "0.0%", f"{exact_plan_mean:.1f}", exact_plan_max]],
        title="Whole corpus planned with ratio at the shipped, hypothesis and fitted (in-sample) values, "
              "segments counted exactly",
    )
    c.print_table(
        ["estimator", "counts", "median total", "min–max", "µs per count", "relative"],
        [[name, t["counts"], c.fmt_seconds(t["seconds"]["median"]), c.fmt_spread(t["seconds"]),
          f"{t['us_per_count']:.2f}", f"{t['us_per_count'] / feature_us:.1f}×"]
         for name, t in timing.items()],
        title=f"Cost of counting every corpus sentence once (median of {repeats}; relative to ratio, "
              f"{FEATURES})",
    )

    c.write_json(args.out, NAME, env, {
        "quick": args.quick, "repeats": repeats, "profile": args.profile, "splitter": splitter_name,
        "target_tokens": settings.target_tokens, "max_tokens": settings.max_tokens,
        "min_fill": settings.min_fill, "estimators": {FEATURES: {"options": {}, **shipped},
                                                      CPT: {"options": {"chars_per_token": args.chars_per_token}}},
        "chars_per_token": args.chars_per_token, "overhead_tokens": overhead,
        "corpus_bytes": {k: len(v.encode("utf-8")) for k, v in corpus.items()},
        "error_sign": "estimate - exact (negative: the estimate under-counts)",
        "under_beyond_headroom": "exact * target > estimate * max_tokens",
    }, c.rounded({"errors": errors, "plans": plans, "feature_fit": feature_fit,
                  "chars_per_token_fit": fits, "refit_plans": refit,
                  "count_timing": {**timing, **ratios}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
