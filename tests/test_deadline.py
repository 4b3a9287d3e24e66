"""The ``deadline`` chunk policy, the modeled playback it plans with, and the cost model
behind it: pure parts first, then the scheduler and pipeline on the sine engine (no
torch), then where the cost model comes from (a file, the per-device cache, a
measurement)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import sine_engine
from seqopt_core import ConfigError, Pipeline, PluginHost
from seqopt_core.costs import (
    TOKENS_PER_SECOND,
    CostModel,
    CostModelError,
    cost_cache_path,
    cost_model_from_chunks,
    load_cost_model,
)
from seqopt_core.playback import PlaybackClock
from seqopt_plugins.policies.deadline import DeadlineChunkOptions, DeadlineChunkPolicy

#: An H100-like device (launch-bound S3Gen, fast T3) and a 2-core CPU at full size.
FAST = CostModel(0.35, 0.002, 0.013, 0.02)
SLOW = CostModel(9.8, 0.054, 0.115, 0.5)


def simulate(policy, costs, segments, window=25, pause=0.0):
    """Chunk sizes the policy picks for segments of the given speech tokens, played on a
    modeled clock exactly as the scheduler does; returns (sizes per segment, clock)."""
    clock = PlaybackClock(costs)
    out = []
    for index, tokens in enumerate(segments):
        if index:
            clock.pause(pause)
        left, chunk, decoded, sizes = tokens, 0, 0, []
        while left > 0:
            reread = min(window, decoded)
            n = min(left, policy.plan_chunk(clock.state(40, index, chunk, context_tokens=reread,
                                                        context_window=window)))
            clock.chunk(n, reread, segment_start=chunk == 0)
            sizes.append(n)
            left, decoded, chunk = left - n, decoded + n, chunk + 1
        out.append(sizes)
    return out, clock


# -- the pure parts ------------------------------------------------------------------------------


def test_a_fast_device_never_stalls_and_chunks_grow():
    policy = DeadlineChunkPolicy()
    sizes, clock = simulate(policy, FAST, [300, 300, 300])
    assert clock.stalled_seconds == 0
    first = sizes[0][:-1]  # the last chunk is what is left of the segment
    assert len(first) >= 3 and all(a <= b for a, b in zip(first, first[1:]))
    # fewer vocoder calls than chatterbox-streaming's fixed 25-token chunks
    assert sum(map(len, sizes)) < sum(math.ceil(n / 25) for n in (300, 300, 300)) / 2


def test_the_first_chunk_is_the_smallest_that_never_stalls():
    """n* is tight: one token less and the modeled listener waits."""
    policy = DeadlineChunkPolicy()
    n_star = policy.plan_chunk(PlaybackClock(FAST).state(40, 0, 0, context_tokens=0, context_window=25))
    expected = math.ceil(FAST.decode_seconds(25) / (0.8 / TOKENS_PER_SECOND - FAST.marginal_seconds))
    assert n_star == expected
    _, clock = simulate(DeadlineChunkPolicy(DeadlineChunkOptions(first_chunk_tokens=n_star)), FAST, [400])
    assert clock.stalled_seconds == 0
    # a first chunk well below n* leaves too little audio to hide the next call behind
    _, clock = simulate(DeadlineChunkPolicy(DeadlineChunkOptions(first_chunk_tokens=n_star // 3,
                                                                 safety=0.8)), FAST, [400])
    assert clock.stalled_seconds > 0


def test_a_device_that_cannot_keep_real_time_makes_the_fewest_calls():
    sizes, clock = simulate(DeadlineChunkPolicy(), SLOW, [500, 120])
    assert not SLOW.keeps_real_time()
    assert sizes == [[8, 200, 200, 92], [120]]  # first audio soonest, then max_chunk_tokens
    assert clock.stalled_seconds > 0  # no schedule avoids it on this device


def test_throughput_makes_every_chunk_as_large_as_allowed():
    sizes, _ = simulate(DeadlineChunkPolicy(DeadlineChunkOptions(prefer="throughput", max_chunk_tokens=90)),
                        FAST, [200])
    assert sizes == [[90, 90, 20]]


def test_options_are_checked():
    with pytest.raises(ValueError, match="min_chunk_tokens"):
        DeadlineChunkOptions(min_chunk_tokens=50, max_chunk_tokens=20)
    with pytest.raises(ValueError):
        DeadlineChunkOptions(safety=0)


def test_the_clock_counts_stalls_pauses_and_the_buffer():
    clock = PlaybackClock(CostModel(1.0, 0.0, 0.0))
    assert not clock.playing and clock.buffered_seconds == 0
    clock.chunk(50, 0, segment_start=True)  # ready at 1 s, plays 2 s
    clock.pause(0.5)
    assert clock.buffered_seconds == pytest.approx(2.5)
    clock.chunk(25, 0, segment_start=False)  # ready at 2 s: 1.5 s still buffered
    assert clock.stalled_seconds == 0 and clock.buffered_seconds == pytest.approx(2.5)
    for _ in range(4):
        clock.chunk(10, 0, segment_start=False)  # 1 s to make 0.4 s: the buffer drains
    assert clock.stalled_seconds == pytest.approx(0.3)


def test_a_cost_model_refuses_impossible_figures():
    with pytest.raises(CostModelError, match="t3_step_seconds"):
        CostModel(1.0, 0.1, -0.5)
    with pytest.raises(CostModelError, match="decode_fixed_seconds"):
        CostModel(float("nan"), 0.1, 0.1)


def test_fitting_the_model_from_measured_chunks():
    # (new, context, t3 seconds, decode seconds): the first small call was slow (set-up)
    chunks = [(8, 0, 0.5 + 8 * 0.1, 3.0), (24, 0, 2.4, 2.0 + 24 * 0.05), (8, 0, 0.8, 2.0 + 8 * 0.05)]
    m = cost_model_from_chunks(chunks, source="test")
    assert m.t3_step_seconds == pytest.approx(0.1)
    assert m.t3_prefill_seconds == pytest.approx(0.5)
    assert (m.decode_fixed_seconds, m.decode_per_token_seconds) == (pytest.approx(2.0), pytest.approx(0.05))
    with pytest.raises(CostModelError):
        cost_model_from_chunks([], source="test")


def test_cost_files_load_with_errors_that_say_what_to_do(tmp_path):
    good = tmp_path / "costs.json"
    good.write_text(json.dumps(FAST.to_dict()))
    assert load_cost_model(good) == CostModel(**{**FAST.to_dict(), "source": f"{good} (given)"})
    # what `seqopt costs -o` writes loads too
    measured = tmp_path / "measured.json"
    measured.write_text(json.dumps({"vocoder": {"fixed_seconds": 9.8, "per_token_seconds": 0.05, "samples": 3},
                                    "t3_step_seconds": 0.1}))
    assert load_cost_model(measured).decode_fixed_seconds == 9.8
    with pytest.raises(CostModelError, match="does not exist; write one with `seqopt costs -o"):
        load_cost_model(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CostModelError, match="cannot read cost file"):
        load_cost_model(bad)
    bad.write_text(json.dumps({"decode_fixed_seconds": 1.0}))
    with pytest.raises(CostModelError, match="missing decode_per_token_seconds, t3_step_seconds"):
        load_cost_model(bad)


# -- in the scheduler and the pipeline (sine engine) --------------------------------------------


@pytest.fixture(scope="module")
def host() -> PluginHost:
    host = PluginHost.discover()
    host.register(sine_engine, name="sine_engine")
    return host


TEXT = ("The first one is short. Then a second sentence comes along here, and it goes on a while.\n\n"
        "A third follows it, after a paragraph. Number four is next; five is almost the end. "
        "Six closes the text, and the text is over now.")


def deadline_pipeline(host, costs_file, **synthesis):
    return Pipeline.from_config(host=host, overrides={
        "engine": {"name": "sine", "options": {"tokens_per_text_char": 1.5}},
        "estimator": {"name": "ratio"}, "planner": {"target_tokens": 24, "max_tokens": 40},
        "chunk_policy": {"name": "deadline"},
        "synthesis": {"seed": 11, "costs": str(costs_file), **synthesis}})


@pytest.fixture
def fast_costs(tmp_path):
    path = tmp_path / "fast.json"
    path.write_text(json.dumps(FAST.to_dict()))
    return path


def test_the_pipeline_plans_with_the_given_cost_file(host, fast_costs):
    pipe = deadline_pipeline(host, fast_costs)
    assert pipe.costs.source == f"{fast_costs} (given)"
    plan = pipe.planner.plan(TEXT)
    lengths = [(s, pipe.engine.speech_token_limit(s)) for s in plan.segments]
    planned = pipe.scheduler.planned_stream(lengths)
    events = [c.event for c in pipe.stream(TEXT, plan)]
    made = [[e.speech_tokens for e in events if e.segment_index == s.index and e.speech_tokens]
            for s in plan.segments]
    assert made == [[c.new_tokens for c in p] for p in planned]
    first = DeadlineChunkPolicy().plan_chunk(PlaybackClock(FAST).state(
        plan.segments[0].tokens, 0, 0, context_tokens=0,
        context_window=pipe.context_policy.context_window(plan.segments[0].tokens, 0, 0)))
    assert made[0][0] == min(first, lengths[0][1])
    assert len(made[0]) < math.ceil(lengths[0][1] / 10)  # fewer calls than chunks of 10 would make


def test_batched_and_sequential_runs_cut_the_same_chunks(host, fast_costs):
    """The buffer is modeled, not timed: segments generated ahead chunk as streamed ones do."""
    one = deadline_pipeline(host, fast_costs, batch_size=1).stream(TEXT)
    audio_one = [c.audio for c in one]
    batched = deadline_pipeline(host, fast_costs, batch_size=4).stream(TEXT)
    audio_batched = [c.audio for c in batched]
    assert [e.speech_tokens for e in one.metrics.chunks] == [e.speech_tokens for e in batched.metrics.chunks]
    assert all(np.array_equal(a, b) for a, b in zip(audio_one, audio_batched, strict=True))


def test_a_bad_cost_file_is_a_config_error(host, tmp_path):
    pipe = deadline_pipeline(host, tmp_path / "nope.json")
    with pytest.raises(ConfigError, match=r"synthesis\.costs: cost file .*nope\.json' does not exist"):
        list(pipe.stream(TEXT))


def test_auto_measures_once_per_device_and_caches_it(host, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQOPT_CACHE_DIR", str(tmp_path / "cache"))
    pipe = deadline_pipeline(host, "auto")
    said = []
    pipe.on_status = said.append
    model = pipe.costs
    assert model.source.startswith("measured") and said and "once per device" in said[0]
    path = cost_cache_path(pipe.cost_key())
    assert path.is_file() and json.loads(path.read_text())["key"]["name"] == "sine"
    again = deadline_pipeline(host, "auto")
    again.on_status = said.append
    assert again.costs.source.startswith(f"{path} (measured") and len(said) == 1  # read, not measured
    assert again.costs.to_dict() | {"source": ""} == model.to_dict() | {"source": ""}
    path.write_text("{broken")
    with pytest.warns(RuntimeWarning, match="ignoring the cached cost model"):
        third = deadline_pipeline(host, "auto").costs
    assert third.source.startswith("measured")


def test_other_policies_never_measure(host, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQOPT_CACHE_DIR", str(tmp_path / "cache"))
    pipe = Pipeline.from_config(host=host, overrides={
        "engine": {"name": "sine"}, "estimator": {"name": "ratio"},
        "chunk_policy": {"name": "fixed"}, "synthesis": {"seed": 1}})
    list(pipe.stream(TEXT))
    assert not (tmp_path / "cache").exists()


def test_measuring_on_a_busy_machine_says_so(host, monkeypatch, tmp_path):
    import seqopt_core.pipeline as pipeline_module

    monkeypatch.setenv("SEQOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(pipeline_module, "_busy_machine", lambda: "load average 5.0 on 2 CPUs")
    pipe = deadline_pipeline(host, "auto")
    with pytest.warns(RuntimeWarning, match=r"busy .*load average 5\.0 on 2 CPUs.*`seqopt costs --save`"):
        pipe.costs  # noqa: B018
    assert cost_cache_path(pipe.cost_key()).is_file()  # kept all the same: it is this machine's best guess
