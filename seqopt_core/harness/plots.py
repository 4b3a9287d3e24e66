"""PNG plots of a comparison (matplotlib, headless).

Three figures, each readable on its own: time to first audio and real-time
factor against text length, the ratio of each configuration to the reference
per text, and peak memory against context length. Every figure names the
device and says when the weights were random.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ..errors import SeqoptError
from .report import ratios, summaries
from .runner import Comparison

SPEED_PNG = "speed_vs_length.png"
RATIO_PNG = "ratio_to_reference.png"
MEMORY_PNG = "memory_vs_context.png"


class PlotsUnavailable(SeqoptError):
    """matplotlib is not installed: the JSON and Markdown are still written."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotsUnavailable("no plots: matplotlib is not installed (pip install 'seqopt[compare]')") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _subtitle(result: Comparison, width: int = 110) -> str:
    """Device, weights and statistics in one wrapped line or two."""
    env = result.environment
    device = env.get("accelerator") or f"CPU: {env['cpu']}, {env['torch_threads']} threads"
    weights = "random weights (timings only, audio is noise)" if result.settings["checkpoint"].get(
        "random_weights") else "released weights"
    text = f"{device}; {weights}; median of {result.settings['repeats']} run(s), bars: min–max"
    return textwrap.fill(text, width)


def write_plots(result: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write the figures into ``out_dir``; ``{title: path}``."""
    plt = _pyplot()
    summ = summaries(result)
    names = [c["name"] for c in result.contenders]
    texts = sorted(result.texts, key=lambda t: t.tokens)
    written: dict[str, Path] = {}

    # 1. TTFA and RTF against text length
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    for ax, measure, label in ((axes[0], "time_to_first_audio", "time to first audio (s)"),
                               (axes[1], "rtf", "real-time factor (wall s / audio s)")):
        for name in names:
            xs, ys, lo, hi = [], [], [], []
            for t in texts:
                s = summ[t.id][name][measure]
                if s is None:
                    continue
                xs.append(t.tokens)
                ys.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=name)
        if measure == "rtf":
            ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
            ax.text(0.01, 1.0, " real time", transform=ax.get_yaxis_transform(), va="bottom",
                    color="grey", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("text length (T3 text tokens)")
        ax.set_ylabel(label)
        ax.set_title(f"{label.split(' (')[0]}: lower is better")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="configuration")
    fig.suptitle(f"Speed against text length\n{_subtitle(result)}", fontsize=11)
    path = out_dir / SPEED_PNG
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written["Speed against text length"] = path

    # 2. ratios to the reference, per text
    rat = ratios(result)
    others = names[1:]
    if others:
        measures = (("time_to_first_audio", "TTFA"), ("rtf", "RTF"), ("peak_memory_bytes", "peak memory"))
        fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(texts) * len(measures) * len(others) / 2), 4.8),
                               constrained_layout=True)
        width = 0.8 / (len(measures) * len(others))
        for i, (name) in enumerate(others):
            for j, (measure, label) in enumerate(measures):
                xs, ys = [], []
                for k, t in enumerate(texts):
                    s = rat[t.id][name][measure]
                    if s is not None:
                        xs.append(k + (i * len(measures) + j) * width - 0.4 + width / 2)
                        ys.append(s["median"])
                ax.bar(xs, ys, width, label=f"{label}: {name} / {result.reference}")
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_xticks(range(len(texts)), [f"{t.id}\n({t.tokens} tok)" for t in texts], fontsize=8)
        ax.set_ylabel(f"ratio to {result.reference} (below 1: less time or memory)")
        ax.set_title(f"Each configuration against {result.reference}, median ratio within a round")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        fig.suptitle(_subtitle(result, 90), fontsize=9)
        path = out_dir / RATIO_PNG
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written["Ratio to the reference"] = path

    # 3. peak memory against context length
    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    for name in names:
        points = []
        for t in texts:
            runs = result.samples_for(name, t.id)
            s = summ[t.id][name]["peak_memory_bytes"]
            if runs and s is not None:
                points.append((runs[0].max_context_tokens, s["median"] / 2**20))
        points.sort()
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xlabel("context length: largest segment's text + speech tokens")
    ax.set_ylabel("peak memory of a run (MiB)")
    ax.set_title("Peak memory against context length: lower is better\n"
                 f"({result.memory_method})", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(title="configuration")
    fig.suptitle(_subtitle(result, 90), fontsize=9)
    path = out_dir / MEMORY_PNG
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written["Peak memory against context length"] = path
    return written
