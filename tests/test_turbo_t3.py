"""Chatterbox Turbo's pieces on a tiny random Turbo checkpoint (noise, not speech).

* :class:`TurboT3Batch` alone samples exactly upstream's ``T3.inference_turbo`` tokens
  (same seed, both attention implementations), stop-token quirks included;
* a segment's tokens do not depend on the segments that share its batch (left padding,
  rows joining at different steps, rows stopping at different steps, rows dropped);
* :class:`ChunkVocoder` on Turbo's meanflow S3Gen: a whole segment in one call equals
  upstream's ``s3gen.inference(tokens + 3 x S3GEN_SIL, n_cfm_timesteps=2)`` under the
  same seed; chunked decoding gives the right length, finite audio, and batched rows
  equal rows alone.

A stop-prone copy of the model (the stop token's output bias raised) makes rows stop
early, so that the stop-token handling is exercised: random weights almost never
sample the stop token otherwise.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from seqopt_plugins.chatterbox.checkpoint import load_checkpoint, write_random_checkpoint
from seqopt_plugins.chatterbox.engine import attention_implementation
from seqopt_plugins.chatterbox.s3gen_batch import (
    RenderRow,
    default_cfm_steps,
    native_cpu_kernels,
    prepared_reference,
    render_rows,
)
from seqopt_plugins.chatterbox.t3_stream import LengthLimits
from seqopt_plugins.chatterbox.turbo_t3 import (
    TurboBatchItem,
    TurboSampling,
    TurboT3Batch,
    generate_turbo,
    turbo_text_tokens,
)
from seqopt_plugins.chatterbox.vocoder import (
    SAMPLES_PER_TOKEN,
    TURBO_END_TOKENS,
    ChunkVocoder,
    decodable,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHORT = "Hi."
MEDIUM = "A medium sentence sits in between the two."
LONG = ("This is a much longer sentence, with a good number of words and clauses, so that its "
        "prefill is many times the length of the short one.")
STOP = 6562


@pytest.fixture(scope="module")
def turbo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("turbo-tiny")
    write_random_checkpoint(folder, model="turbo", scale="tiny", seed=0)
    return load_checkpoint(folder, model="turbo")


@pytest.fixture(scope="module")
def stop_prone(turbo):
    """Turbo's T3 with the stop token's logit raised by ``boost``: rows stop after a few
    tokens, and (seed 1, boost 8) the very first sample is the stop token."""

    def make(boost: float):
        t3 = copy.deepcopy(turbo.t3)
        with torch.no_grad():
            t3.speech_head.bias[t3.hp.stop_speech_token] += boost
        return t3

    return {boost: make(boost) for boost in (6.0, 8.0)}


def _text(turbo, text):
    return turbo_text_tokens(turbo.tokenizer, text, turbo.t3.device)


def _upstream(t3, turbo, text, max_new, seed, sampling=TurboSampling()):
    torch.manual_seed(seed)
    return t3.inference_turbo(t3_cond=copy.deepcopy(turbo.conds.t3), text_tokens=_text(turbo, text),
                              temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
                              repetition_penalty=sampling.repetition_penalty,
                              max_gen_len=max_new - 1)[0].tolist()


def _ours(t3, turbo, text, max_new, seed, sampling=TurboSampling()):
    torch.manual_seed(seed)
    return generate_turbo(t3, copy.deepcopy(turbo.conds.t3), _text(turbo, text),
                          limits=LengthLimits(max_new), sampling=sampling)


# ---------------------------------------------------------------------------------------------
# Text and sampling settings
# ---------------------------------------------------------------------------------------------


def test_text_tokens_are_what_generate_feeds(turbo):
    from chatterbox.tts_turbo import punc_norm

    ids = _text(turbo, "hello   there: how are you…")
    want = turbo.tokenizer(punc_norm("hello   there: how are you…"), return_tensors="pt").input_ids
    assert ids.dtype == torch.long and ids.shape == (1, want.size(1))
    assert torch.equal(ids, want)
    assert turbo.tokenizer.decode(ids[0]) == "Hello there, how are you,"  # "…" -> ", ", ":" -> ","; "," ends it


def test_sampling_defaults_are_generates():
    import inspect

    from chatterbox.tts_turbo import ChatterboxTurboTTS

    params = inspect.signature(ChatterboxTurboTTS.generate).parameters
    sampling = TurboSampling()
    for name in ("temperature", "top_k", "top_p", "repetition_penalty"):
        assert getattr(sampling, name) == params[name].default, name


def test_refuses_a_llama_t3(tiny_checkpoint):
    english = load_checkpoint(tiny_checkpoint)
    with pytest.raises(ValueError, match="GPT-2"):
        TurboT3Batch(english.t3)


# ---------------------------------------------------------------------------------------------
# (a) alone == upstream inference_turbo
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_alone_equals_upstream_inference_turbo(turbo, impl):
    with attention_implementation(turbo.t3, impl):
        for seed, text in ((1234, "Hello there, how are you today?"), (7, SHORT)):
            upstream = _upstream(turbo.t3, turbo, text, 40, seed)
            ours = _ours(turbo.t3, turbo, text, 40, seed)
            assert len(upstream) == 40  # random weights: no stop token in 40 samples
            assert list(ours.tokens) == upstream
            assert ours.stopped_by == "length_limit" and ours.text_tokens == _text(turbo, text).size(1)


@pytest.mark.parametrize("sampling", [
    TurboSampling(temperature=1.0, top_k=50, top_p=1.0, repetition_penalty=1.0),  # processors left out
    # few candidates and a strong penalty: the processors' order decides the tokens
    TurboSampling(temperature=0.8, top_k=4, top_p=0.9, repetition_penalty=5.0),
])
def test_other_sampling_settings_equal_upstream(turbo, sampling):
    assert list(_ours(turbo.t3, turbo, MEDIUM, 30, 3, sampling).tokens) == _upstream(
        turbo.t3, turbo, MEDIUM, 30, 3, sampling)


@pytest.mark.parametrize("boost", [6.0, 8.0])
def test_stop_token_handling_equals_upstream(turbo, stop_prone, boost):
    """Upstream returns what it sampled minus a final stop token; a stop token sampled right
    after the prefill does not end the segment (upstream checks only after decode steps)."""
    t3 = stop_prone[boost]
    stopped = first_step_stop = 0
    for seed in range(6):
        upstream = _upstream(t3, turbo, MEDIUM, 40, seed)
        ours = _ours(t3, turbo, MEDIUM, 40, seed)
        assert list(ours.tokens) == upstream, seed
        if len(upstream) < 40:
            stopped += 1
            assert ours.stopped_by == "stop_token"
        first_step_stop += upstream[:1] == [STOP]
    assert stopped >= 3
    if boost == 8.0:
        assert first_step_stop >= 1  # the quirk is exercised (seed 1)


def test_repetition_penalty_history_equals_upstream(turbo):
    """The penalty reads the start token at the first step only, then the sampled ids: with
    the start token's logit raised, penalizing it later (or not at first) changes the tokens."""
    t3 = copy.deepcopy(turbo.t3)
    with torch.no_grad():
        t3.speech_head.bias[t3.hp.start_speech_token] += 5.0
    for seed in range(3):
        upstream = _upstream(t3, turbo, MEDIUM, 30, seed)
        assert list(_ours(t3, turbo, MEDIUM, 30, seed).tokens) == upstream
    assert 6561 in upstream  # the raised start token is sampled: the penalty matters


def test_length_limits(turbo, stop_prone):
    t3 = stop_prone[8.0]
    bench = generate_turbo(t3, copy.deepcopy(turbo.conds.t3), _text(turbo, SHORT),
                           limits=LengthLimits(12, ignore_stop=True), generator=torch.Generator().manual_seed(0))
    assert len(bench.tokens) == 12 and STOP not in bench.tokens and bench.stopped_by == "benchmark_length"
    floor = generate_turbo(t3, copy.deepcopy(turbo.conds.t3), _text(turbo, SHORT),
                           limits=LengthLimits(30, min_new_tokens=5), generator=torch.Generator().manual_seed(0))
    assert len(floor.tokens) >= 5 and STOP not in floor.tokens[:5]


# ---------------------------------------------------------------------------------------------
# (b) batched == alone
# ---------------------------------------------------------------------------------------------


def _alone(t3, turbo, text, limit, seed):
    return generate_turbo(t3, copy.deepcopy(turbo.conds.t3), _text(turbo, text), limits=LengthLimits(limit),
                          generator=torch.Generator().manual_seed(seed))


def _run_batch(t3, turbo, cases, joins_at, drop_at=None):
    """Run ``cases`` (``(text, limit, seed)``) in one batch, case ``i`` joining at step
    ``joins_at[i]``; ``drop_at`` = ``(step, index)`` drops one row then. Returns each
    case's tokens (streamed), results, and the most rows that were in flight at once."""
    batch = TurboT3Batch(t3)
    keys = [object() for _ in cases]
    index = {id(k): i for i, k in enumerate(keys)}
    streamed: dict[int, list[int]] = {i: [] for i in range(len(cases))}
    results = {}
    pending = set(range(len(cases)))
    step = most = 0
    try:
        while pending:
            if drop_at is not None and step == drop_at[0]:
                batch.drop([keys[drop_at[1]]])
                pending.discard(drop_at[1])
            # a step either prefills the rows joining or decodes the rows in flight
            joining = [(keys[i], TurboBatchItem(copy.deepcopy(turbo.conds.t3), _text(turbo, text),
                                                LengthLimits(limit), torch.Generator().manual_seed(seed)))
                       for i, (text, limit, seed) in enumerate(cases) if joins_at[i] == step]
            for out in batch.step(joining):
                i = index[id(out.key)]
                if out.token is not None:
                    streamed[i].append(out.token)
                if out.finished is not None:
                    results[i] = out.finished
                    pending.discard(i)
            most = max(most, batch.rows)
            step += 1
            assert step < 500
    finally:
        batch.close()
    return streamed, results, most


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("model", ["plain", "stop_prone"])
def test_batched_rows_equal_rows_alone(turbo, stop_prone, impl, model):
    t3 = turbo.t3 if model == "plain" else stop_prone[6.0]
    cases = [(SHORT, 30, 11), (LONG, 8, 12), (MEDIUM, 24, 13), (SHORT, 18, 14)]
    # stop-prone rows end after a few tokens: they join sooner to overlap
    joins_at = [0, 0, 3, 7] if model == "plain" else [0, 0, 1, 3]
    with attention_implementation(t3, impl):
        alone = [_alone(t3, turbo, *case) for case in cases]
        streamed, results, most = _run_batch(t3, turbo, cases, joins_at)
    assert most >= 3  # rows really shared the batch
    for i, want in enumerate(alone):
        assert results[i].tokens == want.tokens, i
        assert results[i].stopped_by == want.stopped_by, i
        assert streamed[i] == list(want.tokens), i
    if model == "plain":
        assert [len(want.tokens) for want in alone] == [30, 8, 24, 18]
    else:
        assert any(want.stopped_by == "stop_token" for want in alone)


def test_dropped_row_leaves_the_others_unchanged(turbo):
    t3 = turbo.t3
    cases = [(SHORT, 20, 21), (LONG, 20, 22), (MEDIUM, 20, 23)]
    alone = [_alone(t3, turbo, *case) for case in cases]
    _streamed, results, _most = _run_batch(t3, turbo, cases, [0, 0, 2], drop_at=(5, 1))
    assert 1 not in results
    assert results[0].tokens == alone[0].tokens and results[2].tokens == alone[2].tokens


# ---------------------------------------------------------------------------------------------
# (c), (d) the meanflow S3Gen through ChunkVocoder
# ---------------------------------------------------------------------------------------------


def _speech(turbo, n=40, seed=5):
    tokens = decodable(_ours(turbo.t3, turbo, MEDIUM, n, seed).tokens)
    assert len(tokens) >= n - 2
    return tokens


def test_meanflow_defaults_to_two_steps(turbo, tiny_checkpoint):
    assert default_cfm_steps(turbo.s3gen) == 2
    assert default_cfm_steps(load_checkpoint(tiny_checkpoint).s3gen) == 10


@pytest.mark.parametrize("steps", [None, 2])
def test_whole_segment_equals_upstream_s3gen_inference(turbo, steps):
    from chatterbox.models.s3gen.const import S3GEN_SIL

    tokens = _speech(turbo)
    seed = 99
    vocoder = ChunkVocoder(turbo.s3gen, turbo.conds.gen, seed=seed, n_cfm_timesteps=steps,
                           end_tokens=TURBO_END_TOKENS)
    ours = np.concatenate([vocoder.decode(tokens, context=0, last=True), vocoder.flush()])
    assert TURBO_END_TOKENS == (S3GEN_SIL,) * 3
    assert len(ours) == (len(tokens) + 3) * SAMPLES_PER_TOKEN

    speech = torch.tensor(tokens + [S3GEN_SIL] * 3, dtype=torch.long)
    # the same CPU kernels as render_rows (oneDNN's differ in the last bits)
    with torch.random.fork_rng(), native_cpu_kernels(torch.device("cpu")):
        torch.manual_seed(seed * 1_000_003 + 1)  # the vocoder's first call's seed
        wav, _ = turbo.s3gen.inference(speech_tokens=speech, ref_dict=copy.deepcopy(turbo.conds.gen),
                                       n_cfm_timesteps=2)
    upstream = wav.squeeze(0).numpy()
    assert len(upstream) == len(ours)
    np.testing.assert_array_equal(ours, upstream)  # bit for bit
    assert np.abs(ours).max() > 1e-3  # not silence: the comparison means something


def test_chunked_decode_gives_the_right_length(turbo):
    tokens = _speech(turbo, n=60, seed=6)
    vocoder = ChunkVocoder(turbo.s3gen, turbo.conds.gen, seed=3, end_tokens=TURBO_END_TOKENS)
    pieces, sizes = [], (10, 17, 20)
    start = 0
    for size in sizes:
        pieces.append(vocoder.decode(tokens[start:start + size], context=8))
        start += size
    pieces.append(vocoder.decode(tokens[start:], context=8, last=True))
    pieces.append(vocoder.flush())
    audio = np.concatenate(pieces)
    assert len(audio) == (len(tokens) + 3) * SAMPLES_PER_TOKEN
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    # the same chunks again, same seed: the same audio
    again = ChunkVocoder(turbo.s3gen, turbo.conds.gen, seed=3, end_tokens=TURBO_END_TOKENS)
    start, out = 0, []
    for size in sizes:
        out.append(again.decode(tokens[start:start + size], context=8))
        start += size
    out += [again.decode(tokens[start:], context=8, last=True), again.flush()]
    np.testing.assert_array_equal(np.concatenate(out), audio)


def test_last_chunk_with_nothing_new_still_renders_the_end_tokens(turbo):
    tokens = _speech(turbo, n=20, seed=8)
    vocoder = ChunkVocoder(turbo.s3gen, turbo.conds.gen, seed=4, end_tokens=TURBO_END_TOKENS)
    head = vocoder.decode(tokens, context=0)
    tail = vocoder.decode([], context=4, last=True)
    audio = np.concatenate([head, tail, vocoder.flush()])
    assert len(audio) == (len(tokens) + 3) * SAMPLES_PER_TOKEN and np.isfinite(audio).all()
    plain = ChunkVocoder(turbo.s3gen, turbo.conds.gen, seed=4)  # no end tokens: nothing to add
    assert plain.prepare([], 4, last=True) is None


def test_meanflow_rows_batched_equal_rows_alone(turbo):
    tokens = _speech(turbo, n=50, seed=9)
    reference = prepared_reference(turbo.s3gen, turbo.conds.gen)
    rows = [RenderRow(tuple(tokens[:12]), reference, seed=1), RenderRow(tuple(tokens), reference, seed=2),
            RenderRow(tuple(tokens[5:30]), reference, seed=3)]
    alone = [render_rows(turbo.s3gen, [row])[0].audio for row in rows]
    batched = render_rows(turbo.s3gen, rows)
    for one, many in zip(alone, batched, strict=True):
        assert one.shape == many.audio.shape
        np.testing.assert_allclose(many.audio, one, rtol=0, atol=1e-5)
