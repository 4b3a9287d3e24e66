"""Eight concurrent streams on the real model (tiny random checkpoint) share one T3
batch, and each stream's audio is exactly its audio alone (the sine engine's version,
with more cases, is tests/test_shared_streams.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from seqopt_core import Pipeline
from seqopt_core.scheduler import SchedulerSnapshot

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Mixed lengths: one to three segments each (the planner targets 12 text tokens).
TEXTS = ["Hello there, this is the first stream speaking now.",
         "A short one. Then a second sentence follows it here.",
         "Three segments: one sentence, then another sentence, then a third one to end.",
         "Only a single sentence here, of a middling length overall."]


def make_pipeline(checkpoint, engine=None) -> Pipeline:
    """The default rtx4090 profile, batching up to eight rows, in benchmark length mode
    (random weights never stop by themselves)."""
    return Pipeline.from_config(profile="rtx4090", engine=engine, overrides={
        "engine": {"options": {"checkpoint": str(checkpoint), "watermark": False,
                               "benchmark_tokens_per_text_token": 0.5}},
        "synthesis": {"device": "cpu", "batch_size": 8},
        "planner": {"target_tokens": 12, "max_tokens": 20}})


@pytest.fixture(scope="module")
def shared(tiny_checkpoint) -> Pipeline:
    return make_pipeline(tiny_checkpoint)


def test_eight_concurrent_streams_on_the_model_share_the_batch_and_equal_their_audio_alone(
        shared, tiny_checkpoint):
    assert torch.get_num_threads() == 1
    jobs = [(TEXTS[i % len(TEXTS)], 40 + i) for i in range(8)]
    alone = make_pipeline(tiny_checkpoint, engine=shared.engine)  # its own scheduler, nothing shared
    expected = [np.concatenate([c.audio for c in alone.stream(text, seed=seed)]) for text, seed in jobs]

    out: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    widest, done = [0], threading.Event()
    barrier = threading.Barrier(len(jobs))

    def run(i: int, text: str, seed: int) -> None:
        try:
            stream = shared.stream(text, seed=seed)
            barrier.wait()
            out[i] = np.concatenate([c.audio for c in stream])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def watch() -> None:
        while not done.wait(0.001):
            widest[0] = max(widest[0], shared.scheduler.snapshot().rows)

    watcher = threading.Thread(target=watch)
    threads = [threading.Thread(target=run, args=(i, t, s)) for i, (t, s) in enumerate(jobs)]
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    done.set()
    watcher.join()
    assert not errors, errors
    for i in range(len(jobs)):
        assert np.array_equal(out[i], expected[i]), f"stream {i} differs from its audio alone"
    assert widest[0] >= 4, f"the shared batch never held more than {widest[0]} rows"
    assert shared.scheduler.snapshot() == SchedulerSnapshot(0, 0, 0)
