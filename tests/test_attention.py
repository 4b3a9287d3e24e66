"""Attention backends: SDPA speed without giving up the alignment guard.

On the tiny random checkpoint (fp32): the aligned heads' weights from
``sdpa_aligned`` equal eager attention's; hidden states and sampled tokens agree
across backends; the guard makes upstream 0.1.7's decisions step by step; and
switching backends leaves the model as loaded.
"""

from __future__ import annotations

import copy
import random
import types

import pytest
import torch

from seqopt_plugins.chatterbox import attention_kernels as ak
from seqopt_plugins.chatterbox.alignment import AlignmentGuard, LengthGuard
from seqopt_plugins.chatterbox.checkpoint import load_checkpoint
from seqopt_plugins.chatterbox.engine import attention_implementation
from seqopt_plugins.chatterbox.t3_stream import (
    AlignmentOptions,
    LengthLimits,
    SamplingOptions,
    SpeechTokenLoop,
    text_token_tensor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BACKENDS = (ak.EAGER_MAPS, ak.SDPA_ALIGNED, "sdpa")


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    ak.register()  # seqopt's recording kernels, used here without a pipeline
    return load_checkpoint(tiny_checkpoint)


def _hooks(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _run(t3, impl, prefill, steps, heads=ak.DEFAULT_ALIGNED_HEADS):
    """Prefill then decode ``steps`` through the backbone; maps recorded per step."""
    tap = ak.AttentionTap(heads)
    maps, hidden = [], []
    with attention_implementation(t3, impl), torch.inference_mode():
        past = None
        for x in [prefill, *steps]:
            with ak.tapping(tap):
                out = t3.tfmr(inputs_embeds=x, past_key_values=past, use_cache=True)
            past = out.past_key_values
            hidden.append(out.last_hidden_state)
            maps.append({k: v.clone() for k, v in tap.latest.items()})
    return maps, hidden


@pytest.fixture(scope="module")
def runs(model):
    torch.manual_seed(0)
    t3 = model.t3
    prefill = torch.randn(2, 60, t3.dim) * 0.5
    steps = [torch.randn(2, 1, t3.dim) * 0.5 for _ in range(6)]
    return {impl: _run(t3, impl, prefill, steps) for impl in BACKENDS}


def test_aligned_weights_equal_eager_weights_at_every_step(runs):
    eager_maps, _ = runs[ak.EAGER_MAPS]
    aligned_maps, _ = runs[ak.SDPA_ALIGNED]
    assert len(eager_maps) == len(aligned_maps) == 7
    for step, (e, a) in enumerate(zip(eager_maps, aligned_maps)):
        assert set(e) == set(a) == set(ak.DEFAULT_ALIGNED_HEADS)
        for head in e:
            expected_rows = 60 if step == 0 else 1
            assert e[head].shape == a[head].shape == (expected_rows, 60 + step)
            torch.testing.assert_close(a[head], e[head], atol=1e-5, rtol=0)


def test_aligned_weights_pick_rows_and_heads_by_slicing_or_gather_alike():
    """Evenly spaced rows and heads become slices (views, no per-step index copies on a
    GPU); anything else stays a list; both pick the same weights."""
    assert ak._selector([3]) == slice(3, 4)
    assert ak._selector([0, 2, 4]) == slice(0, 5, 2)
    assert ak._selector([2, 0]) == [2, 0] and ak._selector([1, 2, 4]) == [1, 2, 4]
    assert ak._selector([1, 1]) == [1, 1]
    g = torch.Generator().manual_seed(0)
    query, key = torch.randn(6, 4, 3, 8, generator=g), torch.randn(6, 4, 9, 8, generator=g)
    mask = torch.zeros(6, 1, 3, 9)
    mask[1, ..., :2] = float("-inf")
    module = types.SimpleNamespace(num_key_value_groups=1)
    for rows, heads in (((0, 2, 4), (1,)), ((4, 1), (3, 0)), ((1, 3, 5), (0, 2))):
        got = ak.aligned_weights(module, query, key, mask, 0.3, heads, rows=rows)
        q = query[list(rows)][:, list(heads)]
        k = key[list(rows)][:, list(heads)]
        want = torch.softmax(q @ k.transpose(-1, -2) * 0.3 + mask[list(rows)], dim=-1)
        torch.testing.assert_close(got, want)


def test_plain_sdpa_records_nothing(runs):
    maps, _ = runs["sdpa"]
    assert all(m == {} for m in maps)


def test_hidden_states_match_eager(runs):
    _, eager = runs[ak.EAGER_MAPS]
    for impl in (ak.SDPA_ALIGNED, "sdpa"):
        for e, h in zip(eager, runs[impl][1]):
            torch.testing.assert_close(h, e, atol=1e-4, rtol=1e-4)


def _tokens(model, impl, alignment=None, n=30, seed=7):
    t3 = model.t3
    text = text_token_tensor(model.tokenizer, "Hello there, how are you doing today?", cfg=True,
                             device=t3.device, start_token=t3.hp.start_text_token,
                             stop_token=t3.hp.stop_text_token)
    loop = SpeechTokenLoop(t3)
    gen = torch.Generator().manual_seed(seed)
    with attention_implementation(t3, impl):
        result = loop.generate(copy.deepcopy(model.conds.t3), text, sampling=SamplingOptions(),
                               limits=LengthLimits(n), generator=gen, alignment=alignment)
    return list(result.tokens), result.alignment


def test_sampled_tokens_match_across_backends(model):
    reference, _ = _tokens(model, ak.EAGER_MAPS)
    for impl in (ak.SDPA_ALIGNED, "sdpa"):
        assert _tokens(model, impl)[0] == reference


def test_guard_decisions_match_between_eager_and_sdpa_aligned(model):
    opts = AlignmentOptions()
    eager_tokens, eager_guard = _tokens(model, ak.EAGER_MAPS, opts)
    aligned_tokens, aligned_guard = _tokens(model, ak.SDPA_ALIGNED, opts)
    assert aligned_tokens == eager_tokens
    assert aligned_guard.decisions == eager_guard.decisions
    assert len(eager_guard.decisions) >= 1


def test_guard_needs_a_recording_backend(model):
    with pytest.raises(RuntimeError, match="no attention was recorded"):
        _tokens(model, "sdpa", AlignmentOptions())


def test_aligned_heads_are_checked(model):
    with pytest.raises(ValueError, match=r"\(40, 1\)"):
        _tokens(model, ak.SDPA_ALIGNED, AlignmentOptions(heads=((40, 1),)))


def test_switching_backends_twenty_times_leaves_the_model_as_loaded(model):
    t3 = model.t3
    loaded_impl = t3.tfmr.config._attn_implementation
    hooks = _hooks(t3)
    reference, _ = _tokens(model, "sdpa", n=12)
    for i in range(20):
        impl = BACKENDS[i % len(BACKENDS)]
        alignment = AlignmentOptions() if impl != "sdpa" else None
        tokens, _ = _tokens(model, impl, alignment, n=12)
        assert t3.tfmr.config._attn_implementation == loaded_impl
        assert _hooks(t3) == hooks
        if alignment is None:
            assert tokens == reference
    assert _tokens(model, "sdpa", n=12)[0] == reference


# --- the guard against upstream's analyzer, driven by the same attention stream ---------


def _upstream_analyzer(text_slice, stop):
    from chatterbox.models.t3.inference.alignment_stream_analyzer import AlignmentStreamAnalyzer

    layers = [types.SimpleNamespace(self_attn=torch.nn.Identity()) for _ in range(16)]
    tfmr = types.SimpleNamespace(layers=layers, config=types.SimpleNamespace(
        output_attentions=False, _attn_implementation="eager"))
    return AlignmentStreamAnalyzer(tfmr, None, text_tokens_slice=text_slice, eos_idx=stop)


def _stream(kind: str, rng: random.Random, cond: int, text: int, frames: int):
    """Synthetic aligned-head maps: the first is the prefill map, then one row per step.

    ``kind`` shapes the path of attention over the text: a random walk that may
    stall ("walk"), a steady walk that then lingers on the last tokens ("tail"),
    a walk that jumps back to earlier text once finished ("repeat"), or no early
    activation on the first tokens ("false_start").
    """
    t0 = cond + text + 2
    maps = [torch.rand(t0, t0) * 0.05]
    if kind != "false_start":
        maps[0][:, cond:cond + 4] += 0.6
    pos = 0
    for i in range(frames):
        row = torch.rand(1, t0 + 1 + i) * 0.02
        if kind == "walk":
            pos = min(text - 1, pos + rng.choice([0, 1, 1]))
        elif kind == "tail":
            pos = min(text - 1, pos + 1)
        elif kind == "repeat":
            pos = min(text - 1, i) if i < text else rng.randrange(0, text // 2)
        elif kind == "false_start":
            pos = min(text - 1, max(0, i - 6))
            row[0, cond + pos] = 0.3 if i < 6 else 0.9
            maps.append(row)
            continue
        row[0, cond + pos] = 0.9
        maps.append(row)
    return maps


SCENARIOS = {  # kind -> the decision it must produce at least once
    "walk": "suppressed_stop", "tail": "long_tail", "repeat": "alignment_repetition",
    "false_start": "false_start", "tokens": "token_repetition",
}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
@pytest.mark.parametrize("seed", range(3))
def test_guard_decisions_equal_upstream_analyzer(kind, seed):
    rng = random.Random(seed)
    cond, text, frames, stop, vocab = 34, 20, 45, 6562, 64
    maps = _stream("walk" if kind == "tokens" else kind, rng, cond, text, frames)
    upstream = _upstream_analyzer((cond, cond + text), stop)
    ours = AlignmentGuard((cond, cond + text), stop)
    if kind == "tokens":
        tokens = [6561] + [rng.choice([5, 5, 6]) for _ in range(frames)]
    else:  # all different: forced stops come from attention alone
        tokens = [6561] + list(range(100, 100 + frames))
    for step, attention in enumerate(maps[: frames]):
        logits = torch.randn(1, vocab + stop)
        # upstream reads three heads and averages them; give it three copies
        upstream.last_aligned_attns = [attention.clone() for _ in range(3)]
        expected = upstream.step(logits.clone(), next_token=tokens[step])
        got = ours.step(attention.clone(), logits.clone(), tokens[step])
        torch.testing.assert_close(got, expected, atol=0, rtol=0)
        assert ours.started == upstream.started and ours.complete == upstream.complete
        assert ours.text_position == int(upstream.text_position)
        assert ours.completed_at == upstream.completed_at
    assert any(getattr(d, SCENARIOS[kind]) for d in ours.decisions), kind


def test_repetition_run_of_three_follows_upstreams_comment():
    guard = AlignmentGuard((0, 4), 99, repetition_run=3)
    att = torch.zeros(6, 6)
    att[:, 0] = 1
    logits = torch.zeros(1, 100)
    guard.step(att, logits.clone(), 6561)
    guard.step(torch.ones(1, 7) / 7, logits.clone(), 5)
    out = guard.step(torch.ones(1, 8) / 8, logits.clone(), 5)  # two equal: not yet
    assert not guard.decisions[-1].token_repetition
    out = guard.step(torch.ones(1, 9) / 9, logits.clone(), 5)  # three equal: force stop
    assert guard.decisions[-1].token_repetition and out[0, 99] > 0 and out[0, :99].max() < 0


def test_length_guard():
    guard = LengthGuard(text_tokens=10, stop_token=3, min_ratio=1.0, max_ratio=2.0)
    logits = torch.zeros(1, 5)
    assert guard.step(5, logits.clone())[0, 3] < 0  # too short: stop suppressed
    assert guard.step(12, logits.clone())[0, 3] == 0  # in range: untouched
    forced = guard.step(20, logits.clone())  # too long: stop forced
    assert forced[0, 3] > 0 and forced[0, :3].max() < 0


def test_guard_handles_texts_of_five_tokens_or_fewer():
    """Upstream's analyzer raises on these once the text is complete; the guard does not."""
    cond, text, stop = 10, 4, 6562
    guard = AlignmentGuard((cond, cond + text), stop)
    t0 = cond + text + 2
    first = torch.zeros(t0, t0)
    first[:, cond] = 1.0
    logits = guard.step(first, torch.zeros(1, 6600), 6561)
    for i in range(8):
        row = torch.zeros(1, t0 + 1 + i)
        row[0, cond + min(i, text - 1)] = 1.0
        logits = guard.step(row, torch.zeros(1, 6600), 100 + i)
    assert guard.complete and not any(d.alignment_repetition for d in guard.decisions)
