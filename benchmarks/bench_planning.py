"""Planning speed: sentence-splitter throughput and plan latency, per splitter and text size.

Run from the repository root (the full run takes a few minutes on 2 cores)::

    SEQOPT_TOKENIZER=../shared/data/chatterbox_en_tokenizer.json \\
        python benchmarks/bench_planning.py

    python benchmarks/bench_planning.py --quick          # smoke test, a few seconds

For every enabled splitter and every text size (1 KB, 10 KB, 100 KB, 1 MB,
built from ``seqopt_core/corpus`` by ``_common.build_text``) it measures

* splitter throughput: ``split_sentences(text, splitter, name)`` (paragraphs,
  then the splitter, then the contract check), in MB/s (1 MB = 2**20 bytes)
  and sentences found, with the speed relative to ``regex`` in the same run;
* plan latency: ``SegmentPlanner(splitter, estimator,
  PlannerSettings(target_tokens=96, max_tokens=128)).plan(text)`` with the
  exact ``chatterbox`` estimator and with ``ratio``: seconds, segments, and
  mean/min/max segment tokens as that estimator counts them (for ``ratio``
  plans also the largest exact count and how many segments exceed
  ``max_tokens`` when counted exactly), plus the exact/ratio latency ratio;
* splitter construction, once (mostly the import of its library);
* the CLI end to end: ``seqopt plan -f <10 KB file> --json`` in a fresh
  process (interpreter start, imports, plugin discovery, tokenizer load,
  planning, JSON output), median of 3 after one untimed run.

Splitters and estimators are built once, outside the timed region, and each
measurement gets one untimed warm-up call. Within a size, all measurements
are timed round-robin (one call of each per round), so load from other
processes hits them alike and the side-by-side ratios stay fair; calls under
50 ms get an untimed call just before each timed one, so they are timed with
warm caches (see ``_common.time_interleaved``). Reported
times are medians over
``--repeats`` (default 5 up to 100 KB and 3 for 1 MB; ``--quick``: 1 KB and
10 KB, 1 repeat, one CLI run), with min and max.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "bench_planning"
TARGET_TOKENS = 96
MAX_TOKENS = 128
CLI_SIZE = "10KB"
CLI_RUNS = 3


def default_repeats(size_label: str) -> int:
    return 3 if c.SIZES[size_label] >= c.MB else 5


def seqopt_command() -> list[str]:
    """The ``seqopt`` console script of this interpreter's environment (else ``python -m``)."""
    script = Path(sys.executable).with_name("seqopt")
    if script.is_file():
        return [str(script)]
    found = shutil.which("seqopt")
    return [found] if found else [sys.executable, "-m", "seqopt_core.cli"]


def bench_cli(tokenizer: Path, runs: int) -> dict:
    """Wall time of ``seqopt plan -f <10 KB file> --json`` in fresh processes."""
    text = c.build_text(c.SIZES[CLI_SIZE])
    with tempfile.TemporaryDirectory(prefix="seqopt-bench-") as tmp:
        path = Path(tmp) / "text-10KB.txt"
        path.write_text(text, encoding="utf-8")
        cmd = [*seqopt_command(), "plan", "-f", str(path), "--json", "--tokenizer", str(tokenizer)]

        def once() -> tuple[float, dict]:
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=c.REPO_ROOT)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"error: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
            return elapsed, json.loads(done.stdout)

        first, plan = once()  # untimed in the median: cold file caches, .pyc writing
        samples = [once()[0] for _ in range(runs)] if runs > 1 else [first]
    tokens = [s["tokens"] for s in plan["segments"]]
    shown = ["seqopt", *cmd[len(seqopt_command()):]]
    shown[shown.index(str(path))] = "<10KB file>"
    shown[shown.index(str(tokenizer))] = "$SEQOPT_TOKENIZER"
    return {
        "command": " ".join(shown),
        "bytes": len(text.encode("utf-8")),
        "first_run_seconds": first,
        "wall_seconds": c.summarize(samples),
        "splitter": plan["splitter"],
        "estimator": plan["estimator"],
        "segments": len(tokens),
        "max_segment_tokens": max(tokens),
    }


def planner_call(planner, text: str):
    """``planner.plan(text)`` as a zero-argument callable (binds both now)."""
    return lambda: planner.plan(text)


def segment_stats(plan) -> dict:
    tokens = [s.tokens for s in plan.segments]
    return {"segments": len(tokens), "tokens_mean": statistics.fmean(tokens),
            "tokens_min": min(tokens), "tokens_max": max(tokens)}


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    parser.add_argument("--sizes", nargs="+", choices=list(c.SIZES), default=None,
                        help="text sizes to run (default: all; --quick: 1KB 10KB)")
    parser.add_argument("--splitters", nargs="+", default=None, metavar="NAME",
                        help="only these splitters (default: every enabled one)")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI measurement")
    args = parser.parse_args(argv)
    c.check_repeats(args.repeats)

    from seqopt_core import PlannerSettings, SegmentPlanner, split_sentences

    tokenizer = c.resolve_tokenizer(args.tokenizer)
    sizes = args.sizes or (["1KB", "10KB"] if args.quick else list(c.SIZES))
    repeats = {s: args.repeats or (1 if args.quick else default_repeats(s)) for s in sizes}
    settings = PlannerSettings(target_tokens=TARGET_TOKENS, max_tokens=MAX_TOKENS)

    host = c.plugin_host()
    splitters = c.enabled_splitters(host, args.splitters)
    estimators = {"chatterbox": c.exact_estimator(host, tokenizer), "ratio": c.ratio_estimator(host)}
    exact = estimators["chatterbox"]
    env = c.environment(tokenizer, splitters={s.name: s.description for s in splitters})
    c.print_header("bench_planning", env, [
        f"planner: target_tokens={TARGET_TOKENS}, max_tokens={MAX_TOKENS}; "
        f"repeats per size: {', '.join(f'{s}={n}' for s, n in repeats.items())}; median reported",
    ])

    load_rows = [{"splitter": sp.name, "load_seconds": sp.load_seconds, "description": sp.description}
                 for sp in splitters]
    c.print_table(["splitter", "build (once)", "what it is"],
                  [[r["splitter"], c.fmt_seconds(r["load_seconds"]), r["description"]] for r in load_rows],
                  title="Splitter construction: host.create('splitter', name), once per process "
                        "(mostly importing the library; not repeated, so a single noisy sample)")

    texts = {s: c.build_text(c.SIZES[s]) for s in sizes}
    split_rows, plan_rows = [], []
    with c.progress(sum(repeats[s] + 1 for s in sizes), "planning") as step:
        for size in sizes:
            text, n_bytes, reps = texts[size], c.SIZES[size], repeats[size]
            cases = {}
            for name, splitter, _, _ in splitters:
                cases[(name, "split")] = (lambda sp=splitter, n=name: split_sentences(text, sp, n))
                for est_name, estimator in estimators.items():
                    planner = SegmentPlanner(splitter, estimator, settings,
                                             splitter_name=name, estimator_name=est_name)
                    cases[(name, est_name)] = planner_call(planner, text)
            timed = c.time_interleaved(cases, reps, step=lambda label, s=size: step(f"{s} {label}"))
            for (name, what), (samples, result) in timed.items():
                summary = c.summarize(samples)
                if what == "split":
                    split_rows.append({"size": size, "bytes": n_bytes, "splitter": name, "repeats": reps,
                                       "seconds": summary, "mb_per_s": n_bytes / c.MB / summary["median"],
                                       "sentences": len(result)})
                    continue
                row = {"size": size, "bytes": n_bytes, "splitter": name, "estimator": what,
                       "repeats": reps, "seconds": summary, **segment_stats(result)}
                if what != "chatterbox":
                    counted = [exact.count(seg.text) for seg in result.segments]
                    row["exact_tokens_max"] = max(counted)
                    row["segments_over_max_exact"] = sum(n > MAX_TOKENS for n in counted)
                plan_rows.append(row)

    # side-by-side ratios, from medians of the same run
    regex_speed = {r["size"]: r["mb_per_s"] for r in split_rows if r["splitter"] == "regex"}
    for r in split_rows:
        r["speed_vs_regex"] = r["mb_per_s"] / regex_speed[r["size"]] if r["size"] in regex_speed else None
    ratio_latency = {(r["size"], r["splitter"]): r["seconds"]["median"]
                     for r in plan_rows if r["estimator"] == "ratio"}
    for r in plan_rows:
        if r["estimator"] == "chatterbox":
            base = ratio_latency.get((r["size"], r["splitter"]))
            r["latency_vs_ratio"] = r["seconds"]["median"] / base if base else None

    c.print_table(
        ["size", "splitter", "median", "min–max", "MB/s", "vs regex", "sentences"],
        [[r["size"], r["splitter"], c.fmt_seconds(r["seconds"]["median"]), c.fmt_spread(r["seconds"]),
          f"{r['mb_per_s']:.2f}", "-" if r["speed_vs_regex"] is None else f"{r['speed_vs_regex']:.2f}×",
          r["sentences"]] for r in split_rows],
        title="Splitter throughput: split_sentences(text, splitter)",
    )
    c.print_table(
        ["size", "splitter", "estimator", "median", "min–max", "exact/ratio", "segments",
         "tokens mean", "min", "max", "exact max", "> max exact"],
        [[r["size"], r["splitter"], r["estimator"], c.fmt_seconds(r["seconds"]["median"]),
          c.fmt_spread(r["seconds"]),
          f"{r['latency_vs_ratio']:.2f}×" if r.get("latency_vs_ratio") else "-",
          r["segments"], f"{r['tokens_mean']:.1f}", r["tokens_min"], r["tokens_max"],
          r.get("exact_tokens_max", "-"), r.get("segments_over_max_exact", "-")] for r in plan_rows],
        title=f"Plan latency: SegmentPlanner(...).plan(text), target {TARGET_TOKENS} / max {MAX_TOKENS} "
              "(tokens as the row's estimator counts them; 'exact max' and '> max exact' re-count "
              "ratio-planned segments with the exact estimator)",
    )

    cli = None
    if not args.no_cli:
        cli_runs = 1 if args.quick else CLI_RUNS
        with c.progress(1, "cli") as step:
            cli = bench_cli(tokenizer, cli_runs)
            step(cli["command"])
        w = cli["wall_seconds"]
        c.print_table(
            ["command", "runs", "median wall", "min–max", "first run", "plan", "segments", "max tokens"],
            [[cli["command"], w["n"], c.fmt_seconds(w["median"]), c.fmt_spread(w),
              c.fmt_seconds(cli["first_run_seconds"]),
              f"{cli['splitter']}/{cli['estimator']}", cli["segments"], cli["max_segment_tokens"]]],
            title=f"CLI end to end ({cli['bytes']} bytes, fresh process each run)",
        )

    c.write_json(args.out, NAME, env, {
        "quick": args.quick, "sizes": {s: c.SIZES[s] for s in sizes}, "repeats": repeats,
        "target_tokens": TARGET_TOKENS, "max_tokens": MAX_TOKENS, "warmup_calls": 1,
        "mb": c.MB, "estimators": {"chatterbox": "exact", "ratio": "default options (feature count, no tokenizer)"},
    }, c.rounded({"splitter_load": load_rows, "split": split_rows, "plan": plan_rows, "cli": cli}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
