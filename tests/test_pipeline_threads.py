"""Several streams on one pipeline at once, from one thread or several: each gets the
audio it gets alone (seeded, sample for sample), its own metrics, and T3's attention
implementation is never left switched. Tiny random-weight checkpoint: noise, not
speech; these tests check mechanics, never audio quality."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from seqopt_plugins.chatterbox.pipeline import Pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT_A = ("The first sentence is short. The second one is a little longer than the first. "
          "Here comes the third.")
TEXT_B = "A different text starts here, and it ends here. Then one more sentence follows."
#: Join timeout for a worker thread: far above what a tiny stream takes (about a second).
JOIN_SECONDS = 120


def make_pipeline(checkpoint, engine=None, attention="sdpa_aligned", **synthesis) -> Pipeline:
    options = {"checkpoint": str(checkpoint), "watermark": False,
               "benchmark_tokens_per_text_token": 1.0}
    settings = {"seed": 3, "batch_size": 1, **synthesis}
    return Pipeline.from_config(profile="rtx4090", engine=engine, overrides={
        "engine": {"options": options}, "synthesis": settings,
        "planner": {"target_tokens": 20, "max_tokens": 30}, "attention": {"name": attention}})


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint):
    return make_pipeline(tiny_checkpoint)


def alone(pipeline: Pipeline, text: str) -> tuple[np.ndarray, dict]:
    stream = pipeline.stream(text)
    audio = np.concatenate([c.audio for c in stream])
    return audio, stream.metrics.to_dict()


def run_in_threads(jobs: dict[str, tuple[Pipeline, str]]) -> dict[str, tuple[np.ndarray, object]]:
    """Each job streams its text in its own thread, all started together."""
    results: dict[str, tuple[np.ndarray, object]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(name: str, pipe: Pipeline, text: str) -> None:
        try:
            barrier.wait()
            stream = pipe.stream(text)
            parts = []
            for chunk in stream:
                parts.append(chunk.audio)
            results[name] = (np.concatenate(parts), stream.metrics)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name, pipe, text), name=f"stream-{name}")
               for name, (pipe, text) in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_SECONDS)
    assert not any(t.is_alive() for t in threads), "a stream never finished (deadlock?)"
    if errors:
        raise errors[0]
    return results


def assert_threads_match_alone(jobs: dict[str, tuple[Pipeline, str]]) -> None:
    """Each job run in its own thread, all at once, gives the audio and run it gives alone."""
    expected = {name: alone(pipe, text) for name, (pipe, text) in jobs.items()}
    results = run_in_threads(jobs)
    for name, (audio, metrics) in expected.items():
        np.testing.assert_array_equal(results[name][0], audio)
        same_run(results[name][1], metrics)


def same_run(metrics, reference: dict) -> None:
    got = metrics.to_dict()
    assert got["completed"] and got["segments"] == reference["segments"]
    assert got["chunks"] == reference["chunks"] and got["speech_tokens"] == reference["speech_tokens"]
    assert got["audio_seconds"] == pytest.approx(reference["audio_seconds"])
    assert [s["speech_tokens"] for s in got["per_segment"]] == \
        [s["speech_tokens"] for s in reference["per_segment"]]


def test_two_threads_on_one_pipeline_get_their_sequential_audio(pipeline):
    t3 = pipeline.engine.t3
    before = t3.tfmr.config._attn_implementation
    audio_a, metrics_a = alone(pipeline, TEXT_A)
    audio_b, metrics_b = alone(pipeline, TEXT_B)
    for _ in range(2):  # a couple of rounds: the interleaving differs each time
        results = run_in_threads({"a": (pipeline, TEXT_A), "b": (pipeline, TEXT_B)})
        np.testing.assert_array_equal(results["a"][0], audio_a)
        np.testing.assert_array_equal(results["b"][0], audio_b)
        same_run(results["a"][1], metrics_a)
        same_run(results["b"][1], metrics_b)
    assert t3.tfmr.config._attn_implementation == before
    assert pipeline.last_metrics is not None and pipeline.last_metrics.generation.completed


def test_streams_interleaved_in_one_thread_keep_their_audio(tiny_checkpoint, pipeline):
    """Chunk by chunk, alternating, with different attention backends on shared
    models: every forward pass of a stream runs with its own backend, and each
    stream's audio is its audio alone."""
    eager = make_pipeline(tiny_checkpoint, engine=pipeline.engine, attention="eager", seed=5)
    t3 = pipeline.engine.t3
    before = t3.tfmr.config._attn_implementation
    wanted = {"a": pipeline.attention.attn_implementation, "b": eager.attention.attn_implementation}
    assert len(set(wanted.values()) | {before}) == 3
    audio_a, metrics_a = alone(pipeline, TEXT_A)
    audio_b, metrics_b = alone(eager, TEXT_B)
    streams = {"a": pipeline.stream(TEXT_A), "b": eager.stream(TEXT_B)}
    parts: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    live = dict(streams)
    used: dict[str, set[str]] = {"a": set(), "b": set()}
    current = ["a"]
    hook = t3.tfmr.register_forward_pre_hook(
        lambda module, args: used[current[0]].add(module.config._attn_implementation))
    try:
        while live:
            for name in list(live):
                current[0] = name
                try:
                    parts[name].append(next(live[name]).audio)
                except StopIteration:
                    del live[name]
    finally:
        hook.remove()
    assert used == {name: {impl} for name, impl in wanted.items()}, used
    assert t3.tfmr.config._attn_implementation == before
    np.testing.assert_array_equal(np.concatenate(parts["a"]), audio_a)
    np.testing.assert_array_equal(np.concatenate(parts["b"]), audio_b)
    same_run(streams["a"].metrics, metrics_a)
    same_run(streams["b"].metrics, metrics_b)


def test_two_configs_on_one_engine_in_two_threads(tiny_checkpoint, pipeline):
    """Different attention backends on shared models: each piece of work sets its
    own implementation and puts the previous one back."""
    eager = make_pipeline(tiny_checkpoint, engine=pipeline.engine, attention="eager", seed=5)
    assert eager.engine.t3 is pipeline.engine.t3
    t3 = pipeline.engine.t3
    before = t3.tfmr.config._attn_implementation
    assert_threads_match_alone({"a": (pipeline, TEXT_A), "b": (eager, TEXT_B)})
    assert t3.tfmr.config._attn_implementation == before


def test_batched_lookahead_streams_in_two_threads(tiny_checkpoint, pipeline):
    batched = make_pipeline(tiny_checkpoint, engine=pipeline.engine, batch_size=2, lookahead=True)
    assert batched.batching(batched.planner.plan(TEXT_A)) == 2
    assert_threads_match_alone({"a": (batched, TEXT_A), "b": (batched, TEXT_B)})


def test_an_abandoned_stream_blocks_no_other(pipeline):
    """A stream left unfinished (neither exhausted nor closed) holds nothing: another
    thread's stream runs to its end; the abandoned one can still be finished later,
    with its own audio."""
    audio_a, _ = alone(pipeline, TEXT_A)
    audio_b, _ = alone(pipeline, TEXT_B)
    abandoned = pipeline.stream(TEXT_A)
    first = next(abandoned).audio
    results = run_in_threads({"b": (pipeline, TEXT_B)})
    np.testing.assert_array_equal(results["b"][0], audio_b)
    rest = [c.audio for c in abandoned]
    np.testing.assert_array_equal(np.concatenate([first, *rest]), audio_a)
    assert abandoned.metrics.generation.completed


def test_a_dropped_stream_releases_everything(pipeline):
    """A stream dropped mid-run (garbage-collected, never closed) ends its run (not
    completed) and leaves the model as it was."""
    import gc

    t3 = pipeline.engine.t3
    before = t3.tfmr.config._attn_implementation
    stream = pipeline.stream(TEXT_A)
    next(stream)
    del stream
    gc.collect()
    assert pipeline.last_metrics.generation.completed is False
    assert t3.tfmr.config._attn_implementation == before
    results = run_in_threads({"b": (pipeline, TEXT_B)})
    assert results["b"][1].generation.completed


def test_metrics_are_per_stream_and_set_at_the_end(pipeline):
    stream = pipeline.stream(TEXT_B)
    first = next(stream)
    assert stream.metrics is None  # nothing half-built is visible while it runs
    other = pipeline.synthesize(TEXT_A)
    assert pipeline.last_metrics is other.metrics
    rest = list(stream)
    assert stream.metrics is pipeline.last_metrics is not other.metrics
    assert stream.metrics.generation.chunks == 1 + len(rest) and first.event.chunk_index == 0
    assert other.metrics.to_dict()["per_segment"][0]["index"] == 0
    assert other.metrics.generation.audio_seconds == pytest.approx(len(other.audio) / 24000)
