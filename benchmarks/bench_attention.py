"""Attention backends side by side: T3 prefill and decode-step time and prefill peak memory.

For each context length (200, 500, 1,000, 2,000 tokens) and each backend, in one
process on one model: the time of a prefill of that many tokens through T3's
Llama backbone (CFG batch of 2, as generation runs it), the peak memory it
takes, and the time of one decode step with that much context in the KV cache.
Backends: ``eager`` (eager attention on every layer, the aligned heads' maps
recorded for the guard: the baseline), ``sdpa`` (no maps) and ``sdpa_aligned``
(SDPA plus the aligned heads' weights), and ``flash_attention_2`` where it can
run. Ratios are against ``eager``; the decode ratio of ``sdpa_aligned`` is also
given against plain ``sdpa`` (the issue's targets: prefill at 1,000 tokens at
most 0.5x eager's time and 0.3x its peak memory; decode at most 1.05x sdpa).

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above the memory held
before the call. On the CPU, the peak resident set above the level before the
call, after ``malloc_trim`` handed the memory earlier calls freed back to the
system (so the order of the backends does not bias it), sampled every 20 ms by a
thread (``seqopt_core.system.resident_bytes``, psutil). (Until 2026-11-26 this sampled glibc's
``mallinfo2`` every millisecond; that call takes malloc's locks and slows the
timed work down, so it was replaced.)

Random weights make noise, not speech; attention cost does not depend on the
weights' values.

    python benchmarks/bench_attention.py --checkpoint /path/to/full_checkpoint
    python benchmarks/bench_attention.py --quick     # tiny checkpoint, seconds
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

CONTEXTS = (200, 500, 1000, 2000)
DECODE_STEPS = 5


from seqopt_core.harness.runner import memory_method, peak_memory  # noqa: E402


def backends(host, names):
    """``{name: AttentionSettings}`` of the enabled backends among ``names``: what the engine
    is told (the record's declared capabilities and the backend object's options)."""
    from seqopt_core.pipeline import attention_settings

    out = {}
    for name in names:
        info = host.strategy("attention", name)
        if info.enabled:
            out[name] = attention_settings(info.spec, host.create("attention", name))
        else:
            print(f"- skipping {name}: {info.availability.reason}", file=sys.stderr)
    return out


NO_ATTENTION = "seqopt_bench_no_attention"


def _register_no_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    def no_attention(module, query, key, value, attention_mask, **kwargs):
        batch, heads, q_len, dim = query.shape
        return query.new_zeros(batch, q_len, heads, dim), None

    AttentionInterface.register(NO_ATTENTION, no_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NO_ATTENTION, sdpa_mask)


def NoAttention():  # noqa: N802 - it stands for a backend
    """A measuring device, not a backend: attention replaced by zeros (no scores, no
    softmax, no weighted sum), everything else in T3 as it is. Its prefill time is
    the floor that no attention backend can go below on this machine: the
    projections and MLPs cost the same under every backend."""
    from seqopt_core.engine import AttentionSettings

    return AttentionSettings("no_attention (floor)", NO_ATTENTION, setup=_register_no_attention)


_SET_UP: list = []


def measure(t3, backend, context: int, device, torch):
    """One prefill (time, peak memory) and DECODE_STEPS decode steps (median time);
    ``backend`` is an :class:`~seqopt_core.engine.AttentionSettings`."""
    from seqopt_plugins.chatterbox import attention_kernels as ak
    from seqopt_plugins.chatterbox.engine import attention_implementation

    if backend.setup is not None and backend.setup not in _SET_UP:  # register its kernel, once
        backend.setup()
        _SET_UP.append(backend.setup)
    gen = torch.Generator(device="cpu").manual_seed(context)
    x = (torch.randn(2, context, t3.dim, generator=gen) * 0.5).to(device=device, dtype=next(t3.parameters()).dtype)
    step = (torch.randn(2, 1, t3.dim, generator=gen) * 0.5).to(device=device, dtype=next(t3.parameters()).dtype)
    tap = None
    if backend.provides_alignment:
        tap = ak.AttentionTap(backend.aligned_heads, keep_all_layers=backend.keep_all_layers)

    def forward(inputs, past):
        if tap is None:
            return t3.tfmr(inputs_embeds=inputs, past_key_values=past, use_cache=True)
        with ak.tapping(tap):
            out = t3.tfmr(inputs_embeds=inputs, past_key_values=past, use_cache=True)
        tap.mean()  # what the guard reads each step
        return out

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with attention_implementation(t3, backend.attn_implementation), torch.inference_mode():
        with peak_memory(device) as mem:
            started = time.perf_counter()
            out = forward(x, None)
            sync()
            prefill = time.perf_counter() - started
        peak = mem["bytes"]
        past = out.past_key_values
        steps = []
        for _ in range(DECODE_STEPS):
            started = time.perf_counter()
            out = forward(step, past)
            sync()
            steps.append(time.perf_counter() - started)
            past = out.past_key_values
        del out, past
    return prefill, peak, statistics.median(steps)


def apply_memory_limit(gib: float | None) -> int | None:
    """Cap the address space (RLIMIT_AS) at ``gib`` GiB (default: RAM minus 1.5 GiB); bytes or None."""
    import resource

    if gib == 0:
        return None
    if gib is None:
        total = common.total_memory_bytes()
        if not total:
            return None
        limit = int(total - 1.5 * 2**30)
    else:
        limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return limit


def main() -> None:
    parser = common.base_parser("bench_attention", __doc__)
    parser.add_argument("--checkpoint", type=Path, help="checkpoint folder (full size for real figures)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--contexts", type=int, nargs="+", default=None, help="context lengths")
    parser.add_argument("--backends", nargs="+", default=["eager", "sdpa", "sdpa_aligned", "flash_attention_2"])
    parser.add_argument("--floor", action="store_true",
                        help="also time T3 with attention replaced by zeros: the floor no attention "
                             "backend can beat (prefill/eager of the floor bounds every backend's)")
    parser.add_argument("--memory-limit-gib", type=float, default=None, metavar="GIB",
                        help="CPU only: cap the process's address space (RLIMIT_AS) so that a backend "
                             "that needs more memory than the machine has fails with an allocation error, "
                             "recorded as 'out of memory', instead of waking the kernel's OOM killer "
                             "(default: total RAM minus 1.5 GiB; 0: no cap)")
    args = parser.parse_args()

    import torch

    from seqopt_core.testing import make_host
    from seqopt_plugins.chatterbox.checkpoint import load_checkpoint, write_random_checkpoint
    from seqopt_plugins.chatterbox.engine import pick_device
    from seqopt_plugins.chatterbox.t3_batch import is_out_of_memory

    repeats = common.check_repeats(args.repeats) or (1 if args.quick else 3)
    contexts = tuple(args.contexts or ((64, 128) if args.quick else CONTEXTS))
    device = torch.device(pick_device(args.device))
    checkpoint = args.checkpoint
    tmp = None
    if checkpoint is None:
        if not args.quick:
            parser.error("--checkpoint DIR is required (a full-size one: seqopt make-checkpoint DIR --scale full)")
        tmp = tempfile.TemporaryDirectory()
        checkpoint = Path(tmp.name)
        write_random_checkpoint(checkpoint, scale="tiny", tokenizer=common.resolve_tokenizer(args.tokenizer))
    memory_limit = apply_memory_limit(args.memory_limit_gib) if device.type == "cpu" else None
    loaded = load_checkpoint(checkpoint, device=device)
    t3 = loaded.t3
    chosen = backends(make_host(), args.backends)
    if args.floor:
        chosen["no_attention (floor)"] = NoAttention()
    env = common.environment(device=str(device), torch=torch.__version__,
                             cuda_device=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                             checkpoint={"path": common.display_path(Path(checkpoint)),
                                         "scale": loaded.scale_hint, "random_weights": loaded.random_weights,
                                         "t3_layers": loaded.arch.t3.num_layers,
                                         "t3_hidden": loaded.arch.t3.hidden_size},
                             torch_threads=torch.get_num_threads())
    common.print_header("bench_attention", env, [
        f"T3 {loaded.arch.t3.num_layers} layers x {loaded.arch.t3.num_heads} heads, hidden "
        f"{loaded.arch.t3.hidden_size}, {loaded.scale_hint} checkpoint (random weights: noise, not speech)",
        f"contexts {list(contexts)}, CFG batch 2, {repeats} repeat(s) interleaved, decode = median of "
        f"{DECODE_STEPS} steps", f"peak memory: {memory_method(device)}",
        f"address-space cap (RLIMIT_AS): {memory_limit / 2**30:.1f} GiB; a backend that needs more is "
        "recorded as out of memory" if memory_limit else "no address-space cap"])
    samples: dict[tuple[int, str], list[tuple[float, int, float]]] = {}
    out_of_memory: dict[tuple[int, str], str] = {}
    with common.progress(len(contexts) * repeats * len(chosen), "attention") as step:
        for context in contexts:
            for name, backend in chosen.items():  # warm-up, untimed
                measure(t3, backend, min(context, 64), device, torch)
            for r in range(repeats):
                for name, backend in chosen.items():  # interleaved: drift hits every backend
                    if (context, name) in out_of_memory:  # it did not fit once; it will not fit now
                        step(f"{context} tokens, {name}, round {r + 1}: skipped (out of memory before)")
                        continue
                    try:
                        result = measure(t3, backend, context, device, torch)
                    except (RuntimeError, MemoryError) as exc:
                        if not is_out_of_memory(exc):
                            raise
                        out_of_memory[(context, name)] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                        gc.collect()
                        step(f"{context} tokens, {name}, round {r + 1}: OUT OF MEMORY")
                        continue
                    samples.setdefault((context, name), []).append(result)
                    step(f"{context} tokens, {name}, round {r + 1}")

    rows, results = [], []
    for context in contexts:
        base = samples.get((context, "eager"))
        sdpa = samples.get((context, "sdpa"))
        for name in chosen:
            if (context, name) in out_of_memory:
                results.append({"context": context, "backend": name, "out_of_memory": out_of_memory[(context, name)]})
                rows.append([context, name, "out of memory", "-", "-", "-", "-", "-", "-"])
                continue
            s = samples[(context, name)]
            prefill = statistics.median(x[0] for x in s)
            peak = statistics.median(x[1] for x in s)
            decode = statistics.median(x[2] for x in s)
            ratio = lambda v, ref, i: v / statistics.median(x[i] for x in ref) if ref else None  # noqa: E731
            r_prefill, r_peak, r_decode = ratio(prefill, base, 0), ratio(peak, base, 1), ratio(decode, base, 2)
            r_vs_sdpa = ratio(decode, sdpa, 2)
            results.append({"context": context, "backend": name, "prefill_s": prefill, "prefill_peak_bytes": peak,
                            "decode_step_s": decode, "prefill_vs_eager": r_prefill, "peak_vs_eager": r_peak,
                            "decode_vs_eager": r_decode, "decode_vs_sdpa": r_vs_sdpa,
                            "samples": [{"prefill_s": a, "peak_bytes": b, "decode_step_s": c} for a, b, c in s]})
            fmt = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
            rows.append([context, name, common.fmt_seconds(prefill), f"{peak / 2**20:.0f} MiB",
                         common.fmt_seconds(decode), fmt(r_prefill), fmt(r_peak), fmt(r_decode), fmt(r_vs_sdpa)])
    common.print_table(["context", "backend", "prefill", "prefill peak", "decode step", "prefill/eager",
                        "peak/eager", "decode/eager", "decode/sdpa"], rows,
                       title="T3 attention backends (medians)")
    targets = [r for r in results if r["backend"] == "sdpa_aligned" and r["context"] == 1000]
    if targets:
        t = targets[0]
        print(f"targets at 1,000 tokens, sdpa_aligned: prefill {t['prefill_vs_eager']:.2f}x eager (target <= 0.5), "
              f"peak {t['peak_vs_eager']:.2f}x eager (target <= 0.3), decode {t['decode_vs_sdpa']:.2f}x sdpa "
              "(target <= 1.05)")
    for (context, name), why in out_of_memory.items():
        print(f"{name} at {context} tokens: out of memory ({why})")
    common.write_json(args.out, "bench_attention", env,
                      {"contexts": list(contexts), "repeats": repeats, "decode_steps": DECODE_STEPS,
                       "memory_limit_bytes": memory_limit,
                       "backends": {k: v.attn_implementation for k, v in chosen.items()}},
                      common.rounded(results))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
