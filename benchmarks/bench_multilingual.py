"""Chatterbox Multilingual: upstream's own ``generate`` against seqopt's ``multilingual`` profile.

The same texts in three languages (French, Chinese, Hindi by default), on one
full-size Multilingual checkpoint, in one process, interleaved per language:

* **upstream**: ``ChatterboxMultilingualTTS.generate`` of chatterbox-tts 0.1.7, its
  own code on its own copy of the model (its ``AlignmentStreamAnalyzer`` switches
  every layer to eager attention with ``output_attentions=True`` and adds forward
  hooks on each call, which would change the other contender's model). Its T3
  length is capped at ``--tokens`` speech tokens (generate passes 1,000), and
  speech ids a random T3 samples that S3Gen cannot embed (>= 6561) are dropped,
  as Turbo's generate does; everything else is upstream's.
* **seqopt**: ``Pipeline`` with the ``multilingual`` profile (SDPA with the
  alignment guard, deadline chunks from this device's measured costs), streamed,
  in benchmark length mode with the same number of speech tokens.

Measured per language: T3 prefill time and the median decode step (upstream: its
own forward calls, timed by wrapping the backend's ``forward``; seqopt: its T3
batch's steps, first step = prefill), peak memory of the whole call, time to first
audio (upstream returns all audio at the end: its TTFA is its wall time), wall
time and RTF. The forward hooks on T3 are counted after each T3 generation on each side, the
timed ones included, up to ``--calls`` (the rest are T3 alone, ``--hook-tokens``
tokens each: hooks come from T3's inference); upstream's analyzer adds three per
call and never removes them.

Random weights make noise, not speech: this measures cost, never quality. A
random T3 also never stops by itself, so both sides run the same fixed length.

    python benchmarks/bench_multilingual.py                     # full size, writes one if absent
    python benchmarks/bench_multilingual.py --quick             # tiny checkpoint, a minute
"""

from __future__ import annotations

import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

#: One sentence per language, about the same length in characters.
TEXTS = {
    "fr": "Le train de nuit traverse lentement la vallée, et les lumières du village s'éteignent une à une.",
    "zh": "夜班火车慢慢穿过山谷，村庄里的灯光一盏接一盏地熄灭了，远处传来几声狗叫。",
    "hi": "रात की रेलगाड़ी धीरे-धीरे घाटी से गुज़रती है, और गाँव की बत्तियाँ एक-एक करके बुझ जाती हैं।",
}
#: Where the full-size random checkpoint is written when none is given.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / ".cache" / "ck_mtl_full"


def _hooks(module: Any) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


class ForwardTimer:
    """Times every call of upstream's T3 backend ``forward`` (a wrapper, not a hook:
    it adds nothing to the hook count), in calls since :meth:`reset`."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def reset(self) -> None:
        self.seconds = []

    def install(self) -> None:
        from chatterbox.models.t3.inference.t3_hf_backend import T3HuggingfaceBackend

        original = T3HuggingfaceBackend.forward
        timer = self

        @functools.wraps(original)
        def timed(self_, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self_, *args, **kwargs)
            finally:
                timer.seconds.append(time.perf_counter() - started)

        T3HuggingfaceBackend.forward = timed


def _capped_inference(t3: Any, tokens: int) -> Any:
    """``t3.inference`` with ``max_new_tokens=tokens`` and only ids S3Gen can embed kept."""
    inference = t3.inference

    @functools.wraps(inference)
    def capped(*args: Any, **kwargs: Any) -> Any:
        out = inference(*args, **{**kwargs, "max_new_tokens": tokens})
        return out[:, out[0] < 6561]

    return capped


def upstream_call(tts: Any, text: str, language: str, timer: ForwardTimer, device: Any) -> dict[str, Any]:
    from seqopt_core.harness.runner import peak_memory

    timer.reset()
    with peak_memory(device) as mem:
        started = time.perf_counter()
        wav = tts.generate(text, language_id=language)
        wall = time.perf_counter() - started
    forward = timer.seconds
    audio = wav.shape[-1] / tts.sr
    return {"wall_s": wall, "ttfa_s": wall, "audio_s": audio, "rtf": wall / audio if audio else None,
            "prefill_s": forward[0], "decode_step_s": statistics.median(forward[1:]) if len(forward) > 1 else None,
            "t3_forward_calls": len(forward), "peak_bytes": mem["bytes"], "hooks_after": _hooks(tts.t3)}


def seqopt_t3_steps(engine: Any, attention: Any, text: str, language: str, tokens: int) -> dict[str, float]:
    """Our T3 batch on the text alone: the prefill step's time and the median decode step."""
    from seqopt_core.engine import SegmentJob
    from seqopt_core.types import Segment

    job = SegmentJob(0, Segment(0, text, 0, len(text), 0, "end", language), 0)
    batch = engine.open_batch(attention)
    times = []
    try:
        with engine.work(attention):
            started = time.perf_counter()
            steps = batch.step([job])
            times.append(time.perf_counter() - started)
            while not steps[0].finished and len(times) <= tokens:
                started = time.perf_counter()
                steps = batch.step()
                times.append(time.perf_counter() - started)
    finally:
        batch.close()
    return {"prefill_s": times[0], "decode_step_s": statistics.median(times[1:]) if len(times) > 1 else None}


def seqopt_call(pipe: Any, text: str, device: Any) -> dict[str, Any]:
    from seqopt_core.harness.runner import peak_memory

    with peak_memory(device) as mem:
        stream = pipe.stream(text)
        for _chunk in stream:
            pass
    g = stream.metrics.generation
    return {"wall_s": g.wall_seconds, "ttfa_s": g.time_to_first_audio, "audio_s": g.audio_seconds,
            "rtf": g.rtf, "chunks": g.chunks, "peak_bytes": mem["bytes"], "hooks_after": _hooks(pipe.engine.t3)}


def main() -> None:
    parser = common.base_parser("bench_multilingual", __doc__)
    common.add_model_arguments(parser)
    parser.add_argument("--languages", nargs="+", default=list(TEXTS), choices=sorted(TEXTS),
                        help="languages to run (default: fr zh hi)")
    parser.add_argument("--tokens", type=int, default=None,
                        help="speech tokens per generation on both sides (default 50; --quick 12)")
    parser.add_argument("--calls", type=int, default=10,
                        help="T3 generations per side for the hook count, the timed ones included (default 10)")
    parser.add_argument("--hook-tokens", type=int, default=5,
                        help="speech tokens of each untimed one (default 5)")
    args = parser.parse_args()

    import torch

    from seqopt_core.api import as_loaded_config
    from seqopt_core.pipeline import Pipeline, attention_settings
    from seqopt_plugins.chatterbox.checkpoint import load_checkpoint, write_random_checkpoint
    from seqopt_plugins.chatterbox.engine import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    tokens = args.tokens or (12 if args.quick else 50)
    device = torch.device(pick_device(args.device))
    tmp = None
    checkpoint = args.checkpoint
    if checkpoint is None:
        if args.quick:
            tmp = tempfile.TemporaryDirectory()
            checkpoint = Path(tmp.name)
        else:
            checkpoint = DEFAULT_CHECKPOINT
        if not (checkpoint / "t3_mtl23ls_v2.safetensors").is_file():
            scale = "tiny" if args.quick else "full"
            print(f"writing a {scale} random Multilingual checkpoint to {checkpoint}", file=sys.stderr)
            write_random_checkpoint(checkpoint, model="multilingual", scale=scale, seed=0)

    # upstream's copy: its analyzer changes the model it runs on
    started = time.perf_counter()
    upstream_loaded = load_checkpoint(checkpoint, device=device, model="multilingual")
    load_seconds = time.perf_counter() - started
    tts = upstream_loaded.to_tts()
    tts.t3.inference = _capped_inference(tts.t3, tokens)
    timer = ForwardTimer()
    timer.install()

    def pipeline(language: str, engine: Any = None) -> Any:
        """The multilingual profile for ``language``, in benchmark length mode: exactly
        ``tokens`` speech tokens for its text (the ratio from the text's exact count)."""
        loaded = as_loaded_config(None, profile="multilingual", overrides={
            "synthesis": {"device": args.device, "dtype": args.dtype, "seed": 0, "language": language},
            "engine": {"options": {"checkpoint": str(checkpoint)}}})
        probe = Pipeline.from_config(loaded, engine=engine)
        ratio = tokens / probe.planner.estimator.count(TEXTS[language])
        return Pipeline.from_config(as_loaded_config(loaded, overrides={"engine": {"options": {
            "benchmark_tokens_per_text_token": ratio}}}), engine=probe.engine)

    first = pipeline(args.languages[0])
    pipes = {args.languages[0]: first}
    for lang in args.languages[1:]:
        pipes[lang] = pipeline(lang, first.engine)
    host = first.host
    spec = host.strategy("attention", "sdpa_aligned").spec
    aligned = attention_settings(spec, host.create("attention", "sdpa_aligned"))

    def upstream_t3_call(language: str, n: int) -> int:
        """One upstream ``T3.inference`` of ``n`` tokens (no S3Gen); the hooks on T3 after it."""
        ids = tts.tokenizer.text_to_tokens(TEXTS[language], language_id=language).to(device)
        ids = torch.nn.functional.pad(torch.cat([ids, ids]), (1, 0), value=tts.t3.hp.start_text_token)
        ids = torch.nn.functional.pad(ids, (0, 1), value=tts.t3.hp.stop_text_token)
        with torch.inference_mode():  # upstream's own inference, not generate's capped wrapper
            tts.t3.inference.__wrapped__(t3_cond=tts.conds.t3, text_tokens=ids, max_new_tokens=n)
        return _hooks(tts.t3)

    env = common.environment(device=str(device), torch=torch.__version__, torch_threads=torch.get_num_threads(),
                             cuda_device=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                             checkpoint={"path": common.display_path(Path(checkpoint)),
                                         "scale": upstream_loaded.scale_hint,
                                         "random_weights": upstream_loaded.random_weights})
    common.print_header("bench_multilingual", env, [
        f"Chatterbox Multilingual, {upstream_loaded.scale_hint} checkpoint (random weights: noise, not speech), "
        f"loaded in {load_seconds:.1f} s (each side has its own copy)",
        f"{tokens} speech tokens per generation on both sides; languages {', '.join(args.languages)}; one round",
        "seqopt costs: " + (first.costs.source if first.scheduler.uses_playback else "fixed chunks")])

    results: dict[str, Any] = {"languages": {}}
    up_hooks: list[int] = []  # hooks on upstream's T3 after each of its T3 generations
    our_hooks: list[int] = []
    with common.progress(len(args.languages) * 2 + 2, "multilingual") as step:
        # warm-up, untimed: one short T3 generation on each side
        up_hooks.append(upstream_t3_call(args.languages[0], 2))
        seqopt_t3_steps(first.engine, aligned, TEXTS[args.languages[0]], args.languages[0], 2)
        our_hooks.append(_hooks(first.engine.t3))
        for lang in args.languages:
            text = TEXTS[lang]
            up = upstream_call(tts, text, lang, timer, device)
            up_hooks.append(up["hooks_after"])
            step(f"upstream {lang}")
            ours = seqopt_call(pipes[lang], text, device)
            ours.update(seqopt_t3_steps(pipes[lang].engine, aligned, text, lang, tokens))
            our_hooks.append(_hooks(first.engine.t3))
            step(f"seqopt {lang}")
            results["languages"][lang] = {"text": text, "upstream": up, "seqopt": ours}
        # more T3 generations, up to --calls on each side (T3 only: that is where hooks are added)
        while len(up_hooks) < args.calls:
            up_hooks.append(upstream_t3_call(args.languages[0], args.hook_tokens))
        step("upstream hooks")
        while len(our_hooks) < args.calls:
            seqopt_t3_steps(first.engine, aligned, TEXTS[args.languages[0]], args.languages[0], args.hook_tokens)
            our_hooks.append(_hooks(first.engine.t3))
        step("seqopt hooks")
    results["hooks_after_each_call"] = {"upstream": up_hooks, "seqopt": our_hooks}

    rows = []
    for lang, r in results["languages"].items():
        up, ours = r["upstream"], r["seqopt"]
        for name, key in (("T3 prefill", "prefill_s"), ("T3 decode step", "decode_step_s"),
                          ("time to first audio", "ttfa_s"), ("wall", "wall_s")):
            a, b = up[key], ours[key]
            rows.append([lang, name, common.fmt_seconds(a), common.fmt_seconds(b),
                         f"{b / a:.2f}x" if a and b else "-"])
        a, b = up["peak_bytes"], ours["peak_bytes"]
        rows.append([lang, "peak memory", f"{a / 2**20:.0f} MiB", f"{b / 2**20:.0f} MiB",
                     f"{b / a:.2f}x" if a and b else "-"])
    common.print_table(["language", "measure", "upstream generate", "seqopt multilingual", "seqopt / upstream"],
                       rows, title="Multilingual: upstream generate vs seqopt (one round)")
    common.print_table(["calls", "upstream hooks on T3", "seqopt hooks on T3"],
                       [[i + 1, u, o] for i, (u, o) in enumerate(zip(up_hooks, our_hooks))],
                       title=f"forward hooks after each of {args.calls} T3 generations")
    common.write_json(args.out, "bench_multilingual", env,
                      {"tokens": tokens, "languages": args.languages, "calls": args.calls,
                       "hook_tokens": args.hook_tokens, "quick": args.quick},
                      common.rounded(results))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
