"""A comparison as files: JSON (every sample), a Markdown report and PNG plots.

:func:`summaries` and :func:`ratios` are the numbers the report prints: per
text and configuration the median with min and max over the repeats, and per
text the ratio X/A of each configuration to the reference, taken within each
round (the runs of a round ran back to back) and summarized the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .runner import Comparison, RunSample
from .stats import paired_ratio, summarize

#: Measures summarized per text and configuration (RunSample attributes).
MEASURES: tuple[str, ...] = (
    "time_to_first_audio", "rtf", "rtf_speech", "speech_tokens_per_second", "wall_seconds",
    "s3gen_seconds", "other_seconds", "peak_memory_bytes", "planning_seconds",
)
#: Measures whose ratio against the reference the report shows.
RATIO_MEASURES: tuple[str, ...] = (
    "time_to_first_audio", "rtf", "speech_tokens_per_second", "peak_memory_bytes", "wall_seconds",
)
JSON_NAME = "comparison.json"
MARKDOWN_NAME = "report.md"


def _value(sample: RunSample, measure: str) -> float | None:
    value = getattr(sample, measure)
    return float(value) if value is not None and math.isfinite(value) else None


def summaries(result: Comparison) -> dict[str, dict[str, dict[str, Any]]]:
    """``{text id: {configuration: {measure: summary or None}}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for text in result.texts:
        per: dict[str, dict[str, Any]] = {}
        for c in result.contenders:
            samples = result.samples_for(c["name"], text.id)
            row: dict[str, Any] = {}
            for m in MEASURES:
                values = [v for v in (_value(s, m) for s in samples) if v is not None]
                row[m] = summarize(values) if values else None
            row["runs"] = len(samples)
            per[c["name"]] = row
        out[text.id] = per
    return out


def ratios(result: Comparison) -> dict[str, dict[str, dict[str, Any]]]:
    """``{text id: {configuration (not the reference): {measure: summary of X/A}}}``."""
    ref = result.reference
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for text in result.texts:
        a = result.samples_for(ref, text.id)
        per: dict[str, dict[str, Any]] = {}
        for c in result.contenders[1:]:
            b = result.samples_for(c["name"], text.id)
            per[c["name"]] = {m: paired_ratio([_value(s, m) for s in a], [_value(s, m) for s in b])
                              for m in RATIO_MEASURES}
        out[text.id] = per
    return out


def to_json(result: Comparison) -> dict[str, Any]:
    return {
        "tool": "seqopt compare",
        "environment": result.environment,
        "settings": result.settings,
        "memory_method": result.memory_method,
        "contenders": result.contenders,
        "texts": [t.to_dict() for t in result.texts],
        "summaries": summaries(result),
        "ratios": ratios(result),
        "token_match": result.token_match,
        "samples": [s.to_dict() for s in result.samples],
        "notes": result.notes,
    }


# --- Markdown ------------------------------------------------------------------------


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b: float | None) -> str:
    if b is None or not math.isfinite(b):
        return "-"
    return f"{b / 2**30:.2f} GiB" if abs(b) >= 2**30 else f"{b / 2**20:.0f} MiB"


def _med(summary: dict[str, Any] | None, fmt: Any = fmt_seconds, spread: bool = True) -> str:
    if not summary:
        return "-"
    text = fmt(summary["median"])
    if spread and summary["n"] > 1:
        text += f" ({fmt(summary['min'])}–{fmt(summary['max'])})"
    return text


def _num(fmt: str) -> Any:
    return lambda x: "-" if x is None or not math.isfinite(x) else fmt.format(x)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table (numbers right-aligned)."""
    def numeric(cell: str) -> bool:
        head = cell.split(" ")[0].rstrip("x×%")
        try:
            float(head.replace(",", ""))
            return True
        except ValueError:
            return False

    align = ["---:" if rows and all(numeric(r[i]) or r[i] == "-" for r in rows) else "---"
             for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(result: Comparison, plots: dict[str, str] | None = None) -> str:
    """The report a person reads: settings, per-text results, ratios, quality, plots."""
    env, st = result.environment, result.settings
    names = [c["name"] for c in result.contenders]
    ck = st["checkpoint"]
    device = env.get("accelerator") or f"{env['cpu']} ({env['cpu_count']} CPUs, {env['torch_threads']} torch threads)"
    lines = [f"# seqopt compare: {' vs '.join(names)}", ""]
    if ck.get("random_weights"):
        lines += ["**Random weights: the audio is noise, not speech.** The model code and sizes are "
                  "real, so the timings and memory are; nothing here says anything about audio "
                  "quality.", ""]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines += [
        f"- device: {env['device']} — {device}",
        f"- versions: {versions}; Python {env['python']} on {env['platform']}",
        f"- checkpoint: `{ck['path']}` ({ck.get('scale') or 'unknown'} size, "
        + ("random weights" if ck.get("random_weights") else "real weights")
        + f"), loaded once in {ck['load_seconds']:.1f} s and shared by every configuration",
        f"- runs: {st['repeats']} per text and configuration, {st['order']}; an untimed warm-up "
        f"of {st['warmup_chars']} characters per configuration first; seed {st['seed']} for all",
    ]
    if st.get("benchmark_tokens_per_text_token") is not None:
        lines.append(f"- benchmark length mode: every segment gets exactly "
                     f"{st['benchmark_tokens_per_text_token']:g} speech tokens per text token "
                     "(the stop token is ignored; random weights never stop sensibly)")
    lines += [f"- peak memory: {result.memory_method}",
              f"- reference (A): `{result.reference}`; ratios are X/A within each round "
              "(below 1: X takes less time or memory; for tokens/s above 1 is faster)", ""]
    for note in result.notes:
        lines.append(f"- note: {note}")

    lines += ["## Configurations", "", table(
        ["name", "splitter / estimator", "planner target / max", "chunk policy", "context policy",
         "attention", "cross-segment", "crossfade"],
        [[f"`{c['name']}`", f"{c['splitter']} / {c['estimator']}",
          f"{c['planner']['target_tokens']} / {c['planner']['max_tokens']}",
          _opts(c["chunk_policy"]), _opts(c["context_policy"]), c["attention"], c["segment_context"],
          f"{c['crossfade_ms']:g} ms"] for c in result.contenders]), ""]

    lines += ["## What the model's work cost", "",
              "Fitted from each configuration's own timed runs (`seqopt_core.costs.fit_costs`): one "
              "vocoder call costs `fixed + per token x (context + new tokens)`; a T3 step is the median "
              "of streamed steps after each segment's first chunk.", "", table(
                  ["name", "vocoder fixed", "vocoder per token", "calls fitted", "T3 step"],
                  [[f"`{c['name']}`", *_cost_cells(c.get("costs") or {})] for c in result.contenders]), ""]

    lines += ["## Texts", "", table(
        ["text", "kind", "tokens", "characters", "source"],
        [[t.id, t.kind, str(t.tokens), str(len(t.text)), t.source] for t in result.texts]), ""]

    summ = summaries(result)
    rows = []
    for t in result.texts:
        for name in names:
            s = summ[t.id][name]
            runs = result.samples_for(name, t.id)
            first = runs[0] if runs else None
            rows.append([
                t.id, f"`{name}`",
                str(first.segments) if first else "-", str(first.chunks) if first else "-",
                str(first.speech_tokens) if first else "-",
                _med(s["time_to_first_audio"]), _med(s["rtf"], _num("{:.2f}")),
                _med(s["speech_tokens_per_second"], _num("{:.1f}"), spread=False),
                _med(s["wall_seconds"], spread=False),
                f"{fmt_seconds(s['s3gen_seconds']['median']) if s['s3gen_seconds'] else '-'} / "
                f"{fmt_seconds(s['other_seconds']['median']) if s['other_seconds'] else '-'}",
                _med(s["peak_memory_bytes"], fmt_bytes, spread=False),
                _med(s["planning_seconds"], spread=False),
                f"{first.estimated_tokens} / {first.exact_tokens}" if first else "-",
                str(first.max_context_tokens) if first else "-",
            ])
    lines += ["## Results (median, min–max over the runs)", "", table(
        ["text", "config", "segments", "chunks", "speech tokens", "TTFA", "RTF", "tokens/s", "wall",
         "S3Gen / rest", "peak memory", "planning", "tokens est. / exact", "max context"], rows), ""]
    lines += ["TTFA: from the call to the first audio, planning included. RTF: wall time over "
              "seconds of audio, pauses between segments included. S3Gen / rest: time in S3Gen "
              "calls and everything else (mostly T3 sampling). Tokens est. / exact: the "
              "configuration's estimator against T3's real text tokens, summed over segments. "
              "Max context: the largest segment's text plus speech tokens.", ""]

    rat = ratios(result)
    if len(names) > 1:
        rows = []
        for t in result.texts:
            for name in names[1:]:
                r = rat[t.id][name]
                rows.append([t.id, f"`{name}` / `{result.reference}`",
                             *(_med(r[m], _num("{:.3f}x")) for m in RATIO_MEASURES)])
        lines += ["## Ratios to the reference, within each round", "", table(
            ["text", "ratio", "TTFA", "RTF", "tokens/s", "peak memory", "wall"], rows), ""]

    lines += ["## Quality, as far as random weights allow", ""]
    if result.token_match:
        lines += ["Texts every configuration left in one segment, same seed: are the speech tokens "
                  "the reference sampled the ones each other configuration sampled?", "", table(
                      ["text", "configuration", "identical", "tokens (A / X)", "first difference"],
                      [[m["text_id"], f"`{m['contender']}`", "yes" if m["identical"] else "no",
                        f"{m['tokens'][0]} / {m['tokens'][1]}",
                        "-" if m["first_difference"] is None else f"token {m['first_difference']}"]
                       for m in result.token_match]), ""]
    else:
        lines += ["No text was left in one segment by every configuration, so speech tokens were "
                  "not compared.", ""]
    rows = []
    for t in result.texts:
        for name in names:
            runs = result.samples_for(name, t.id)
            if not runs:
                continue
            seams = runs[0].seams
            cs, se = seams["chunk_seams"], seams["segment_edges"]
            rows.append([t.id, f"`{name}`", str(cs["count"]), _num("{:.2f}")(cs["median"]),
                         _num("{:.2f}")(cs["max"]), str(se["count"]), _num("{:.2f}")(se["median"]),
                         _num("{:.2f}")(se["max"])])
    lines += ["Seams of the first run: at each join of two chunks, the jump between the samples "
              "that meet over the median sample-to-sample step within 10 ms around it (up to about "
              "1.5 the join looks like the audio around it); at each segment, the peak level of "
              "its first and last 2 ms over its RMS (0: starts and ends in silence).", "", table(
                  ["text", "config", "chunk seams", "median", "max", "segments", "edge median",
                   "edge max"], rows), ""]

    if plots:
        lines += ["## Plots", ""]
        for title, name in plots.items():
            lines += [f"### {title}", "", f"![{title}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _opts(choice: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in choice.items() if k != "name")
    return f"{choice['name']} ({extra})" if extra else choice["name"]


def write_report(result: Comparison, out_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write ``comparison.json``, the PNG plots (unless ``plots`` is false or
    matplotlib is missing, which the report then says) and ``report.md`` into
    ``out_dir``; returns ``{kind: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, str] = {}
    if plots:
        from .plots import PlotsUnavailable, write_plots

        try:
            for title, path in write_plots(result, out).items():
                images[title] = path.name
                written[f"plot:{path.stem}"] = path
        except PlotsUnavailable as exc:
            result.notes.append(str(exc))
    json_path = out / JSON_NAME
    json_path.write_text(json.dumps(to_json(result), indent=2, default=_jsonable) + "\n", encoding="utf-8")
    written["json"] = json_path
    md_path = out / MARKDOWN_NAME
    md_path.write_text(markdown(result, images), encoding="utf-8")
    written["markdown"] = md_path
    return written


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _cost_cells(costs: dict[str, Any]) -> list[str]:
    """Report cells for one configuration's fitted costs ("n/a" where too little was measured)."""
    vocoder = costs.get("vocoder")
    step = costs.get("t3_step_seconds")
    if vocoder is None:
        cells = ["n/a", "n/a", "0"]
    else:
        cells = [f"{vocoder['fixed_seconds']:.3f} s", f"{vocoder['per_token_seconds'] * 1000:.2f} ms",
                 str(vocoder["samples"])]
    return [*cells, "n/a" if step is None else f"{step * 1000:.1f} ms"]

