"""The ``chatterbox-multilingual`` engine on a tiny random-weight Multilingual checkpoint.

Upstream's own ``T3.inference`` on this model runs its ``AlignmentStreamAnalyzer`` (eager
attention on every layer, forward hooks); seqopt's loop runs the same guard from the
aligned heads (``seqopt_eager`` and ``sdpa_aligned``). With the same seed they must sample
the same speech tokens, in every language's tokenization: the guard changes the logits
at every step (the stop token suppressed until the text is spoken, forced on repetition),
so equal tokens mean equal decisions on the model's real attention maps. Random
weights make noise: these tests check mechanics, never audio.
"""

from __future__ import annotations

import copy
import gc

import pytest
import torch

from seqopt_core import ConfigError
from seqopt_core.api import build_planner
from seqopt_core.engine import SegmentJob, segment_seed
from seqopt_core.types import Segment
from seqopt_plugins.chatterbox.checkpoint import load_checkpoint
from seqopt_plugins.chatterbox.pipeline import Pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = {
    "fr": "Bonjour à tous, et merci d'être venus.",
    "zh": "你好世界，今天天气很好。",
    "hi": "नमस्ते दुनिया, आप कैसे हैं।",
    "ru": "Привет, мир! Как дела?",
}
MAX_TOKENS = 30


def make_pipeline(checkpoint, *, language=None, attention="sdpa_aligned", **options):
    overrides = {"engine": {"options": {"checkpoint": str(checkpoint), "watermark": False,
                                        "max_new_tokens": MAX_TOKENS, **options}},
                 "attention": {"name": attention}, "synthesis": {"seed": 5},
                 "chunk_policy": {"name": "fixed", "options": {"chunk_size": 10}}}
    if language:
        overrides["synthesis"]["language"] = language
    return Pipeline.from_config(profile="multilingual", overrides=overrides)


@pytest.fixture(scope="module")
def pipeline(tiny_mtl_checkpoint):
    return make_pipeline(tiny_mtl_checkpoint)


@pytest.fixture(scope="module")
def upstream_t3(tiny_mtl_checkpoint):
    """A second copy of the model for upstream's own inference: its analyzer leaves the
    transformer in eager mode with hooks on, which must not touch the engine's copy."""
    return load_checkpoint(tiny_mtl_checkpoint, model="multilingual")


def _hooks(module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _our_tokens(engine, attention, segment, seed):
    job = SegmentJob(0, segment, seed)
    batch = engine.open_batch(attention)
    try:
        with engine.work(attention):
            steps = batch.step([job])
            while not steps[0].finished:
                steps = batch.step()
        return list(steps[0].finished.tokens), steps[0].finished
    finally:
        batch.close()


def _upstream_tokens(loaded, engine, segment, seed):
    t3 = loaded.t3
    text = engine.text_tokens(segment).to(t3.device)
    s = engine.sampling
    torch.manual_seed(segment_seed(seed, segment.index))
    with torch.inference_mode():
        out = t3.inference(t3_cond=copy.deepcopy(engine.conds.t3), text_tokens=text,
                           max_new_tokens=MAX_TOKENS, temperature=s.temperature, top_p=s.top_p,
                           min_p=s.min_p, repetition_penalty=s.repetition_penalty,
                           cfg_weight=s.cfg_weight)[0].tolist()
    return out


@pytest.mark.parametrize("language", sorted(TEXTS))
@pytest.mark.parametrize("backend", ["eager", "sdpa_aligned"])
def test_our_loop_equals_upstream_inference_with_its_analyzer(pipeline, upstream_t3, language, backend):
    engine = pipeline.engine
    from seqopt_core.pipeline import attention_settings

    spec = pipeline.host.strategy("attention", backend).spec
    attention = attention_settings(spec, pipeline.host.create("attention", backend))
    segment = Segment(0, TEXTS[language], 0, len(TEXTS[language]), 0, "end", language)
    ours, finished = _our_tokens(engine, attention, segment, seed=11)
    upstream = _upstream_tokens(upstream_t3, engine, segment, seed=11)
    stop = upstream_t3.t3.hp.stop_speech_token
    # upstream also returns the stop token when it samples one; we stop before it
    assert ours == [t for t in upstream if t != stop][: len(ours)]
    assert len(ours) == len(upstream) or upstream[len(ours)] == stop
    # the guard ran on every step and decided something (the stop token suppressed at least)
    decisions = finished.alignment.decisions
    assert len(decisions) >= len(ours) and any(d.suppressed_stop for d in decisions)


def test_each_segment_is_tokenized_for_its_language(pipeline):
    engine = pipeline.engine
    vocab = engine.tokenizer.tokenizer.get_vocab()
    for language in ("fr", "zh", "en"):
        ids = engine.text_tokens(Segment(0, "Hola.", 0, 5, 0, "end", language))[0].tolist()
        assert ids[0] == engine.t3.hp.start_text_token and ids[1] == vocab[f"[{language}]"]
    unset = engine.text_tokens(Segment(0, "Hola.", 0, 5, 0, "end"))[0].tolist()
    assert unset[1] == vocab["[en]"]  # no language: English, the engine's default


def test_planner_counts_what_t3_receives_for_the_language(tiny_mtl_checkpoint, pipeline):
    engine = pipeline.engine
    for language, text in TEXTS.items():
        planner = build_planner(profile="multilingual", overrides={
            "synthesis": {"language": language},
            "estimator": {"options": {"tokenizer": str(tiny_mtl_checkpoint)}}})
        plan = planner.plan(text)
        assert plan.language == language and all(s.language == language for s in plan.segments)
        for s in plan.segments:
            assert s.tokens == engine.text_tokens(s).size(-1), (language, s.text)


def test_synthesis_streams_audio_in_the_language(tiny_mtl_checkpoint):
    pipe = make_pipeline(tiny_mtl_checkpoint, language="zh")
    text = "你好世界。今天天气很好，我们去公园吧。"
    chunks = list(pipe.stream(text))
    assert chunks and all(c.audio.size > 0 for c in chunks)
    assert {c.segment.index for c in chunks} == set(range(len(pipe.planner.plan(text))))
    assert all(c.segment.language == "zh" for c in chunks)


def test_a_language_the_model_does_not_speak_is_refused_with_the_list(tiny_mtl_checkpoint):
    with pytest.raises(ConfigError) as info:
        make_pipeline(tiny_mtl_checkpoint, language="xx")
    message = str(info.value)
    assert "synthesis.language" in message and "'xx'" in message
    assert "zh (Chinese)" in message and "sw (Swahili)" in message


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_fifty_generations_leave_no_hooks_and_no_growth(tiny_mtl_checkpoint):
    """As users get it: the multilingual profile with the guard (sdpa_aligned) and the
    watermark on. Upstream's own inference adds three hooks per call (the test below)."""
    pipe = make_pipeline(tiny_mtl_checkpoint, language="de", watermark=True, max_new_tokens=12)
    t3 = pipe.engine.t3
    impl = t3.tfmr.config._attn_implementation
    text = "Guten Tag. Wie geht es Ihnen?"
    list(pipe.stream(text))  # warm up caches
    tensors = _live_tensors()
    for _ in range(50):
        list(pipe.stream(text))
    assert _hooks(t3) == 0
    assert t3.tfmr.config._attn_implementation == impl
    assert not t3.tfmr.config.output_attentions
    assert _live_tensors() <= tensors + 5  # nothing accumulates per generation


def test_upstream_analyzer_leaves_hooks_behind(upstream_t3, pipeline):
    """What the engine avoids, measured on upstream's own inference (0.1.7): each call
    registers three forward hooks that are never removed, and leaves eager attention on."""
    segment = Segment(0, "Hola.", 0, 5, 0, "end", "es")
    counts = []
    for _ in range(3):
        _upstream_tokens(upstream_t3, pipeline.engine, segment, seed=1)
        counts.append(_hooks(upstream_t3.t3))
    # the first call also makes transformers install its output-capturing hooks (once)
    assert counts[1] - counts[0] == counts[2] - counts[1] == 3
    assert upstream_t3.t3.tfmr.config._attn_implementation == "eager"


def test_guard_makes_the_analyzers_decisions_step_by_step_on_recorded_maps(upstream_t3, pipeline):
    """Upstream's own generation on the Multilingual T3, with its analyzer: each step's
    aligned-head maps, last token and logits are recorded as the analyzer sees them, then
    replayed through seqopt's guard, which must return the same logits at every step."""
    from chatterbox.models.t3.inference.alignment_stream_analyzer import AlignmentStreamAnalyzer

    from seqopt_plugins.chatterbox.alignment import AlignmentGuard

    recorded, made = [], []
    original_init, original_step = AlignmentStreamAnalyzer.__init__, AlignmentStreamAnalyzer.step

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(self)

    def step(self, logits, next_token=None):
        maps = torch.stack(self.last_aligned_attns).mean(dim=0).clone()
        out = original_step(self, logits.clone(), next_token=next_token)
        recorded.append((maps, logits.clone(), next_token, out.clone()))
        return out

    segment = Segment(0, TEXTS["ru"], 0, len(TEXTS["ru"]), 0, "end", "ru")
    AlignmentStreamAnalyzer.__init__, AlignmentStreamAnalyzer.step = init, step
    try:
        _upstream_tokens(upstream_t3, pipeline.engine, segment, seed=3)
    finally:
        AlignmentStreamAnalyzer.__init__, AlignmentStreamAnalyzer.step = original_init, original_step
    analyzer = made[-1]
    guard = AlignmentGuard(analyzer.text_tokens_slice, analyzer.eos_idx)
    assert len(recorded) >= 10
    for maps, logits, last, expected in recorded:
        with torch.inference_mode():  # the recorded tensors are inference tensors
            got = guard.step(maps, logits, last)
        torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert guard.text_position == int(analyzer.text_position)
    assert guard.started == analyzer.started and guard.complete == analyzer.complete
    assert guard.completed_at == analyzer.completed_at
    assert any(d.suppressed_stop for d in guard.decisions)
