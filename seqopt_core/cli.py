"""The ``seqopt`` command line.

Nothing on the ``plan``/``sentences`` path imports torch or transformers, so
planning a text takes a fraction of a second. Errors that are the user's
(a bad file, an unknown strategy, ...) are printed as one clear message with
exit status 2; a traceback means a bug in seqopt.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click

from .errors import SeqoptError
from .textfile import read_stream, read_text

PROGRESS_MIN_CHARS = 200_000
TABLE_ROW_LIMIT = 200


# --- input ------------------------------------------------------------------------


def read_input(text: str | None, file: str | None) -> str:
    """The text given as an argument, or read from ``file``; ``-`` for either is stdin."""
    if text is not None and file is not None:
        raise click.UsageError("give the text either as an argument or with -f FILE, not both")
    if text == "-" or file == "-":
        return read_stream(name="standard input")
    if text is not None:
        return text
    if file is None:
        raise click.UsageError("no text given: pass TEXT, or -f FILE, or - to read stdin")
    return read_text(file)


#: The config key each command-line option sets: error messages name the flag
#: the user typed, not the profile the flag was laid over.
OPTION_NAMES = {
    "splitter.name": "--splitter",
    "estimator.name": "--estimator",
    "estimator.options.tokenizer": "--tokenizer",
    "planner.target_tokens": "--target",
    "planner.max_tokens": "--max",
    "engine.options.voice": "--voice",
    "engine.options.checkpoint": "--checkpoint",
    "synthesis.device": "--device",
    "synthesis.seed": "--seed",
    "synthesis.language": "--language",
}


def _load(config_path: str | None, profile: str | None, overrides: dict[str, Any] | None):
    """The config the user chose, with the flags laid over it; only its syntax is checked
    here (the command resolves its strategies, with errors that name the flags)."""
    from .config import load_config

    return load_config(config_path, profile=profile, overrides=overrides or None,
                       option_names=OPTION_NAMES, validate=False)


def _overrides(splitter: str | None, estimator: str | None, tokenizer: str | None,
               target: int | None, max_tokens: int | None, language: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if language:
        out["synthesis"] = {"language": language}
    if splitter:
        out["splitter"] = {"name": splitter}
    if estimator:
        out["estimator"] = {"name": estimator}
    if tokenizer:
        est = dict(out.get("estimator", {}))
        est["options"] = {"tokenizer": tokenizer}
        out["estimator"] = est
    planner: dict[str, Any] = {}
    if target is not None:
        planner["target_tokens"] = target
    if max_tokens is not None:
        planner["max_tokens"] = max_tokens
    if planner:
        out["planner"] = planner
    return out


def _text(value: object) -> Any:
    """A table cell or line holding ``value`` literally: rich never reads it as markup
    (a plugin's ``pip install 'x[extra]'`` or a text's ``[laughter]`` stay as written)."""
    from rich.text import Text

    return Text("" if value is None else str(value))


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _plan_with_progress(planner, text: str):
    if len(text) < PROGRESS_MIN_CHARS or not sys.stderr.isatty():
        return planner.plan(text)
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("planning"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                  console=_stderr_console(), transient=True) as bar:
        task = bar.add_task("plan", total=len(text))
        return planner.plan(text, progress=lambda done, total: bar.update(task, completed=done))


def _short(text: str, width: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


# --- commands ----------------------------------------------------------------------


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeqoptError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqopt")
def main() -> None:
    """seqopt: plan and stream long text through Chatterbox TTS.

    \b
    Examples:
      seqopt plan -f chapter.txt            # segments, tokens, boundaries
      seqopt plan "Some text." --json       # machine-readable plan
      seqopt sentences -f chapter.txt --splitter nltk
      seqopt plugins                        # every strategy, enabled or why not
      seqopt config show --profile baseline
    """


_text_arg = click.argument("text", required=False)
_file_opt = click.option("-f", "--file", "file", metavar="FILE",
                         help="read the text from FILE ('-' for stdin), UTF-8")
_config_opt = click.option("--config", "config_path", metavar="FILE", type=click.Path(),
                           help="TOML or JSON config file")
_profile_opt = click.option("--profile", metavar="NAME",
                            help="built-in profile: baseline, rtx4090, multilingual or turbo "
                                 "(default: rtx4090)")
_splitter_opt = click.option("--splitter", metavar="NAME", help="sentence splitter (see seqopt plugins)")
_json_opt = click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
_language_opt = click.option("--language", metavar="CODE",
                             help="language of the text: en, fr, zh... (ISO 639-1; default: the engine's, en); "
                                  "the engine must speak it (seqopt plugins lists its languages)")


@main.command()
@_text_arg
@_file_opt
@_config_opt
@_profile_opt
@_splitter_opt
@click.option("--estimator", metavar="NAME", help="token estimator: chatterbox (exact) or ratio")
@click.option("--tokenizer", metavar="PATH", help="the exact estimator's tokenizer: a file (English: tokenizer.json) "
              "or a checkpoint folder holding it")
@click.option("--target", type=click.IntRange(min=1), help="target tokens per segment")
@click.option("--max", "max_tokens", type=click.IntRange(min=1, max=2048), help="maximum tokens per segment")
@_language_opt
@_json_opt
def plan(text, file, config_path, profile, splitter, estimator, tokenizer, target, max_tokens, language, as_json):
    """Cut TEXT into segments of about the target token count."""
    from .api import build_planner

    source = read_input(text, file)
    planner = build_planner(_load(config_path, profile,
                                  _overrides(splitter, estimator, tokenizer, target, max_tokens, language)))
    result = _plan_with_progress(planner, source)
    if as_json:
        _emit_json(result.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=None, show_lines=False, expand=False)
    for col, kw in (("#", {"justify": "right"}), ("tokens", {"justify": "right"}),
                    ("boundary", {}), ("chars", {"justify": "right"})):
        table.add_column(col, no_wrap=True, **kw)
    table.add_column("text", overflow="ellipsis", no_wrap=True, max_width=max(20, console.width - 40))
    for seg in result.segments[:TABLE_ROW_LIMIT]:
        table.add_row(str(seg.index), str(seg.tokens), seg.boundary, str(len(seg.text)), _text(_short(seg.text)))
    console.print(table)
    hidden = len(result.segments) - TABLE_ROW_LIMIT
    if hidden > 0:
        click.echo(f"... {hidden} more segments not shown (use --json for all)")
    click.echo(
        f"{_plural(len(result.segments), 'segment')}, {_plural(result.total_tokens, 'token')} "
        f"(target {result.target_tokens}, max {result.max_tokens}); splitter {result.splitter}, "
        f"estimator {result.estimator}; planned in {result.planning_seconds * 1000:.1f} ms"
    )


@main.command()
@_text_arg
@_file_opt
@_config_opt
@_profile_opt
@_splitter_opt
@_language_opt
@_json_opt
def sentences(text, file, config_path, profile, splitter, language, as_json):
    """Print the sentence spans a splitter finds in TEXT (no packing)."""
    from .api import plugin_host
    from .config import resolve_config
    from .planner import split_sentences

    source = read_input(text, file)
    loaded = _load(config_path, profile, _overrides(splitter, None, None, None, None, language))
    host = plugin_host(loaded)
    spl = resolve_config(loaded, host)["splitter"]
    spans = split_sentences(source, host.create("splitter", spl.name, spl.options), spl.name)
    if as_json:
        _emit_json({"splitter": spl.name,
                    "sentences": [{"text": s.text(source), "start": s.start, "end": s.end} for s in spans]})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table()
    for col in ("#", "start", "end"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("sentence", overflow="ellipsis", no_wrap=True, max_width=max(20, console.width - 30))
    for i, s in enumerate(spans[:TABLE_ROW_LIMIT]):
        table.add_row(str(i), str(s.start), str(s.end), _text(_short(s.text(source))))
    console.print(table)
    if len(spans) > TABLE_ROW_LIMIT:
        click.echo(f"... {len(spans) - TABLE_ROW_LIMIT} more sentences not shown (use --json for all)")
    click.echo(f"{_plural(len(spans), 'sentence')}; splitter {spl.name}")


@main.command()
@_json_opt
def plugins(as_json):
    """List every strategy of every slot, its provider, and whether it can run here."""
    from .plugins import PluginHost
    from .strategies import SLOTS

    host = PluginHost.discover()
    rows = [s for slot in SLOTS for s in host.strategies(slot)]  # never raises: clashes are rows
    infos = host.plugin_infos()  # after listing: a plugin whose hook failed is marked there
    if as_json:
        _emit_json({
            "plugins": [{"name": p.name, "module": p.module, "distribution": p.distribution,
                         "builtin": p.builtin, "status": p.status, "detail": p.detail} for p in infos],
            "strategies": {
                slot: [{"name": s.name, "provider": s.provider, "description": s.description,
                        "enabled": s.enabled, "reason": s.availability.reason,
                        "install": s.availability.install, "clash": list(s.clash),
                        "capabilities": s.spec.capabilities(), **_engine_fields(s.spec)}
                       for s in rows if s.slot == slot]
                for slot in SLOTS
            },
        })
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    table = Table(title="strategies")
    for col in ("slot", "name", "provider", "status", "description"):
        table.add_column(col, overflow="fold")
    builtins = {p.name for p in infos if p.builtin}
    for s in rows:
        if s.clash:
            status = Text("clash", style="red")
            block = ",".join(n for n in (s.provider, *s.clash) if n not in builtins) or s.clash[0]
            status.append(f": also provided by {', '.join(s.clash)}; block one, e.g. "
                          f"SEQOPT_BLOCK_PLUGINS={block}")
        elif s.enabled:
            status = Text("enabled", style="green")
        else:
            status = Text("disabled", style="red")
            status.append(f": {s.availability.reason}")
            if s.availability.install:
                status.append(f" ({s.availability.install})")
        description = _text(s.description)
        declared = [k for k, v in s.spec.capabilities().items() if v]
        if declared:
            description.append(f" [{', '.join(declared)}]", style="dim")
        if getattr(s.spec, "languages", ()):
            description.append(f" languages: {', '.join(s.spec.languages)}", style="dim")
        table.add_row(_text(s.slot), _text(s.name), _text(s.provider), status, description)
    console.print(table)
    problems = [p for p in infos if p.status != "loaded"]
    if problems:
        ptable = Table(title="plugins not loaded")
        for col in ("plugin", "distribution", "status", "detail"):
            ptable.add_column(col, overflow="fold")
        for p in problems:
            ptable.add_row(_text(p.name), _text(p.distribution or "-"), _text(p.status), _text(p.detail or ""))
        console.print(ptable)


def _engine_fields(spec: Any) -> dict[str, Any]:
    """An engine record's languages and paired estimator, for ``seqopt plugins --json``."""
    if not hasattr(spec, "languages"):
        return {}
    return {"languages": list(spec.languages), "estimator": spec.estimator}


def _model_overrides(*, voice: str | None = None, checkpoint: str | None = None, device: str | None = None,
                     seed: int | None = None, language: str | None = None) -> dict[str, Any] | None:
    """The model flags as config overrides: --voice and --checkpoint are the engine's options,
    --device, --seed and --language the shared [synthesis] settings (OPTION_NAMES names them back)."""
    overrides: dict[str, Any] = {}
    engine = {k: v for k, v in (("voice", voice), ("checkpoint", checkpoint)) if v is not None}
    synthesis = {k: v for k, v in (("device", device), ("seed", seed), ("language", language)) if v is not None}
    if synthesis:
        overrides["synthesis"] = synthesis
    if engine:
        overrides["engine"] = {"options": engine}
    return overrides or None


def _engine_available(loaded: Any) -> Any:
    """The plugin host of ``loaded``, once its engine is known to be able to run here."""
    from .config import plugin_host_for

    host = plugin_host_for(loaded)
    name = loaded.config.engine.name
    info = host.strategy("engine", name)
    if not info.enabled:
        from .errors import EngineUnavailableError

        install = f": {info.availability.install}" if info.availability.install else ""
        raise EngineUnavailableError(f"the {name} engine cannot run here ({info.availability.reason})"
                                     f"{install}")
    return host


def _pcm16(audio) -> bytes:
    import numpy as np

    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@main.command()
@_text_arg
@_file_opt
@click.option("-o", "--output", required=True, metavar="OUT",
              help="WAV file to write, or - to stream to stdout")
@click.option("--raw", is_flag=True, help="with -o -: raw 16-bit PCM (s16le, 24 kHz, mono), no header")
@click.option("--voice", metavar="WAV", help="reference recording of the voice (default: built-in)")
@click.option("--checkpoint", metavar="DIR", type=click.Path(),
              help="local checkpoint folder (default: download ResembleAI/chatterbox)")
@_config_opt
@_profile_opt
@click.option("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
@click.option("--seed", type=int, help="sampling seed, for reproducible output")
@_language_opt
@click.option("--metrics", "metrics_path", metavar="FILE", type=click.Path(),
              help="write per-chunk, per-segment and per-run metrics as JSON")
def speak(text, file, output, raw, voice, checkpoint, config_path, profile, device, seed, language, metrics_path):
    """Synthesize TEXT (or -f FILE) to a WAV file or to stdout, streaming.

    The WAV file is written as audio arrives, to a temporary file beside OUT
    that replaces OUT only when it is complete; Ctrl-C or SIGTERM finishes a
    valid WAV of what was made. With -o -, nothing but audio reaches stdout.
    """
    from .text import validate_text
    from .wavfile import WavFileWriter, WavStreamWriter, check_output_path

    if raw and output != "-":
        raise click.UsageError("--raw applies only to -o - (raw PCM on stdout); a file gets a WAV header")
    source = read_input(text, file)
    validate_text(source)  # an empty text fails in milliseconds, before the model loads
    inputs = tuple(p for p in (file,) if p and p != "-")
    if output != "-":
        check_output_path(output, what="-o", not_same_as=inputs)
    if metrics_path is not None:
        check_output_path(metrics_path, what="--metrics",
                          not_same_as=inputs + ((output,) if output != "-" else ()))
    from .monitor import MetricsMonitor
    from .pipeline import Pipeline

    console = _stderr_console()
    loaded = _load(config_path, profile, _model_overrides(voice=voice, checkpoint=checkpoint,
                                                          device=device, seed=seed, language=language))
    host = _engine_available(loaded)
    _preflight(host, loaded, console)  # a bad voice fails now, not after the model loaded
    # Open the output before the model loads: a read-only folder or a full disk fails now.
    if output == "-":
        sink: Any = WavStreamWriter(_audio_stdout(), SPEECH_SAMPLE_RATE, raw=raw)
    else:
        sink = WavFileWriter(output, SPEECH_SAMPLE_RATE)
    stop = _StopSignals()
    try:
        with stop:
            with console.status("loading the model"), warnings.catch_warnings():
                for category in _SHOWN_NOTES:  # shown once, above
                    warnings.simplefilter("ignore", category)
                pipe = Pipeline.from_config(loaded, host=host)
            if pipe.sample_rate != sink.sample_rate:  # pragma: no cover - Chatterbox is 24 kHz
                raise SeqoptError(f"the model makes {pipe.sample_rate} Hz audio, expected {sink.sample_rate}")
            if pipe.engine.describe().get("random_weights"):
                console.print("[yellow]note:[/] this checkpoint has random weights: the audio is noise, "
                              "not speech")
            pipe.host.register(MetricsMonitor(metrics_path), name="seqopt.monitor")
            if pipe.scheduler.uses_playback:  # the chunk policy plans with the device's costs
                with console.status("reading this device's costs") as status:
                    pipe.on_status = lambda message: status.update(_text(message))
                    model = pipe.costs  # measured once per device, then read from the cache
                    pipe.on_status = None
                console.print(_text(f"costs: a vocoder call {model.decode_fixed_seconds:.2f} s + "
                                    f"{model.decode_per_token_seconds * 1000:.1f} ms per token, a T3 step "
                                    f"{model.t3_step_seconds * 1000:.1f} ms ({model.source})"), style="dim")
            plan = pipe.planner.plan(source)  # size the progress bar
            metrics = _speak_stream(pipe, source, plan, sink, console)
    except _Stopped as stopped:
        if sink.data_bytes == 0:
            sink.abort()
            kept = "" if output == "-" else f"; {output} was left as it was"
            click.echo(f"{stopped.signal_name}: stopped before any audio was made{kept}", err=True)
        else:
            where = sink.finish()
            click.echo(f"{stopped.signal_name}: stopped; {where} holds the {sink.seconds:.2f} s of audio "
                       "made so far (a valid WAV)" if not raw else
                       f"{stopped.signal_name}: stopped after {sink.seconds:.2f} s of audio", err=True)
        sys.exit(128 + stopped.signum)
    except BrokenPipeError:
        sink.abort()
        click.echo(f"standard output was closed after {sink.seconds:.2f} s of audio; stopping", err=True)
        sys.exit(1)
    except BaseException:
        if not sink.finished:
            sink.abort()
        raise
    where = sink.finish()
    g = metrics.generation
    ttfa = "n/a" if g.time_to_first_audio is None else f"{g.time_to_first_audio:.2f} s"
    click.echo(f"{'stdout' if output == '-' else where}: {g.audio_seconds:.2f} s of audio, "
               f"{_plural(g.segments, 'segment')}, {_plural(g.chunks, 'chunk')}; TTFA {ttfa}, "
               f"RTF {g.rtf:.2f}, {metrics.speech_tokens_per_second:.1f} speech tokens/s, "
               f"wall {g.wall_seconds:.1f} s", err=True)


#: Chatterbox's S3Gen makes 24 kHz audio.
SPEECH_SAMPLE_RATE = 24_000


def _preflight(host: Any, loaded: Any, console: Any) -> None:
    """The engine's check of the files its options name (a voice), before the model loads;
    the warnings it gives (a voice too short) are shown once, as notes, and not again
    while the model loads."""
    from .config import resolve_config

    resolved = resolve_config(loaded, host)["engine"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        host.preflight_engine(resolved.name, resolved.options)
    for w in caught:
        if issubclass(w.category, UserWarning) and not issubclass(w.category, DeprecationWarning):
            console.print(_text(f"warning: {w.message}"), style="yellow")
            _SHOWN_NOTES.add(w.category)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


#: Categories of the preflight notes already shown (silenced while the model loads).
_SHOWN_NOTES: set[type[Warning]] = set()


def _speak_stream(pipe: Any, source: str, plan: Any, sink: Any, console: Any) -> Any:
    """Write every chunk of ``source`` to ``sink``; the run's metrics."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TextColumn("chunks {task.fields[chunks]}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("segments", total=len(plan.segments), chunks=0)
        chunks = 0
        stream = pipe.stream(source, plan)
        try:
            for chunk in stream:
                sink.write(_pcm16(chunk.audio))
                chunks += 1
                bar.update(task, completed=chunk.segment.index + (1 if chunk.is_segment_end else 0),
                           chunks=chunks)
        finally:
            stream.close()  # an interruption frees the model's state and records the run
    return getattr(stream, "metrics", None) or pipe.last_metrics


def _audio_stdout() -> Any:
    """Where the audio goes: a copy of the real standard output's descriptor. Descriptor 1
    itself then points at stderr, so whatever a library prints, from Python or C
    (PerthNet's load message, say), can never land inside the WAV stream. When
    stdout is not a real descriptor (an in-process test runner), its buffer."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdout.buffer
    sys.stdout.flush()
    audio = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    return audio


class _Stopped(BaseException):
    """SIGINT or SIGTERM arrived during ``speak`` (a BaseException, so that no library
    ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


class _StopSignals:
    """Turns SIGINT and SIGTERM into :class:`_Stopped` while the block runs (main thread)."""

    def __enter__(self) -> _StopSignals:
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._raise)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise _Stopped(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


@main.command()
@_config_opt
@_profile_opt
@click.option("--checkpoint", metavar="DIR", type=click.Path(),
              help="local checkpoint folder (default: the config's, else download ResembleAI/chatterbox)")
@click.option("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
@click.option("--seed", type=int, default=0, show_default=True, help="sampling seed")
@click.option("--sizes", metavar="N,N", default="10,25,50", show_default=True,
              help="chunk sizes to decode with, in speech tokens (at least two different ones)")
@click.option("-o", "--output", metavar="FILE", type=click.Path(), help="write the measurement as JSON")
@click.option("--json", "as_json", is_flag=True, help="print the measurement as JSON")
@click.option("--save", is_flag=True,
              help="keep the result as this device's cost model (what synthesis.costs = auto reads)")
def costs(config_path, profile, checkpoint, device, seed, sizes, output, as_json, save):
    """Measure what the model's work costs on this device: a vocoder call's fixed and
    per-token seconds, and a T3 step.

    Synthesizes one short sentence once per chunk size (fixed chunks, no context), times
    every vocoder call and T3 step from the chunk events, and fits
    seconds = fixed + per_token x tokens. With a random-weight checkpoint every
    segment gets one speech token per text token (benchmark length mode). ``--save``
    makes it the cost model the ``deadline`` chunk policy plans with on this device
    (else it is measured, more briefly, the first time it is needed); ``-o`` writes
    a file that ``synthesis.costs`` can name.
    """
    from .costs import CostModel, CostModelError, cost_cache_path, measure_costs, save_cost_model
    from .harness.runner import RANDOM_WEIGHTS_TOKENS_PER_TEXT_TOKEN
    from .wavfile import check_output_path

    size_list = _int_list(sizes, "--sizes") or []
    if len(set(size_list)) < 2:
        raise click.BadParameter(f"give at least two different chunk sizes, got {sizes!r}", param_hint="--sizes")
    if output is not None:
        check_output_path(output, what="-o")
    loaded = _load(config_path, profile, _model_overrides(checkpoint=checkpoint, device=device, seed=seed))
    host = _engine_available(loaded)
    console = _stderr_console()
    from .pipeline import Pipeline

    with console.status("loading the model"):
        engine = Pipeline.from_config(loaded, host=host).engine
    info = engine.describe()
    options = host.strategy("engine", loaded.config.engine.name).spec.options.model_fields
    if info.get("random_weights") and "benchmark_tokens_per_text_token" in options \
            and loaded.config.engine.options.get("benchmark_tokens_per_text_token") is None:
        console.print("[yellow]note:[/] random weights: one speech token per text token (noise, not speech)")
        overrides = _model_overrides(checkpoint=checkpoint, device=device, seed=seed) or {}
        engine_table = overrides.setdefault("engine", {}).setdefault("options", {})
        engine_table["benchmark_tokens_per_text_token"] = RANDOM_WEIGHTS_TOKENS_PER_TEXT_TOKEN
        loaded = _load(config_path, profile, overrides)  # the loaded engine takes these options
    with console.status("measuring") as status:
        result = measure_costs(loaded, host, sizes=size_list, engine=engine, on_chunk=lambda size, e: status.update(
            _text(f"chunks of {size}: chunk {e.chunk_index}, {e.speech_tokens} tokens, "
                  f"vocoder {e.s3gen_seconds:.2f} s")))
    result["device"] = info.get("device")
    saved = None
    if save:
        try:
            model = CostModel.from_dict(result, source="seqopt costs --save " + time.strftime("%Y-%m-%d %H:%M:%S"))
        except CostModelError as exc:
            raise SeqoptError(f"cannot save the cost model: {exc}") from None
        key = Pipeline.from_config(loaded, host=host, engine=engine).cost_key()
        saved = save_cost_model(model, cost_cache_path(key), key)
    if output is not None:
        Path(output).write_text(json.dumps(result, indent=1), encoding="utf-8")
    if as_json:
        _emit_json(result)
        return
    vocoder, step = result["vocoder"], result["t3_step_seconds"]
    where = f"{info.get('name')} on {info.get('device')}"
    if vocoder is None:
        click.echo(f"{where}: too few vocoder calls of different sizes to fit a cost "
                   f"({len(result['calls'])} measured)")
    else:
        click.echo(f"{where}: a vocoder call costs {vocoder['fixed_seconds']:.3f} s + "
                   f"{vocoder['per_token_seconds'] * 1000:.2f} ms per token ({vocoder['samples']} calls)")
    click.echo(f"{where}: a T3 step costs " + ("n/a (none measured)" if step is None else
                                                 f"{step * 1000:.1f} ms ({result['t3_steps_measured']} steps)"))
    if output is not None:
        click.echo(f"written to {output}", err=True)
    if saved is not None:
        click.echo(f"saved as this device's cost model: {saved}", err=True)


@main.command()
@click.option("--host", metavar="H", default="127.0.0.1", show_default=True,
              help="address to listen on; anything but loopback needs --api-key-env")
@click.option("--port", metavar="N", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0: any free one)")
@_config_opt
@_profile_opt
@click.option("--checkpoint", metavar="DIR", type=click.Path(),
              help="local checkpoint folder (default: the config's, else download ResembleAI/chatterbox)")
@click.option("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
@click.option("--voices", "voices_dir", metavar="DIR", type=click.Path(),
              help="folder of reference recordings (.wav, .flac, .mp3): voice NAME is NAME.wav")
@click.option("--api-key-env", metavar="VAR",
              help="environment variable holding the key clients send as 'Authorization: Bearer KEY'")
@click.option("--max-streams", metavar="N", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="speech streams generated at once")
@click.option("--max-queue", metavar="N", type=click.IntRange(0, 100_000), default=32, show_default=True,
              help="requests that may wait for a free stream; beyond them: 503")
@click.option("--max-input-chars", metavar="N", type=click.IntRange(1, 10_000_000), default=20_000,
              show_default=True, help="longest input text; longer: 413")
@click.option("--shutdown-grace", metavar="S", type=click.FloatRange(0, 3600), default=30.0,
              show_default=True, help="seconds active streams may finish after SIGTERM/SIGINT")
def serve(host, port, config_path, profile, checkpoint, device, voices_dir, api_key_env, max_streams,
          max_queue, max_input_chars, shutdown_grace):
    """Serve speech over HTTP: OpenAI's /v1/audio/speech, streamed as it is made.

    Loads the model once; every profile is served on it (the --config file laid over
    each), and concurrent requests share its T3 batch. Open http://HOST:PORT/ for
    a page that plays it. See docs/serve.md.
    """
    import logging

    from .config import DEFAULT_PROFILE, profile_names
    from .server.settings import ServerSettings

    key = None
    if api_key_env is not None:
        key = os.environ.get(api_key_env, "")
        if not key.strip():
            raise SeqoptError(f"--api-key-env {api_key_env}: the environment variable {api_key_env} is empty or "
                              f"not set; put the key in it (export {api_key_env}=...) and start again")
    settings = ServerSettings.build(host=host, port=port, api_key=key, voices_dir=voices_dir,
                                    max_streams=max_streams, max_queue=max_queue,
                                    max_input_chars=max_input_chars, shutdown_grace_seconds=shutdown_grace)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise SeqoptError(f"seqopt serve needs FastAPI and uvicorn ({exc}): pip install 'seqopt[serve]'") from None
    from .server.service import SpeechService, build_pipelines
    from .server.voices import VoiceLibrary

    voices = VoiceLibrary(settings.voices_dir)
    overrides = _model_overrides(checkpoint=checkpoint, device=device)
    default = profile
    if default is None and config_path is not None:
        default = _load(config_path, None, None).config.extends
    names = profile_names()
    default = default or DEFAULT_PROFILE
    # The config file is laid over each profile, as `--config F --profile P` does for speak.
    loaded = {name: _load(config_path, name, overrides) for name in [default, *(n for n in names if n != default)]}
    # One loaded model serves them all: the default and the built-in profiles made for the
    # same model as it (rtx4090 and baseline for Chatterbox; multilingual for Multilingual).
    model = {name: _load(None, name, None).config.engine.name for name in names}
    loaded = {name: cfg for name, cfg in loaded.items()
              if model[name] == model[default]}
    console = _stderr_console()
    host_plugins = _engine_available(loaded[default])
    _preflight(host_plugins, loaded[default], console)
    stop = _StopSignals()
    try:
        with stop:
            with console.status("loading the model"), warnings.catch_warnings():
                for category in _SHOWN_NOTES:
                    warnings.simplefilter("ignore", category)
                pipelines = build_pipelines(loaded, host_plugins)
            engine = pipelines[default].engine
            if engine.describe().get("random_weights"):
                console.print("[yellow]note:[/] this checkpoint has random weights: the audio is noise, "
                              "not speech")
            for pipe in pipelines.values():
                if pipe.scheduler.uses_playback:  # measured once per device, then read from the cache
                    with console.status("reading this device's costs") as status:
                        pipe.on_status = lambda message: status.update(_text(message))
                        pipe.costs  # noqa: B018 - loads or measures them now, not in the first request
                        pipe.on_status = None
            service = SpeechService(pipelines, default, settings, voices)
    except _Stopped as stopped:
        click.echo(f"{stopped.signal_name}: stopped before the server started", err=True)
        sys.exit(0)
    from .server.runner import make_server

    server_log = logging.getLogger("seqopt.server")
    if not server_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("seqopt.server %(levelname)s: %(message)s"))
        server_log.addHandler(handler)
        server_log.setLevel(logging.INFO)
        server_log.propagate = False

    def started(urls: list[str]) -> None:
        where = urls[0] if urls else f"http://{host}:{port}"
        info = engine.describe()
        click.echo(f"seqopt serve: listening on {where} ({info.get('name')} on {info.get('device')}; "
                   f"profiles {', '.join(service.profiles)}, default {default}; "
                   f"{len(voices.names())} voice(s); "
                   f"{'API key required' if key else 'no API key: loopback only'}; "
                   f"at most {max_streams} streams, {max_queue} queued)", err=True)

    make_server(service, on_started=started).run()


def _int_list(value: str | None, option: str) -> list[int] | None:
    if value is None:
        return None
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated whole numbers, e.g. 32,128,512; got {value!r}",
                                 param_hint=option) from None
    bad = [n for n in out if not 1 <= n <= 2048]
    if bad or not out:
        raise click.BadParameter(f"token lengths must be between 1 and 2048, got {value!r}", param_hint=option)
    return out


class _RichProgress:
    """A comparison's progress on a rich progress bar (work units calibrated to seconds)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task = bar.add_task("starting", total=None)

    def start(self, total: float, description: str) -> None:
        self.bar.reset(self.task, total=total, completed=0, description=description)

    def advance(self, units: float, description: str) -> None:
        self.bar.update(self.task, advance=units, description=description)


@main.command()
@click.option("-f", "--file", "files", metavar="FILE", multiple=True, type=click.Path(),
              help="a text of yours to compare on (repeatable); UTF-8")
@click.option("--profiles", metavar="A,B", help="built-in profiles to compare, comma-separated "
              "(default baseline,rtx4090 unless --config is given)")
@click.option("--config", "configs", metavar="FILE", multiple=True, type=click.Path(),
              help="a config file to compare (repeatable); with --profiles, the files come after them")
@click.option("--lengths", metavar="N,N", help="the sequence-length matrix: texts of these many tokens "
              "cut from the built-in corpus (default, with no -f: 32,64,128,256,512,1024)")
@click.option("--classes", metavar="C,C", help="content-class texts from the built-in corpus: "
              "book,news,conversational,technical,poetry or 'all' (default, with no -f: all)")
@click.option("--class-tokens", type=click.IntRange(8, 2048), default=256, show_default=True,
              help="tokens of each content-class text")
@click.option("--checkpoint", metavar="DIR", type=click.Path(),
              help="local checkpoint folder for every configuration (default: the configs' own, "
              "else download ResembleAI/chatterbox)")
@click.option("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
@click.option("--repeats", type=click.IntRange(1, 100), default=3, show_default=True,
              help="timed runs per text and configuration")
@click.option("--seed", type=int, default=0, show_default=True, help="sampling seed for every run")
@click.option("--tokens-per-text-token", type=click.FloatRange(min=0, min_open=True), metavar="R",
              help="benchmark length mode: exactly R speech tokens per text token, stop token "
              "ignored (default: 1.0 with a random-weight checkpoint, else off)")
@_language_opt
@click.option("--no-warmup", is_flag=True, help="skip the untimed warm-up run of each configuration")
@click.option("--no-plots", is_flag=True, help="write only the JSON and the Markdown report")
@click.option("--out", "out_dir", metavar="DIR", type=click.Path(file_okay=False), default="seqopt-compare",
              show_default=True, help="folder for comparison.json, report.md and the PNG plots")
def compare(files, profiles, configs, lengths, classes, class_tokens, checkpoint, device, repeats, seed,
            tokens_per_text_token, language, no_warmup, no_plots, out_dir):
    """Compare pipeline configurations on the same texts, side by side.

    Loads the model once, runs every configuration on every text in this one
    process, interleaved (A B A B ...) after an untimed warm-up, and writes
    medians, spread and the ratio of each configuration to the first (the
    reference) as JSON, a Markdown report and PNG plots.
    """
    from . import harness
    names = [p.strip() for p in profiles.split(",") if p.strip()] if profiles else []
    if not names and not configs:
        names = ["baseline", "rtx4090"]
    contenders = harness.contenders_from(names, configs)
    length_list = _int_list(lengths, "--lengths")
    if classes is None:
        class_list = [] if files or length_list else list(harness.CONTENT_CLASSES)
    elif classes.strip() == "all":
        class_list = list(harness.CONTENT_CLASSES)
    else:
        class_list = [c.strip() for c in classes.split(",") if c.strip()]
        unknown = sorted(set(class_list) - set(harness.CONTENT_CLASSES))
        if unknown:
            raise click.BadParameter(f"unknown content class(es) {', '.join(unknown)}; choose from "
                                     f"{', '.join(harness.CONTENT_CLASSES)} or all", param_hint="--classes")
    if length_list is None and not files and classes is None:
        length_list = list(harness.DEFAULT_LENGTHS)
    console = _stderr_console()
    with console.status("loading the model"):
        runner = harness.ComparisonRunner(contenders, checkpoint=checkpoint, device=device, seed=seed,
                                          tokens_per_text_token=tokens_per_text_token, language=language)
    if runner.random_weights:
        console.print("[yellow]note:[/] this checkpoint has random weights: the audio is noise, not "
                      f"speech; every segment gets {runner.tokens_per_text_token:g} speech tokens per "
                      "text token (benchmark length mode)")
    texts = (harness.file_texts(files, runner.exact) + harness.length_matrix(length_list or [], runner.exact)
             + harness.class_texts(class_list, runner.exact, class_tokens))
    warmup = None if no_warmup else harness.warmup_text(runner.exact)
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console.print(_text(f"comparing {', '.join(c.name for c in contenders)} on {_plural(len(texts), 'text')}, "
                        f"{repeats} run(s) each, on {runner.device}"))
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console) as bar:
        result = runner.run(texts, repeats=repeats, warmup=warmup, progress=_RichProgress(bar))
    written = harness.write_report(result, out_dir, plots=not no_plots)
    rat = harness.ratios(result)
    for text in result.texts:
        for name in [c["name"] for c in result.contenders[1:]]:
            r = rat[text.id][name]
            parts = [f"{label} {r[m]['median']:.2f}x" for m, label in
                     (("time_to_first_audio", "TTFA"), ("rtf", "RTF"), ("peak_memory_bytes", "memory"))
                     if r[m]]
            click.echo(f"{text.id} ({text.tokens} tokens): {name}/{result.reference} " + ", ".join(parts))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo("wrote " + ", ".join(str(p) for p in written.values()))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@main.group()
def config() -> None:
    """Show, validate or describe pipeline configs."""


@config.command("show")
@click.argument("path", required=False, type=click.Path())
@_profile_opt
@_json_opt
def config_show(path, profile, as_json):
    """Print the effective config (a file merged onto its profile, or a profile)."""
    import tomli_w

    from .api import plugin_host
    from .config import load_config, resolve_config

    loaded = load_config(path, profile=profile, validate=False)
    resolved = resolve_config(loaded, plugin_host(loaded))
    data = loaded.config.model_dump()
    for slot, r in resolved.items():  # every option with its value in effect, defaults included
        data[slot]["options"] = r.options.model_dump(mode="json")
    if as_json:
        _emit_json(data)
        return
    from .config import flatten_keys

    click.echo(f"# effective config from {loaded.source} (every option, defaults included)")
    unset = [k for k, v in flatten_keys(data).items() if v is None]
    if unset:
        click.echo(f"# not set (TOML has no null; the default applies): {', '.join(unset)}")
    click.echo(tomli_w.dumps(_drop_none(data)).rstrip())


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without ``None`` values (TOML has no null: an unset key means the default)."""
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


@config.command("validate")
@click.argument("path", required=False, type=click.Path())
@_profile_opt
def config_validate(path, profile):
    """Check a config: keys, ranges, strategy names and each strategy's options; the
    strategies that are cheap to build are built too (their own checks run)."""
    from .config import build_strategies, load_config, plugin_host_for, resolve_config

    loaded = load_config(path, profile=profile, validate=False)
    host = plugin_host_for(loaded)
    resolved = resolve_config(loaded, host)
    report = build_strategies(loaded, host, resolved)
    for slot, r in resolved.items():
        if slot in report.built:
            state = "ok (built)"
        else:
            why = report.not_built.get(slot, "not built")
            state = why if why.startswith("disabled here") else f"ok (options checked; {why})"
        click.echo(f"{slot:16} {r.name:12} ({r.provider}) {state}")
    click.echo(f"{loaded.source}: valid")


@config.command("schema")
def config_schema_cmd():
    """Print the JSON schema of the config file."""
    from .config import config_schema

    _emit_json(config_schema())


def _plugin_commands() -> None:
    """Subcommands that plugins add (``seqopt make-checkpoint`` comes from the Chatterbox
    engine's plugin). Discovery honours SEQOPT_BLOCK_PLUGINS and autoload."""
    from .plugins import PluginHost

    try:
        host = PluginHost.discover()
    except SeqoptError:  # the built-ins are not installed: `seqopt plugins` explains
        return
    host.register_commands(main)


_plugin_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
