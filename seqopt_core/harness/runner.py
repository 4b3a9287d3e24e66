"""Run several pipeline configurations on the same texts, side by side, and measure them.

One engine is loaded once, through the plugins (the first configuration's
``[engine]`` slot), and every configuration ("contender") gets a view of it
(:meth:`~seqopt_core.engine.Engine.configured`) with its own strategies,
``[engine.options]`` and ``[synthesis]`` settings. After an untimed
warm-up per contender, each text is run ``repeats`` times, the contenders in
turn within each round (A B A B ...), so that drift on the machine (thermal,
other work, the allocator warming up) hits every contender alike. The first
contender is the reference: ratios are X/A within each round.

The harness knows engines only through :class:`seqopt_core.engine.Engine` and
what they report (:meth:`~seqopt_core.engine.Engine.describe`, the pipeline's
:class:`~seqopt_core.types.ChunkEvent` records); the engine's plugin (torch for
Chatterbox) is imported when a comparison starts, not when this module is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..api import ConfigLike, as_loaded_config, plugin_host
from ..config import LoadedConfig, config_language, profile_names, resolve_config
from ..engine import EngineRuntime
from ..errors import ConfigError, SeqoptError
from ..system import cpu_model
from .texts import ComparisonText

#: Benchmark length mode used for random-weight checkpoints when none is given.
RANDOM_WEIGHTS_TOKENS_PER_TEXT_TOKEN = 1.0
#: Cost of one S3Gen call in T3 steps, for the progress bar before a warm-up measured it.
ASSUMED_STEPS_PER_S3GEN_CALL = 50.0
#: How :func:`peak_memory` measures on CUDA (on the CPU: ``PeakResident.method``).
CUDA_MEMORY_METHOD = "CUDA max allocated above the start"
#: ``[synthesis]`` settings every contender must share: they decide where the model is loaded.
SHARED_SYNTHESIS_KEYS = ("device", "dtype", "language")
#: ``[engine.options]`` every contender must share (where the engine has them): they decide
#: which model and voice are loaded. The engine's name must be the same too.
SHARED_ENGINE_KEYS = ("checkpoint", "voice", "exaggeration")


class ProgressSink(Protocol):
    """Where a comparison reports progress (the CLI's progress bar, a test's list...)."""

    def start(self, total: float, description: str) -> None:
        """The whole comparison is ``total`` work units (about seconds once calibrated)."""

    def advance(self, units: float, description: str) -> None:
        """``units`` more are done; ``description`` says what runs now."""


@dataclass(frozen=True)
class Contender:
    """One configuration of a comparison: a name and its loaded config."""

    name: str
    config: LoadedConfig


def contenders_from(profiles: Sequence[str] = (), configs: Sequence[str | Path] = (),
                    configs_first: bool = False) -> list[Contender]:
    """Contenders for ``--profiles`` names and ``--config`` files, in that order
    (``configs_first``: files first). Names are the profile names and file stems,
    made unique; the first contender is the reference (A)."""
    known = profile_names()
    by_profile = []
    for p in profiles:
        if p not in known:
            raise ConfigError(f"unknown profile {p!r}; built-in profiles: {', '.join(known)}")
        by_profile.append((p, as_loaded_config(profile=p)))
    by_file = [(Path(c).stem or "config", as_loaded_config(c)) for c in configs]
    out = by_file + by_profile if configs_first else by_profile + by_file
    names: dict[str, int] = {}
    result = []
    for name, cfg in out:
        names[name] = names.get(name, 0) + 1
        result.append(Contender(name if names[name] == 1 else f"{name}-{names[name]}", cfg))
    if len(result) < 2:
        raise ConfigError("a comparison needs at least two configurations: give --profiles A,B "
                          "and/or --config A.toml --config B.toml (the first is the reference)")
    return result


@dataclass
class RunSample:
    """One run of one contender on one text: what it cost and what it made."""

    contender: str
    text_id: str
    repeat: int
    time_to_first_audio: float | None
    rtf: float
    rtf_speech: float | None
    wall_seconds: float
    audio_seconds: float
    speech_audio_seconds: float
    speech_tokens: int
    speech_tokens_per_second: float
    peak_memory_bytes: int | None
    planning_seconds: float
    segments: int
    chunks: int
    estimated_tokens: int  # the contender's estimator, summed over segments
    exact_tokens: int  # T3's text tokens (the checkpoint's tokenizer), summed over segments
    segment_tokens: list[int]  # estimated, per segment
    segment_exact_tokens: list[int]
    max_context_tokens: int  # largest segment: its text tokens + speech tokens
    over_limit_segments: int  # segments whose exact count exceeds the planner's max_tokens
    s3gen_seconds: float
    s3gen_calls: int
    stopped_by: list[str]
    seams: dict[str, Any]
    speech_token_ids: list[list[int]] = field(default_factory=list, repr=False)

    @property
    def other_seconds(self) -> float:
        """Wall time outside S3Gen: T3 sampling, planning and the rest."""
        return self.wall_seconds - self.s3gen_seconds

    def to_dict(self, with_tokens: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_tokens:
            d.pop("speech_token_ids")
        d["other_seconds"] = self.other_seconds
        return d


def vocoder_calls(chunks: Sequence[Any]) -> tuple[float, int]:
    """``(seconds, calls)`` of the vocoder (S3Gen) over a run's
    :class:`~seqopt_core.types.ChunkEvent` records: a chunk with speech tokens is
    one call, one without (a segment's empty last chunk) makes none."""
    return (sum(e.s3gen_seconds for e in chunks),
            sum(1 for e in chunks if e.speech_tokens > 0))


def planned_work(pipeline: Any, segments: Sequence[Any], exact: Sequence[int],
                 prompt_tokens: int = 0) -> dict[str, int]:
    """Speech tokens and S3Gen calls ``pipeline`` will run for planned ``segments``
    (with ``exact`` text tokens each): the engine's length limit per segment
    (:meth:`~seqopt_core.engine.Engine.speech_token_limit`), cut into vocoder calls
    exactly as synthesis cuts them (:meth:`~seqopt_core.scheduler.SegmentScheduler.planned_stream`).
    Also the tokens S3Gen renders: per call ``prompt_tokens`` (its voice prompt),
    the context re-read and the new tokens. Exact in benchmark length mode; an
    upper bound otherwise."""
    lengths = [(seg, pipeline.engine.speech_token_limit(seg, n_text)) for seg, n_text in zip(segments, exact)]
    speech = sum(n for _, n in lengths)
    calls = rendered = 0
    for chunks in pipeline.scheduler.planned_stream(lengths):
        calls += len(chunks)
        rendered += sum(prompt_tokens + c.context_tokens + c.new_tokens for c in chunks)
    return {"speech_tokens": speech, "s3gen_calls": calls, "s3gen_tokens_with_prompt": rendered}


def _is_cuda(device: Any) -> bool:
    return str(device).startswith("cuda")


def memory_method(device: Any) -> str:
    """What :func:`peak_memory` reports on ``device`` (a ``torch.device`` or its name), in words."""
    from .memory import PeakResident

    return CUDA_MEMORY_METHOD if _is_cuda(device) else PeakResident.method


@contextmanager
def peak_memory(device: Any) -> Iterator[dict[str, Any]]:
    """Peak memory of the block above its start: CUDA's allocator peak, or on the CPU
    the resident set after ``malloc_trim`` (see :func:`memory_method`). ``device`` is
    a ``torch.device`` or its name (``describe()["device"]``)."""
    out: dict[str, Any] = {}
    if _is_cuda(device):
        import torch

        device = torch.device(device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        yield out
        torch.cuda.synchronize(device)
        out["bytes"] = int(torch.cuda.max_memory_allocated(device) - before)
        out["method"] = CUDA_MEMORY_METHOD
    else:
        from .memory import PeakResident

        with PeakResident() as rss:
            yield out
        out["bytes"], out["method"] = rss.used, rss.method


@dataclass
class Comparison:
    """Everything a comparison measured; :mod:`.report` turns it into files."""

    contenders: list[dict[str, Any]]
    texts: list[ComparisonText]
    samples: list[RunSample]
    settings: dict[str, Any]
    environment: dict[str, Any]
    token_match: list[dict[str, Any]]
    memory_method: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return self.contenders[0]["name"]

    def samples_for(self, contender: str, text_id: str) -> list[RunSample]:
        return sorted((s for s in self.samples if s.contender == contender and s.text_id == text_id),
                      key=lambda s: s.repeat)


def interleaved(text_ids: Sequence[str], contenders: Sequence[str], repeats: int) -> list[tuple[str, int, str]]:
    """The run order: per text, ``repeats`` rounds, every contender once per round in turn.

    >>> interleaved(["t1"], ["A", "B"], 2)
    [('t1', 0, 'A'), ('t1', 0, 'B'), ('t1', 1, 'A'), ('t1', 1, 'B')]
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    return [(t, r, c) for t in text_ids for r in range(repeats) for c in contenders]


class ComparisonRunner:
    """Loads the engine once, builds a pipeline per contender, runs the schedule.

    ``checkpoint``, ``watermark`` and ``tokens_per_text_token`` are set in every
    contender's ``[engine.options]`` (``checkpoint``, ``watermark``,
    ``benchmark_tokens_per_text_token``), ``seed``, ``device`` and ``language`` in its
    ``[synthesis]``.
    """

    def __init__(self, contenders: Sequence[Contender], *, checkpoint: str | None = None,
                 device: str | None = None, seed: int = 0, tokens_per_text_token: float | None = None,
                 watermark: bool | None = None, language: str | None = None) -> None:
        if len(contenders) < 2:
            raise ConfigError("a comparison needs at least two configurations")
        self.seed = seed
        synthesis: dict[str, Any] = {"seed": seed}
        engine_options: dict[str, Any] = {}
        if checkpoint is not None:
            engine_options["checkpoint"] = str(checkpoint)
        if device is not None:
            synthesis["device"] = device
        if language is not None:
            synthesis["language"] = language
        if watermark is not None:
            engine_options["watermark"] = watermark
        overrides: dict[str, Any] = {"synthesis": synthesis}
        if engine_options:
            overrides["engine"] = {"options": engine_options}
        configs = [as_loaded_config(c.config, overrides=overrides) for c in contenders]
        host = plugin_host(configs[0])
        self._check_shared(contenders, configs, host)

        first = configs[0]
        chosen = resolve_config(first, host, slots=("engine",))["engine"]
        runtime = EngineRuntime(first.config.synthesis.device, first.config.synthesis.dtype)
        started = time.perf_counter()
        engine = host.create_engine(chosen.name, chosen.options, runtime)
        self.load_seconds = time.perf_counter() - started
        self.engine = engine
        self.engine_info: dict[str, Any] = dict(engine.describe())
        self.random_weights = bool(self.engine_info.get("random_weights"))
        if tokens_per_text_token is None and self.random_weights:
            tokens_per_text_token = RANDOM_WEIGHTS_TOKENS_PER_TEXT_TOKEN
        self.tokens_per_text_token = tokens_per_text_token
        if tokens_per_text_token is not None:
            configs = [as_loaded_config(c, overrides={"engine": {"options": {
                "benchmark_tokens_per_text_token": tokens_per_text_token}}}) for c in configs]

        from ..pipeline import Pipeline

        self.contenders = [Contender(c.name, cfg) for c, cfg in zip(contenders, configs)]
        self.pipelines = {c.name: Pipeline.from_config(c.config, engine=engine) for c in self.contenders}
        tokenizer = self.engine_info.get("tokenizer")
        if not tokenizer:
            raise ConfigError(
                f"engine {chosen.name!r} does not say which tokenizer it reads (describe()['tokenizer']); "
                "the comparison counts every segment's exact text tokens with it")
        # the engine's own exact estimator, on the tokenizer it reads, for the run's language
        exact = host.strategy("engine", chosen.name).spec.estimator or "chatterbox"
        self.exact = host.create("estimator", exact, {"tokenizer": str(tokenizer)},
                                 language=config_language(first, host))
        self.device = str(self.engine_info.get("device", runtime.device))
        self._chunk_events: dict[str, list[Any]] = {}
        self._step_cost = 1.0
        self._call_cost = ASSUMED_STEPS_PER_S3GEN_CALL

    @staticmethod
    def _check_shared(contenders: Sequence[Contender], configs: Sequence[LoadedConfig],
                      host: Any) -> None:
        def differ(key: str, a: Any, b: Any, c: Contender) -> ConfigError:
            return ConfigError(
                f"every configuration of a comparison runs on one loaded model, but "
                f"{contenders[0].name!r} has {key} = {a!r} and {c.name!r} has "
                f"{b!r}; make them equal (or pass --checkpoint / --device to set both)")

        first = configs[0].config
        for c, cfg in zip(contenders[1:], configs[1:]):
            for key in SHARED_SYNTHESIS_KEYS:
                a, b = getattr(first.synthesis, key), getattr(cfg.config.synthesis, key)
                if a != b:
                    raise differ(f"synthesis.{key}", a, b, c)
            if first.engine.name != cfg.config.engine.name:
                raise differ("engine.name", first.engine.name, cfg.config.engine.name, c)
        # the engine's own options, validated (defaults filled in), where its model has them
        options = [resolve_config(cfg, host, slots=("engine",))["engine"].options for cfg in configs]
        for c, theirs in zip(contenders[1:], options[1:]):
            for key in SHARED_ENGINE_KEYS:
                a, b = getattr(options[0], key, None), getattr(theirs, key, None)
                if a != b:
                    raise differ(f"engine.options.{key}", a, b, c)

    # -- measuring one run --------------------------------------------------------------

    def _units(self, work: dict[str, int]) -> float:
        return work["speech_tokens"] * self._step_cost + work["s3gen_calls"] * self._call_cost

    def run_once(self, contender: str, text: ComparisonText, repeat: int,
                 on_chunk: Callable[[float], None] | None = None) -> RunSample:
        """Stream ``text`` through ``contender``'s pipeline, consuming it as a player would."""
        import numpy as np

        from .seams import measure_seams

        pipe = self.pipelines[contender]
        sample_rate = pipe.sample_rate
        parts: list[np.ndarray] = []
        chunk_seams: list[int] = []
        segment_spans: list[tuple[int, int]] = []
        position = pause_total = 0
        segment_start = 0
        with peak_memory(self.device) as mem:
            for chunk in pipe.stream(text.text):
                audio = chunk.audio
                speech = len(audio) - chunk.pause_samples
                if position > segment_start:
                    chunk_seams.append(position)
                parts.append(audio)
                position += speech
                if chunk.is_segment_end:
                    segment_spans.append((segment_start, position))
                    position += chunk.pause_samples
                    pause_total += chunk.pause_samples
                    segment_start = position
                if on_chunk is not None and chunk.event.speech_tokens:
                    on_chunk(chunk.event.speech_tokens * self._step_cost + self._call_cost)
        metrics = pipe.last_metrics
        assert metrics is not None
        if repeat >= 0:  # timed runs only: what the model's work cost, for fit_costs
            self._chunk_events.setdefault(contender, []).extend(metrics.chunks)
        s3gen_seconds, s3gen_calls = vocoder_calls(metrics.chunks)
        g = metrics.generation
        audio_all = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        seams = measure_seams(audio_all, chunk_seams, segment_spans).to_dict()
        segs = [s.segment for s in metrics.segments]
        exact = [self.exact.count(s.text) for s in segs]
        contexts = [e + s.speech_tokens for e, s in zip(exact, metrics.segments)]
        speech_audio = (len(audio_all) - pause_total) / sample_rate
        max_tokens = g.plan.max_tokens
        return RunSample(
            contender=contender, text_id=text.id, repeat=repeat,
            time_to_first_audio=g.time_to_first_audio, rtf=g.rtf,
            rtf_speech=g.wall_seconds / speech_audio if speech_audio else None,
            wall_seconds=g.wall_seconds, audio_seconds=g.audio_seconds,
            speech_audio_seconds=speech_audio, speech_tokens=metrics.speech_tokens,
            speech_tokens_per_second=metrics.speech_tokens_per_second,
            peak_memory_bytes=mem.get("bytes"), planning_seconds=g.plan.planning_seconds,
            segments=g.segments, chunks=g.chunks,
            estimated_tokens=sum(s.tokens for s in segs), exact_tokens=sum(exact),
            segment_tokens=[s.tokens for s in segs], segment_exact_tokens=exact,
            max_context_tokens=max(contexts, default=0),
            over_limit_segments=sum(1 for e in exact if e > max_tokens),
            s3gen_seconds=s3gen_seconds, s3gen_calls=s3gen_calls,
            stopped_by=sorted({s.stopped_by for s in metrics.segments}), seams=seams,
            speech_token_ids=[list(t) for t in metrics.segment_speech_tokens],
        )

    # -- the whole comparison ------------------------------------------------------------

    def work_for(self, contender: str, text: str) -> dict[str, int]:
        pipe = self.pipelines[contender]
        segments = pipe.planner.plan(text).segments
        return planned_work(pipe, segments, [self.exact.count(s.text) for s in segments])

    def run(self, texts: Sequence[ComparisonText], *, repeats: int = 3, warmup: str | None = None,
            progress: ProgressSink | None = None) -> Comparison:
        """Warm up (``warmup`` text, untimed), then run the interleaved schedule."""
        if not texts:
            raise SeqoptError("nothing to compare: no texts given")
        names = [c.name for c in self.contenders]
        schedule = interleaved([t.id for t in texts], names, repeats)
        by_id = {t.id: t for t in texts}
        work = {(t.id, n): self.work_for(n, t.text) for t in texts for n in names}
        warm_work = {n: self.work_for(n, warmup) for n in names} if warmup else {}
        sink = progress or _NullProgress()
        total = sum(self._units(w) for w in warm_work.values())
        sink.start(total + repeats * sum(self._units(w) for w in work.values()), "warm-up")
        if warmup:
            self._warm_up(warmup, sink)
            # recalibrate the units from what the warm-up measured, for an honest ETA
            sink.start(repeats * sum(self._units(w) for w in work.values()), "timed runs")
        samples: list[RunSample] = []
        for text_id, repeat, name in schedule:
            label = f"{name} on {text_id} (round {repeat + 1}/{repeats})"
            planned, done = self._units(work[(text_id, name)]), [0.0]

            def on_chunk(units: float, label: str = label, done: list[float] = done) -> None:
                done[0] += units
                sink.advance(units, label)

            sink.advance(0, label)
            samples.append(self.run_once(name, by_id[text_id], repeat, on_chunk=on_chunk))
            if planned > done[0]:  # a run that made fewer S3Gen calls than planned (an empty chunk)
                sink.advance(planned - done[0], label)
        return Comparison(
            contenders=[{**self._describe(c), "costs": self.costs(c.name)} for c in self.contenders],
            texts=list(texts),
            samples=samples, settings=self._settings(repeats, warmup), environment=self.environment(),
            token_match=token_match(samples, names, [t.id for t in texts]),
            memory_method=memory_method(self.device))

    def costs(self, contender: str) -> dict[str, Any]:
        """What the model's work cost in ``contender``'s timed runs so far
        (:func:`seqopt_core.costs.fit_costs` over their chunk events): the vocoder's fixed
        and per-token seconds, and a streamed T3 step's median."""
        from ..costs import costs_json

        return costs_json(self._chunk_events.get(contender, []))

    def _warm_up(self, text: str, sink: ProgressSink) -> None:
        steps = calls = 0
        s3_seconds = other = 0.0
        for name in self.pipelines:
            sample = self.run_once(name, ComparisonText("warm-up", text, "file", 0), -1,
                                   on_chunk=lambda u, name=name: sink.advance(u, f"warm-up: {name}"))
            steps += sample.speech_tokens
            calls += sample.s3gen_calls
            s3_seconds += sample.s3gen_seconds
            other += sample.other_seconds
        if steps and calls:
            self._step_cost = other / steps
            self._call_cost = s3_seconds / calls

    def _describe(self, c: Contender) -> dict[str, Any]:
        cfg = c.config.config
        pipe = self.pipelines[c.name]
        options = cfg.engine.options  # the engine's own settings, as the config gives them
        return {
            "name": c.name, "source": c.config.source, "description": cfg.description,
            "estimator": cfg.estimator.name, "splitter": cfg.splitter.name,
            "planner": {"target_tokens": cfg.planner.target_tokens, "max_tokens": cfg.planner.max_tokens},
            "chunk_policy": {"name": cfg.chunk_policy.name, **cfg.chunk_policy.options},
            "context_policy": {"name": cfg.context_policy.name, **cfg.context_policy.options},
            "segment_context": cfg.segment_context.name, "attention": cfg.attention.name,
            "engine": cfg.engine.name, "crossfade_ms": pipe.settings.crossfade_ms,
            "max_new_tokens": options.get("max_new_tokens"),
            "benchmark_tokens_per_text_token": options.get("benchmark_tokens_per_text_token"),
            "watermark": options.get("watermark", True),
        }

    def _settings(self, repeats: int, warmup: str | None) -> dict[str, Any]:
        info = self.engine_info
        return {
            "repeats": repeats, "seed": self.seed, "warmup_chars": len(warmup) if warmup else 0,
            "order": "interleaved: per text and round, every configuration in turn (A B A B ...)",
            "reference": self.contenders[0].name,
            "engine": info.get("name"),
            "checkpoint": {"path": info.get("checkpoint"), "random_weights": self.random_weights,
                           "scale": self._scale(), "load_seconds": self.load_seconds},
            "benchmark_tokens_per_text_token": self.tokens_per_text_token,
        }

    def _scale(self) -> str | None:
        """The checkpoint's size (``tiny``, ``full``...), if the engine's ``describe()`` tells."""
        scale = self.engine_info.get("scale")
        return None if scale is None else str(scale)

    def environment(self) -> dict[str, Any]:
        return device_environment(self.device)


def device_environment(device: Any) -> dict[str, Any]:
    """Where and with what a comparison ran: device (a ``torch.device`` or its name),
    CPU, memory, versions."""
    import os
    import platform
    from importlib import metadata

    import torch

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {n: version(n) for n in ("seqopt", "torch", "transformers", "chatterbox-tts", "numpy")},
    }
    if _is_cuda(device):
        props = torch.cuda.get_device_properties(torch.device(device))
        env["accelerator"] = props.name
        env["accelerator_memory_bytes"] = int(props.total_memory)
    try:
        env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        pass
    return env


def token_match(samples: Sequence[RunSample], names: Sequence[str],
                text_ids: Sequence[str]) -> list[dict[str, Any]]:
    """For texts every contender left un-split (one segment): does each contender's
    first run sample the same speech tokens as the reference's (same seed)?"""
    out = []
    ref = names[0]
    for text_id in text_ids:
        first = {s.contender: s for s in samples if s.text_id == text_id and s.repeat == 0}
        if len(first) < len(names) or any(first[n].segments != 1 for n in names):
            continue
        a = first[ref].speech_token_ids[0] if first[ref].speech_token_ids else []
        for name in names[1:]:
            b = first[name].speech_token_ids[0] if first[name].speech_token_ids else []
            diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
            if diff is None and len(a) != len(b):
                diff = min(len(a), len(b))
            out.append({"text_id": text_id, "reference": ref, "contender": name,
                        "identical": diff is None, "tokens": [len(a), len(b)],
                        "first_difference": diff})
    return out


class _NullProgress:
    def start(self, total: float, description: str) -> None:
        pass

    def advance(self, units: float, description: str) -> None:
        pass


def compare_pipelines(configs: Sequence[tuple[str, ConfigLike]], texts: Sequence[ComparisonText], *,
                      repeats: int = 3, checkpoint: str | None = None, device: str | None = None,
                      seed: int = 0, tokens_per_text_token: float | None = None,
                      warmup: str | None = None, progress: ProgressSink | None = None) -> Comparison:
    """Library entry point: ``configs`` as ``(name, config)`` pairs (profile configs,
    files or :class:`~seqopt_core.PipelineConfig` objects); the first is the reference."""
    contenders = [Contender(name, as_loaded_config(profile=cfg) if isinstance(cfg, str)
                            and cfg in profile_names() else as_loaded_config(cfg))
                  for name, cfg in configs]
    runner = ComparisonRunner(contenders, checkpoint=checkpoint, device=device, seed=seed,
                              tokens_per_text_token=tokens_per_text_token)
    return runner.run(texts, repeats=repeats, warmup=warmup, progress=progress)
