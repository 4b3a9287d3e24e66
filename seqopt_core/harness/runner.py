"""Run several pipeline configurations on the same texts, side by side, and measure them.

One model is loaded once and every configuration ("contender") gets a view of
it with its own strategies and ``[synthesis]`` settings. After an untimed
warm-up per contender, each text is run ``repeats`` times, the contenders in
turn within each round (A B A B ...), so that drift on the machine (thermal,
other work, the allocator warming up) hits every contender alike. The first
contender is the reference: ratios are X/A within each round.

The Chatterbox engine (torch) is imported when a comparison starts, not when
this module is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..api import ConfigLike, as_loaded_config
from ..config import LoadedConfig, profile_names
from ..errors import ConfigError, SeqoptError
from ..system import cpu_model
from .texts import ComparisonText

#: Benchmark length mode used for random-weight checkpoints when none is given.
RANDOM_WEIGHTS_TOKENS_PER_TEXT_TOKEN = 1.0
#: Cost of one S3Gen call in T3 steps, for the progress bar before a warm-up measured it.
ASSUMED_STEPS_PER_S3GEN_CALL = 50.0
#: How :func:`peak_memory` measures on CUDA (on the CPU: ``PeakResident.method``).
CUDA_MEMORY_METHOD = "CUDA max allocated above the start"
#: Settings every contender must share: they decide which model is loaded.
SHARED_SYNTHESIS_KEYS = ("checkpoint", "device", "dtype", "voice", "exaggeration")


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


@dataclass
class _S3GenMeter:
    seconds: float = 0.0
    calls: int = 0


@contextmanager
def metered_s3gen(engine: Any) -> Iterator[_S3GenMeter]:
    """Time every ``s3gen.inference`` call of ``engine`` (an instance attribute, removed after)."""
    meter = _S3GenMeter()
    s3gen = engine.s3gen
    inference = s3gen.inference

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inference(*args, **kwargs)
        finally:
            meter.seconds += time.perf_counter() - started
            meter.calls += 1

    s3gen.inference = timed
    try:
        yield meter
    finally:
        del s3gen.inference


def planned_work(pipeline: Any, segments: Sequence[Any], exact: Sequence[int],
                 prompt_tokens: int = 0) -> dict[str, int]:
    """Speech tokens and S3Gen calls ``pipeline`` will run for planned ``segments``
    (with ``exact`` text tokens each), mirroring the engine: the length limit per
    segment, a chunk whenever the chunk policy's size is pending, a last chunk
    with the rest (no S3Gen call when nothing is left). Also the tokens S3Gen
    renders: per call ``prompt_tokens`` (its voice prompt), the context window
    and the new tokens. Exact in benchmark length mode; an upper bound otherwise."""
    engine = pipeline.engine
    speech = calls = rendered = 0
    for seg, n_text in zip(segments, exact):
        n = engine.length_limits(n_text).max_new_tokens
        speech += n
        decoded = pending = index = 0
        for step in range(n + 1):
            last = step == n
            if not last:
                pending += 1
            if pending and (last or pending >= pipeline.chunk_policy.chunk_size(seg.tokens, index, seg.index)):
                context = min(decoded, pipeline.context_policy.context_window(seg.tokens, index, seg.index))
                calls, rendered = calls + 1, rendered + prompt_tokens + context + pending
                decoded, pending, index = decoded + pending, 0, index + 1
    return {"speech_tokens": speech, "s3gen_calls": calls, "s3gen_tokens_with_prompt": rendered}


def memory_method(device: Any) -> str:
    """What :func:`peak_memory` reports on ``device``, in words."""
    from .memory import PeakResident

    return CUDA_MEMORY_METHOD if device.type == "cuda" else PeakResident.method


@contextmanager
def peak_memory(device: Any) -> Iterator[dict[str, Any]]:
    """Peak memory of the block above its start: CUDA's allocator peak, or on the CPU
    the resident set after ``malloc_trim`` (see :func:`memory_method`)."""
    out: dict[str, Any] = {}
    if device.type == "cuda":
        import torch

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
    """Loads the model once, builds a pipeline per contender, runs the schedule."""

    def __init__(self, contenders: Sequence[Contender], *, checkpoint: str | None = None,
                 device: str | None = None, seed: int = 0, tokens_per_text_token: float | None = None,
                 watermark: bool | None = None) -> None:
        if len(contenders) < 2:
            raise ConfigError("a comparison needs at least two configurations")
        self.seed = seed
        synthesis: dict[str, Any] = {"seed": seed}
        if checkpoint is not None:
            synthesis["checkpoint"] = str(checkpoint)
        if device is not None:
            synthesis["device"] = device
        if watermark is not None:
            synthesis["watermark"] = watermark
        configs = [as_loaded_config(c.config, overrides={"synthesis": synthesis}) for c in contenders]
        self._check_shared(contenders, configs)

        from seqopt_plugins.chatterbox.engine import ChatterboxEngine

        started = time.perf_counter()
        engine = ChatterboxEngine.load(configs[0].config.synthesis)
        self.load_seconds = time.perf_counter() - started
        self.loaded = engine.loaded
        self.random_weights = bool(self.loaded.random_weights)
        if tokens_per_text_token is None and self.random_weights:
            tokens_per_text_token = RANDOM_WEIGHTS_TOKENS_PER_TEXT_TOKEN
        self.tokens_per_text_token = tokens_per_text_token
        if tokens_per_text_token is not None:
            configs = [as_loaded_config(c, overrides={"synthesis": {
                "benchmark_tokens_per_text_token": tokens_per_text_token}}) for c in configs]

        from seqopt_plugins.chatterbox.pipeline import Pipeline

        self.contenders = [Contender(c.name, cfg) for c, cfg in zip(contenders, configs)]
        self.pipelines = {c.name: Pipeline.from_config(c.config, engine=engine) for c in self.contenders}
        host = next(iter(self.pipelines.values())).host
        self.exact = host.create("estimator", "chatterbox",
                                 {"tokenizer": str(self.loaded.path / "tokenizer.json")})
        self.device = self.loaded.device
        self._step_cost = 1.0
        self._call_cost = ASSUMED_STEPS_PER_S3GEN_CALL

    @staticmethod
    def _check_shared(contenders: Sequence[Contender], configs: Sequence[LoadedConfig]) -> None:
        first = configs[0].config.synthesis
        for c, cfg in zip(contenders[1:], configs[1:]):
            for key in SHARED_SYNTHESIS_KEYS:
                a, b = getattr(first, key), getattr(cfg.config.synthesis, key)
                if a != b:
                    raise ConfigError(
                        f"every configuration of a comparison runs on one loaded model, but "
                        f"{contenders[0].name!r} has synthesis.{key} = {a!r} and {c.name!r} has "
                        f"{b!r}; make them equal (or pass --checkpoint / --device to set both)")

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
        with metered_s3gen(pipe.engine) as s3, peak_memory(self.device) as mem:
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
            s3gen_seconds=s3.seconds, s3gen_calls=s3.calls,
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
            contenders=[self._describe(c) for c in self.contenders], texts=list(texts),
            samples=samples, settings=self._settings(repeats, warmup), environment=self.environment(),
            token_match=token_match(samples, names, [t.id for t in texts]),
            memory_method=memory_method(self.device))

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
        s = pipe.engine.settings
        return {
            "name": c.name, "source": c.config.source, "description": cfg.description,
            "estimator": cfg.estimator.name, "splitter": cfg.splitter.name,
            "planner": {"target_tokens": cfg.planner.target_tokens, "max_tokens": cfg.planner.max_tokens},
            "chunk_policy": {"name": cfg.chunk_policy.name, **cfg.chunk_policy.options},
            "context_policy": {"name": cfg.context_policy.name, **cfg.context_policy.options},
            "segment_context": cfg.segment_context.name, "attention": cfg.attention.name,
            "crossfade_ms": s.crossfade_ms, "max_new_tokens": s.max_new_tokens,
            "benchmark_tokens_per_text_token": s.benchmark_tokens_per_text_token,
            "watermark": s.watermark,
        }

    def _settings(self, repeats: int, warmup: str | None) -> dict[str, Any]:
        from seqopt_plugins.chatterbox.checkpoint import describe

        return {
            "repeats": repeats, "seed": self.seed, "warmup_chars": len(warmup) if warmup else 0,
            "order": "interleaved: per text and round, every configuration in turn (A B A B ...)",
            "reference": self.contenders[0].name,
            "checkpoint": {"path": str(self.loaded.path), "random_weights": self.random_weights,
                           "scale": describe(self.loaded.arch).get("scale"),
                           "load_seconds": self.load_seconds},
            "benchmark_tokens_per_text_token": self.tokens_per_text_token,
        }

    def environment(self) -> dict[str, Any]:
        return device_environment(self.device)


def device_environment(device: Any) -> dict[str, Any]:
    """Where and with what a comparison ran: device, CPU, memory, versions."""
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
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
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
