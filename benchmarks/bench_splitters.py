"""Splitter accuracy on public sentence-boundary golden rules, and planning speed per splitter.

Run from the repository root (about a minute on 2 cores)::

    python benchmarks/bench_splitters.py            # -> benchmarks/results/bench_splitters.json
    python benchmarks/bench_splitters.py --quick    # smoke test, a few seconds

Every enabled splitter (``PluginHost.discover().create("splitter", name)``) is
scored by :func:`seqopt_core.compare_splitters` on three labelled sets:

* ``pysbd-golden``: pySBD's English Golden Rules (48 cases from pySBD's
  ``tests/lang/test_english.py``; pySBD itself marks one of them xfail);
* ``pragmatic-golden``: the 52 English Golden Rules of pragmatic_segmenter,
  which pySBD's set is taken from (two expected outputs that rewrite the text
  are scored as the text's single sentence: see ``benchmarks/data/README.md``);
* ``hard-cases``: the project's own hard cases (``tests/splitter_cases.py``).

For each set and splitter it reports cases split exactly as the gold (n/N and
%), **false boundaries** (a boundary the gold does not have: for speech a pause
inside a phrase such as "Dr. Smith", the costlier mistake) and **missed
boundaries** separately, boundary precision / recall / F1 over the boundaries
inside each text, errors (an exception or a broken splitter contract, i.e. a
lossy or out-of-order result), and the time to split the whole set (median of
``--repeats``, after one untimed run that gives the scores).

Planning speed: ``SegmentPlanner(splitter, ratio, PlannerSettings(target_tokens=96,
max_tokens=128)).plan(text)`` and ``split_sentences(text, splitter)`` on 100 KB
of the project's corpus (``_common.build_text``), timed round-robin across
splitters, median of ``--repeats`` (default 5) after a warm-up call. ``--quick``:
10 KB and 1 repeat.

Finally it checks the default profiles' splitter (``load_config(profile=...)``):
best or within one case of the best splitter on each golden set, at least 95%
exact on pySBD's set, no error anywhere (lossless), no regression on the hard
cases, and 100 KB planned in under a second.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "bench_splitters"
DATA_DIR = c.BENCH_DIR / "data"
HARD_CASES_FILE = c.REPO_ROOT / "tests" / "splitter_cases.py"
#: label -> data file in benchmarks/data (None: the project's hard cases)
SETS: dict[str, str | None] = {
    "pysbd-golden": "pysbd_en_golden_rules.json",
    "pragmatic-golden": "pragmatic_segmenter_en_golden_rules.json",
    "hard-cases": None,
}
#: How the case tables mark cases the source itself treats specially.
FLAG_TEXT = {"xfail_in_source": "xfail in pySBD", "skipped_in_source": "skipped by pragmatic_segmenter",
             "adapted": "gold adapted"}
#: Splitters in this order first (the order of docs/splitters.md), then any others.
ORDER = ("regex", "nltk", "spacy", "pysbd")
GOLDEN_TARGET = 0.95  # the default splitter's exact share on pySBD's rules
PLAN_BUDGET_SECONDS = 1.0  # planning 100 KB must stay well under this
TARGET_TOKENS = 96
MAX_TOKENS = 128


# --- data ------------------------------------------------------------------------------


def load_rule_set(filename: str) -> tuple[dict, list]:
    """(source record, cases as LabeledText) of one JSON rule set in benchmarks/data."""
    from seqopt_core import LabeledText

    data = json.loads((DATA_DIR / filename).read_text(encoding="utf-8"))
    cases = [LabeledText(k["id"], k["text"], tuple(k["sentences"]), k.get("note", ""))
             for k in data["cases"]]
    flags = {k["id"]: [f for f in ("xfail_in_source", "skipped_in_source", "adapted") if k.get(f)]
             for k in data["cases"]}
    meta = {"file": c.display_path(DATA_DIR / filename), "name": data["name"],
            "description": data["description"], "source": data["source"],
            "flags": {cid: f for cid, f in flags.items() if f}}
    return meta, cases


def load_hard_cases() -> tuple[dict, list]:
    spec = importlib.util.spec_from_file_location("splitter_cases", HARD_CASES_FILE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    meta = {"file": c.display_path(HARD_CASES_FILE), "name": "hard_cases",
            "description": "the project's own hard cases, written with the regex splitter's rules "
                           "(in sample for regex)", "source": {"repository": "this one"}, "flags": {}}
    return meta, list(module.HARD_CASES)


def load_sets(labels: list[str]) -> dict[str, tuple[dict, list]]:
    return {label: (load_hard_cases() if SETS[label] is None else load_rule_set(SETS[label]))
            for label in labels}


# --- accuracy --------------------------------------------------------------------------


def score_set(splitters, cases, repeats: int) -> dict:
    """Scores (first run) and split time (median of ``repeats`` more runs) per splitter."""
    from seqopt_core import compare_splitters

    named = {s.name: s.splitter for s in splitters}
    report = compare_splitters(named, cases)
    seconds = {name: [] for name in named}
    for _ in range(repeats):
        again = compare_splitters(named, cases)
        for name, score in again.scores.items():
            seconds[name].append(score.seconds)
    scores = {}
    for name, s in report.scores.items():
        failures = report.failures(name)
        scores[name] = {
            "cases": s.cases, "exact": s.exact, "exact_share": s.exact / s.cases if s.cases else 0.0,
            "false_boundaries": s.false_boundaries, "missed_boundaries": s.missed_boundaries,
            "boundary_precision": s.boundary_precision, "boundary_recall": s.boundary_recall,
            "boundary_f1": s.boundary_f1, "errors": s.errors,
            "seconds": c.summarize(seconds[name]) if seconds[name] else c.summarize([s.seconds]),
            "failures": [{"case": r.case_id, "predicted": list(r.predicted), "missed": list(r.missed),
                          "false": list(r.spurious), "error": r.error} for r in failures],
        }
    return scores


def case_rows(scores: dict, cases: list, flags: dict) -> tuple[list[list[str]], list[str]]:
    """Rows of the case table (cases some splitter got wrong) and the ids every one got right."""
    names = list(scores)
    wrong = {name: {f["case"]: f for f in scores[name]["failures"]} for name in names}
    rows, right = [], []
    for case in cases:
        if not any(case.id in wrong[n] for n in names):
            right.append(case.id)
            continue
        label = case.id + (f" ({', '.join(FLAG_TEXT[f] for f in flags[case.id])})"
                           if flags.get(case.id) else "")
        cells = []
        for n in names:
            f = wrong[n].get(case.id)
            if f is None:
                cells.append("ok")
            elif f["error"]:
                cells.append("error")
            else:
                cells.append(f"{len(f['false'])} false, {len(f['missed'])} missed")
        rows.append([label, *cells])
    return rows, right


def print_set(label: str, meta: dict, cases: list, scores: dict) -> None:
    c.print_table(
        ["splitter", "exact", "exact %", "false boundaries", "missed boundaries", "precision", "recall",
         "F1", "errors", "ms (median)"],
        [[f"`{n}`", f"{s['exact']}/{s['cases']}", f"{100 * s['exact_share']:.1f}", s["false_boundaries"],
          s["missed_boundaries"], f"{s['boundary_precision']:.3f}", f"{s['boundary_recall']:.3f}",
          f"{s['boundary_f1']:.3f}", s["errors"], f"{s['seconds']['median'] * 1e3:.2f}"]
         for n, s in scores.items()],
        title=f"{label}: {meta['description']} ({len(cases)} cases, {meta['file']})",
    )
    rows, right = case_rows(scores, cases, meta["flags"])
    if rows:
        c.print_table(["case", *(f"`{n}`" for n in scores)], rows,
                      title=f"{label}: the cases at least one splitter got wrong")
    print(f"Not shown: {len(right)} of {len(cases)} cases, which every splitter split exactly as "
          f"the gold: {', '.join(right) or '-'}.\n", flush=True)


# --- planning speed --------------------------------------------------------------------


def bench_planning(splitters, host, size: str, repeats: int, step) -> list[dict]:
    from seqopt_core import PlannerSettings, SegmentPlanner, split_sentences

    text = c.build_text(c.SIZES[size])
    estimator = c.ratio_estimator(host)
    settings = PlannerSettings(target_tokens=TARGET_TOKENS, max_tokens=MAX_TOKENS)
    cases = {}
    for sp in splitters:
        planner = SegmentPlanner(sp.splitter, estimator, settings, splitter_name=sp.name,
                                 estimator_name="ratio")
        cases[(sp.name, "plan")] = (lambda p=planner: p.plan(text))
        cases[(sp.name, "split")] = (lambda s=sp.splitter, n=sp.name: split_sentences(text, s, n))
    timed = c.time_interleaved(cases, repeats, step=step)
    rows = []
    for sp in splitters:
        plan_samples, plan = timed[(sp.name, "plan")]
        split_samples, sentences = timed[(sp.name, "split")]
        tokens = [s.tokens for s in plan.segments]
        rows.append({
            "splitter": sp.name, "size": size, "bytes": c.SIZES[size], "repeats": repeats,
            "plan_seconds": c.summarize(plan_samples), "split_seconds": c.summarize(split_samples),
            "sentences": len(sentences), "segments": len(tokens),
            "tokens_mean": statistics.fmean(tokens), "tokens_max": max(tokens),
            "plan_mb_per_s": c.SIZES[size] / c.MB / statistics.median(plan_samples),
        })
    return rows


# --- verdict -------------------------------------------------------------------------


def default_splitters() -> dict[str, str]:
    from seqopt_core import load_config, profile_names

    return {p: load_config(profile=p).config.splitter.name for p in profile_names()}


def verdict(defaults: dict[str, str], sets: dict[str, dict], planning: list[dict], size: str) -> list[dict]:
    checks = []
    plan_by = {r["splitter"]: r for r in planning}
    for name in sorted(set(defaults.values())):
        profiles = ", ".join(p for p, n in defaults.items() if n == name)
        who = f"`{name}` (default of {profiles})"
        for label, scores in sets.items():
            if name not in scores:
                checks.append({"check": f"{who} scored on {label}", "value": "not installed", "ok": False})
                continue
            mine = scores[name]
            best_name = max(scores, key=lambda n: scores[n]["exact"])
            best = scores[best_name]["exact"]
            checks.append({"check": f"{who} within one case of the best on {label}",
                           "value": f"{mine['exact']}/{mine['cases']} vs best {best} (`{best_name}`)",
                           "ok": mine["exact"] >= best - 1})
            checks.append({"check": f"{who} lossless on {label} (no error)", "value": mine["errors"],
                           "ok": mine["errors"] == 0})
        if "pysbd-golden" in sets and name in sets["pysbd-golden"]:
            share = sets["pysbd-golden"][name]["exact_share"]
            checks.append({"check": f"{who} at least {GOLDEN_TARGET:.0%} exact on pysbd-golden",
                           "value": f"{share:.1%}", "ok": share >= GOLDEN_TARGET})
        if "hard-cases" in sets and name in sets["hard-cases"]:
            hard = sets["hard-cases"][name]
            checks.append({"check": f"{who} gets every hard case right", "value": f"{hard['exact']}/{hard['cases']}",
                           "ok": hard["exact"] == hard["cases"]})
        if name in plan_by:
            median = plan_by[name]["plan_seconds"]["median"]
            checks.append({"check": f"{who} plans {size} in under {PLAN_BUDGET_SECONDS:.0f} s",
                           "value": c.fmt_seconds(median), "ok": median < PLAN_BUDGET_SECONDS})
    return checks


# --- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    parser.add_argument("--splitters", nargs="+", default=None, metavar="NAME",
                        help="only these splitters (default: every enabled one)")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS),
                        help="labelled sets to score (default: all)")
    parser.add_argument("--size", choices=list(c.SIZES), default=None,
                        help="text size for the planning speed (default 100KB; --quick: 10KB)")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)
    repeats = args.repeats or (1 if args.quick else 5)
    size = args.size or ("10KB" if args.quick else "100KB")

    host = c.plugin_host()
    splitters = c.enabled_splitters(host, args.splitters)
    splitters.sort(key=lambda s: (ORDER.index(s.name) if s.name in ORDER else len(ORDER), s.name))
    data = load_sets(args.sets)
    defaults = default_splitters()
    env = c.environment(None, splitters={s.name: s.description for s in splitters})
    c.print_header(NAME, env, [
        f"sets: {', '.join(f'{k} ({len(v[1])} cases)' for k, v in data.items())}; split time: median "
        f"of {repeats} run(s) of each whole set after one untimed run",
        f"planning: {size} of the corpus, ratio estimator, target {TARGET_TOKENS} / max {MAX_TOKENS} "
        f"tokens, median of {repeats}; default splitters: "
        + ", ".join(f"{p} -> {n}" for p, n in defaults.items()),
    ])

    set_scores: dict[str, dict] = {}
    with c.progress(len(data), "accuracy") as step:
        for label, (meta, cases) in data.items():
            set_scores[label] = score_set(splitters, cases, repeats)
            step(label)
    for label, (meta, cases) in data.items():
        print_set(label, meta, cases, set_scores[label])

    with c.progress(repeats + 1, "planning") as step:
        planning = bench_planning(splitters, host, size, repeats, step)
    c.print_table(
        ["splitter", "plan median", "min–max", "MB/s", "split median", "sentences", "segments",
         "tokens mean", "tokens max"],
        [[f"`{r['splitter']}`", c.fmt_seconds(r["plan_seconds"]["median"]), c.fmt_spread(r["plan_seconds"]),
          f"{r['plan_mb_per_s']:.2f}", c.fmt_seconds(r["split_seconds"]["median"]), r["sentences"],
          r["segments"], f"{r['tokens_mean']:.1f}", r["tokens_max"]] for r in planning],
        title=f"Planning {size} ({c.SIZES[size]} bytes): SegmentPlanner(splitter, ratio).plan(text), "
              f"and split_sentences(text, splitter)",
    )

    checks = verdict(defaults, set_scores, planning, size)
    c.print_table(["check", "value", "ok"], [[k["check"], k["value"], "yes" if k["ok"] else "NO"]
                                            for k in checks], title="The default splitter")

    c.write_json(args.out, NAME, env, {
        "quick": args.quick, "repeats": repeats, "size": size, "bytes": c.SIZES[size],
        "target_tokens": TARGET_TOKENS, "max_tokens": MAX_TOKENS, "estimator": "ratio (default options)",
        "golden_target": GOLDEN_TARGET, "plan_budget_seconds": PLAN_BUDGET_SECONDS,
    }, c.rounded({
        "defaults": defaults,
        "sets": {label: {**data[label][0], "cases": len(data[label][1]), "scores": set_scores[label]}
                 for label in data},
        "planning": planning,
        "checks": checks,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
