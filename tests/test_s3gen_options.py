"""The opt-in S3Gen approximations (fewer flow-matching steps, a shorter voice prompt):
off by default, exactly the default path when set to upstream's values, and doing
exactly what they say when on (tiny random checkpoint: noise, so only lengths,
equalities and the reference handed to S3Gen are checked, never quality)."""

from __future__ import annotations

import numpy as np
import pytest

from seqopt_core import ConfigError, Pipeline, load_config
from seqopt_plugins.chatterbox import s3gen_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "Hello there. This is a test of the engine, with a few more words."


@pytest.fixture(scope="module")
def make(tiny_checkpoint):
    def build(**options):
        # the report's fixed-size chunks: deadline chunks follow each option's own measured
        # costs (a faster S3Gen is cut differently), and these tests compare chunk by chunk
        return Pipeline.from_config(overrides={
            "engine": {"options": {"checkpoint": str(tiny_checkpoint), "benchmark_tokens_per_text_token": 0.7,
                                   "watermark": False, **options}},
            "chunk_policy": {"name": "adaptive", "options": {"base_chunk_size": 25, "first_chunk_size": 10}},
            "synthesis": {"seed": 3}})

    return build


@pytest.fixture
def exact(make, one_torch_thread):
    """The exact path's chunks, made under the same torch threads as the test's own runs
    (a module-scoped fixture would run before one_torch_thread, and thread counts change
    float sums)."""
    pipe = make()
    return pipe, [c.audio for c in pipe.stream(TEXT)]


def _chunks(pipe):
    return [c.audio for c in pipe.stream(TEXT)]


def test_upstreams_values_are_the_exact_path(make, exact):
    _, reference = exact
    prompt_seconds = make().engine.conds.gen["prompt_token"].size(1) / 25
    for options in ({"s3gen_cfm_steps": 10}, {"s3gen_prompt_seconds": prompt_seconds}):
        assert all(np.array_equal(a, b) for a, b in zip(_chunks(make(**options)), reference, strict=True))


def test_fewer_flow_matching_steps_change_the_audio_not_its_length(make, exact):
    _, reference = exact
    fast = _chunks(make(s3gen_cfm_steps=4))
    assert [len(a) for a in fast] == [len(a) for a in reference]
    assert not np.array_equal(np.concatenate(fast), np.concatenate(reference))


def test_a_short_prompt_hands_s3gen_the_last_seconds_of_the_voice(make, exact):
    pipe, reference = exact
    full = pipe.engine.conds.gen
    cut = pipe.engine.s3gen_reference(0.8)  # 20 speech tokens, 40 mel frames
    assert cut["prompt_token"].tolist() == full["prompt_token"][:, -20:].tolist()
    assert cut["prompt_feat"].shape[1] == 40 and np.array_equal(cut["prompt_feat"], full["prompt_feat"][:, -40:])
    assert int(cut["prompt_token_len"][0]) == 20 and cut["embedding"] is full["embedding"]
    assert pipe.engine.s3gen_reference(None) is None and pipe.engine.s3gen_reference(10.0) is None
    short = _chunks(make(s3gen_prompt_seconds=0.8))
    assert [len(a) for a in short] == [len(a) for a in reference]
    assert not np.array_equal(np.concatenate(short), np.concatenate(reference))


def test_short_prompt_for_the_first_chunk_only(make, exact, monkeypatch):
    _, reference = exact
    pipe = make(s3gen_prompt_seconds=0.8, s3gen_short_prompt="first_chunk")
    prompts = []
    real = s3gen_batch.flow_mels

    def spy(s3gen, rows, noises, steps):
        if s3gen is pipe.engine.s3gen:
            prompts.extend(row.reference.prompt_tokens for row in rows)
        return real(s3gen, rows, noises, steps)

    monkeypatch.setattr(s3gen_batch, "flow_mels", spy)
    plan = pipe.planner.plan(TEXT)
    first_only = [c.audio for c in pipe.stream(TEXT, plan)]
    every = _chunks(make(s3gen_prompt_seconds=0.8))
    # each segment's first S3Gen call reads 20 prompt tokens, every later call the whole voice (50)
    assert prompts.count(20) == len(plan.segments) and set(prompts) == {20, 50}
    assert np.array_equal(first_only[0], every[0])  # the first chunk is the short-prompt one
    assert [len(a) for a in first_only] == [len(a) for a in reference]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("s3gen_cfm_steps", 0, "a whole number from 1 to 50"),
    ("s3gen_prompt_seconds", 0.0, "seconds"),
    ("s3gen_short_prompt", "sometimes", "every_chunk"),
])
def test_bad_values_are_refused_naming_the_key(key, value, says):
    with pytest.raises(ConfigError, match=rf"engine\.options\.{key}[\s\S]*{says}"):
        load_config(overrides={"engine": {"options": {key: value}}})


def test_no_profile_turns_an_approximation_on():
    for profile in ("baseline", "rtx4090"):
        options = load_config(profile=profile).config.engine.options
        assert not [k for k in options if k.startswith("s3gen_")], profile
