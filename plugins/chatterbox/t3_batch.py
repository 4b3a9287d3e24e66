"""Several segments' speech tokens at once: one T3 forward pass per step for all of them.

T3 decoding reads every weight once per step whatever the batch size, so
generating B segments together costs far less than B generations one after
another. :class:`BatchedSpeechTokenLoop` does what :class:`.t3_stream.SpeechTokenLoop`
does for one segment, for several, so that each segment's tokens equal the ones
it gets alone with the same generator (``tests/test_batch.py``):

* each segment has two rows under CFG (conditional, then unconditional with its
  text embeddings zeroed), in segment order;
* prefills of different lengths are LEFT-padded, with an attention mask and
  explicit position ids (``cumsum(mask) - 1``), so that every row's RoPE
  positions equal its positions alone; decode steps continue each row's own
  positions, and padding keys get no attention weight;
* sampling is per segment, with the sequential loop's steps and shapes: CFG,
  alignment guard, length guard, stop masking, repetition penalty over that
  segment's own ids, temperature, min-p, top-p, one ``torch.multinomial`` draw
  from that segment's own generator;
* a segment that stops (stop token, its own length limit) leaves the batch: its
  rows are dropped from the KV cache, the mask and the positions, so finished
  segments stop costing compute, and padding columns no remaining row needs are
  cut off the front of the cache.

Also here: how many segments fit in memory (:func:`auto_batch_size`), and
running a list of segments in batches that shrink when one runs out of memory
(:func:`shrinking_batches`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from .alignment import AlignmentGuard, LengthGuard
from .attention_kernels import AttentionTap, check_heads, tapping
from .t3_stream import AlignmentOptions, LengthLimits, SamplingOptions, stop_reason

#: Upper bound on T3's conditioning length (speaker, perceiver-resampled prompt, emotion: 34).
COND_TOKENS_BOUND = 64
#: Largest automatic batch, in segments, per device type.
AUTO_CAP = {"cpu": 8, "mps": 8, "cuda": 32}
#: Share of the free memory the KV caches of one batch may take (the rest: activations,
#: the cache's copy while it grows, S3Gen, everything else on the machine).
CPU_MEMORY_FRACTION = 0.5
CUDA_MEMORY_FRACTION = 0.7


@dataclass(frozen=True)
class BatchItem:
    """One segment's input to the batched loop.

    ``text_tokens`` is what :func:`.t3_stream.text_token_tensor` returns: two rows
    under CFG. ``generator`` is the segment's own: its draws are the ones the
    segment would make alone.
    """

    t3_cond: Any
    text_tokens: torch.Tensor
    limits: LengthLimits
    generator: torch.Generator | None = None
    length_guard: tuple[float, float] | None = None


@dataclass(frozen=True)
class TokenEvent:
    """One event of a batched generation: ``position`` indexes the items.

    A sampled token has ``token`` set; the segment's last event has ``token=None``
    and ``stopped_by`` set (``stop_token``, ``length_limit``, ``benchmark_length``
    or ``alignment_guard``).
    """

    position: int
    token: int | None
    stopped_by: str | None = None


@dataclass
class RowResult:
    """A segment's outcome: its tokens (stop token excluded) and why it stopped."""

    tokens: list[int] = field(default_factory=list)
    stopped_by: str = ""
    guard: AlignmentGuard | None = None


@dataclass
class _Row:
    """Per-segment state while it is in the batch."""

    position: int
    item: BatchItem
    pad: int
    generated: torch.Tensor
    guard: AlignmentGuard | None
    lengths: LengthGuard | None
    tokens: list[int] = field(default_factory=list)


def left_pad(embeds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Stack ``(rows_i, L_i, D)`` embeddings into one left-padded batch.

    Returns ``(inputs, mask, position_ids, pads)``: padding is zeros with mask 0,
    position ids count each row's real tokens from 0 (padding gets 0), and
    ``pads[i]`` is how many padding columns item ``i`` has.
    """
    width = max(e.size(1) for e in embeds)
    rows = sum(e.size(0) for e in embeds)
    first = embeds[0]
    inputs = first.new_zeros(rows, width, first.size(2))
    mask = torch.zeros(rows, width, dtype=torch.long, device=first.device)
    pads, r = [], 0
    for e in embeds:
        pad = width - e.size(1)
        inputs[r:r + e.size(0), pad:] = e
        mask[r:r + e.size(0), pad:] = 1
        pads.append(pad)
        r += e.size(0)
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    return inputs, mask, positions, pads


def unpadded_map(attention: torch.Tensor, pad: int, *, prefill: bool) -> torch.Tensor:
    """A row's attention map in its own unpadded coordinates (what it gets alone):
    the padding's key columns, and at prefill its query rows too, are removed."""
    return attention[pad:, pad:] if prefill else attention[:, pad:]


class BatchedSpeechTokenLoop:
    """Samples T3's speech tokens for several segments at once (see the module doc).

    Like :class:`.t3_stream.SpeechTokenLoop`, it uses the attention
    implementation set on the model; with ``alignment`` it must be one that
    records the aligned heads (``seqopt_eager``, ``seqopt_sdpa_aligned``).
    """

    def __init__(self, t3: Any) -> None:
        self.t3 = t3
        self.hp = t3.hp

    def generate(self, items: Sequence[BatchItem], *, sampling: SamplingOptions,
                 alignment: AlignmentOptions | None = None) -> list[RowResult]:
        """Run every item to its end; results in item order."""
        results = [RowResult() for _ in items]
        guards: dict[int, AlignmentGuard] = {}
        for event in self.events(items, sampling=sampling, alignment=alignment, guards=guards):
            if event.token is not None:
                results[event.position].tokens.append(event.token)
            else:
                results[event.position].stopped_by = event.stopped_by or ""
        for position, guard in guards.items():
            results[position].guard = guard
        return results

    @torch.inference_mode()
    def events(self, items: Sequence[BatchItem], *, sampling: SamplingOptions,
               alignment: AlignmentOptions | None = None,
               guards: dict[int, AlignmentGuard] | None = None) -> Iterator[TokenEvent]:
        """Yield each sampled token and each segment's end as they happen.

        Tokens of one step come in item order. ``guards`` (if given) receives each
        item's alignment guard, by position. Closing the iterator early drops the
        KV cache with the generator's frame.
        """
        if not items:
            return
        t3, hp = self.t3, self.hp
        cfg = sampling.cfg_weight > 0.0
        per = 2 if cfg else 1
        from transformers.generation.logits_process import (
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TopPLogitsWarper,
        )

        repetition = RepetitionPenaltyLogitsProcessor(penalty=float(sampling.repetition_penalty))
        min_p = MinPLogitsWarper(min_p=sampling.min_p)
        top_p = TopPLogitsWarper(top_p=sampling.top_p)
        stop = hp.stop_speech_token
        bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=t3.device)
        bos_embed = t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)

        tap = None
        if alignment is not None:
            cfg_ = t3.tfmr.config
            check_heads(alignment.heads, cfg_.num_hidden_layers, cfg_.num_attention_heads)
            tap = AttentionTap(alignment.heads, keep_all_layers=alignment.keep_all_layers)

        embeds, spans = [], []
        for item in items:
            text = torch.atleast_2d(item.text_tokens).to(dtype=torch.long, device=t3.device)
            if text.size(0) != per:
                raise ValueError(f"each item's text tokens need {per} row(s) with cfg_weight="
                                 f"{sampling.cfg_weight}, got {text.size(0)}")
            start = hp.start_speech_token * torch.ones_like(text[:, :1])
            emb, len_cond = t3.prepare_input_embeds(t3_cond=item.t3_cond, text_tokens=text,
                                                    speech_tokens=start, cfg_weight=sampling.cfg_weight)
            embeds.append(torch.cat([emb, bos_embed.expand(per, -1, -1)], dim=1))
            spans.append((len_cond, len_cond + text.size(-1)))
        inputs, mask, positions, pads = left_pad(embeds)
        del embeds

        rows: list[_Row] = []
        for position, (item, pad, span) in enumerate(zip(items, pads, spans)):
            guard = None
            if alignment is not None:
                guard = AlignmentGuard(span, stop, repetition_run=alignment.repetition_run)
                if guards is not None:
                    guards[position] = guard
            text_len = span[1] - span[0]
            lengths = LengthGuard(text_len, stop, *item.length_guard) if item.length_guard else None
            rows.append(_Row(position, item, pad, bos.clone(), guard, lengths))

        weight = None
        past: Any = None
        step = 0
        try:
            while rows:
                if tap is not None:
                    tap.rows = tuple(range(0, len(rows) * per, per))
                    with tapping(tap):
                        out = t3.tfmr(inputs_embeds=inputs, attention_mask=mask, position_ids=positions,
                                      past_key_values=past, use_cache=True, return_dict=True)
                else:
                    out = t3.tfmr(inputs_embeds=inputs, attention_mask=mask, position_ids=positions,
                                  past_key_values=past, use_cache=True, return_dict=True)
                past = out.past_key_values
                logits = t3.speech_head(out.last_hidden_state[:, -1, :])
                del out
                if cfg:
                    cond, uncond = logits[0::per], logits[1::per]
                    if weight is None:
                        weight = torch.as_tensor(sampling.cfg_weight, dtype=cond.dtype, device=cond.device)
                    logits = cond + weight * (cond - uncond)
                maps = tap.mean() if tap is not None else None

                keep: list[int] = []
                sampled: list[torch.Tensor] = []
                for j, row in enumerate(rows):
                    row_logits = logits[j:j + 1]
                    if row.guard is not None:
                        assert maps is not None
                        attention = unpadded_map(maps[j], row.pad, prefill=step == 0)
                        row_logits = row.guard.step(attention, row_logits, int(row.generated[0, -1]))
                    if row.lengths is not None:
                        row_logits = row.lengths.step(step, row_logits)
                    limits = row.item.limits
                    if limits.ignore_stop or step < limits.min_new_tokens:
                        row_logits[:, stop] = -float("inf")
                    row_logits = repetition(row.generated, row_logits)
                    if sampling.temperature != 1.0:
                        row_logits = row_logits / sampling.temperature
                    row_logits = top_p(row.generated, min_p(row.generated, row_logits))
                    probs = torch.softmax(row_logits, dim=-1)
                    token = torch.multinomial(probs, num_samples=1, generator=row.item.generator)
                    value = int(token.item())
                    if value == stop:
                        yield TokenEvent(row.position, None, stop_reason(len(row.tokens), limits, row.guard))
                        continue
                    row.tokens.append(value)
                    yield TokenEvent(row.position, value)
                    if len(row.tokens) >= limits.max_new_tokens:
                        yield TokenEvent(row.position, None, stop_reason(len(row.tokens), limits, row.guard))
                        continue
                    row.generated = torch.cat([row.generated, token], dim=1)
                    keep.append(j)
                    sampled.append(token)
                del logits, maps

                if len(keep) < len(rows):
                    rows = [rows[j] for j in keep]
                    if not rows:
                        break
                    index = torch.tensor([j * per + r for j in keep for r in range(per)],
                                         dtype=torch.long, device=mask.device)
                    past.batch_select_indices(index)
                    mask, positions = mask[index], positions[index]
                    mask = _trim_common_padding(past, mask, rows)
                tokens = torch.cat(sampled, dim=0)  # (n, 1)
                embed = t3.speech_emb(tokens) + t3.speech_pos_emb.get_fixed_embedding(step + 1)
                inputs = embed.repeat_interleave(per, dim=0)
                mask = torch.cat([mask, mask.new_ones(mask.size(0), 1)], dim=1)
                positions = positions[:, -1:] + 1
                step += 1
        finally:
            del past
            if tap is not None:
                tap.latest.clear()
                tap.layer_maps.clear()


def _trim_common_padding(past: Any, mask: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """Cut the front columns that are padding for every remaining row off the cache
    and the mask (they get no attention weight; they only cost compute)."""
    common = min(row.pad for row in rows)
    if common <= 0:
        return mask
    for layer in getattr(past, "layers", ()):
        if getattr(layer, "keys", None) is None or layer.keys.dim() != 4:
            return mask  # an unknown cache layout: keep the padding, it is harmless
    for layer in past.layers:
        layer.keys = layer.keys[:, :, common:]
        layer.values = layer.values[:, :, common:]
    for row in rows:
        row.pad -= common
    return mask[:, common:]


# -- how many segments per batch -------------------------------------------------------


def kv_cache_bytes_per_row(config: Any, dtype: torch.dtype, tokens: int) -> int:
    """Bytes of KV cache one batch row holds at ``tokens`` positions:
    layers x 2 (keys, values) x kv heads x head dim x dtype bytes x tokens."""
    heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    item = torch.empty(0, dtype=dtype).element_size()
    return int(config.num_hidden_layers) * 2 * heads * head_dim * item * int(tokens)


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory free for a batch on ``device``: CUDA's free memory, or on the CPU
    ``MemAvailable`` from /proc/meminfo; ``None`` when it cannot be known."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return _mem_available(Path("/proc/meminfo"))
    return None


def _mem_available(meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def auto_batch_size(free_bytes: int | None, bytes_per_segment: int, *, device_type: str) -> int:
    """Segments per batch: as many KV caches as fit in a fraction of the free
    memory, at least 1, at most the device type's cap (:data:`AUTO_CAP`).
    Unknown free memory gives the cap of a CPU."""
    cap = AUTO_CAP.get(device_type, AUTO_CAP["cpu"])
    if free_bytes is None:
        return min(cap, AUTO_CAP["cpu"])
    fraction = CUDA_MEMORY_FRACTION if device_type == "cuda" else CPU_MEMORY_FRACTION
    fits = math.floor(free_bytes * fraction / max(1, bytes_per_segment))
    return max(1, min(cap, fits))


# -- batches that shrink when memory runs out --------------------------------------------


#: How allocators word a failed allocation: CUDA and MPS say "out of memory"; torch's CPU
#: allocator says "can't allocate memory" (its errno text reads "Cannot allocate memory").
OUT_OF_MEMORY_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """``torch.cuda.OutOfMemoryError``, ``MemoryError``, or a RuntimeError that says an
    allocation failed (CPU allocator, MPS)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if (oom is not None and isinstance(exc, oom)) or isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(w in text for w in OUT_OF_MEMORY_WORDS)


class BatchOutOfMemory(RuntimeError):
    """A batch of one segment still ran out of memory; ``item`` is that segment."""

    def __init__(self, item: Any, cause: BaseException) -> None:
        super().__init__(f"out of memory with a batch of one: {type(cause).__name__}: {cause}")
        self.item = item
        self.cause = cause


T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchRun(Generic[T, R]):
    """One batch that ran: its items, their results (same order) and the size limit then."""

    items: list[T]
    results: list[R]
    limit: int


def ramp_sizes(batch_size: int) -> Callable[[int], int]:
    """Look-ahead schedule: batch ``k`` has ``2 ** (k + 1)`` segments, up to ``batch_size``
    (short batches first, so the audio buffered ahead of playback grows quickly)."""
    return lambda k: max(1, min(batch_size, 2 ** (k + 1)))


def shrinking_batches(items: Sequence[T], batch_size: int, run: Callable[[list[T]], list[R]], *,
                      sizes: Callable[[int], int] | None = None,
                      is_oom: Callable[[BaseException], bool] = is_out_of_memory,
                      on_shrink: Callable[[int, BaseException], None] | None = None,
                      ) -> Iterator[BatchRun[T, R]]:
    """Run ``items`` in consecutive batches of up to ``batch_size``, lazily, in order.

    ``sizes(k)`` (default: always ``batch_size``) is the wanted size of batch
    ``k``. A batch whose ``run`` raises an out-of-memory error (``is_oom``) is
    retried from scratch at half its size, and later batches stay at most that
    size; no item is lost or repeated. A batch of one that still runs out of
    memory raises :class:`BatchOutOfMemory` naming the item. Other errors
    propagate.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    want = sizes or (lambda _k: batch_size)
    limit, start, k = batch_size, 0, 0
    while start < len(items):
        group = list(items[start:start + max(1, min(limit, want(k)))])
        try:
            results = run(group)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
            if not is_oom(exc):
                raise
            if len(group) == 1:
                raise BatchOutOfMemory(group[0], exc) from exc
            limit = len(group) // 2
            _release_cached_memory()
            if on_shrink is not None:
                on_shrink(limit, exc)
            continue
        if len(results) != len(group):
            raise RuntimeError(f"a batch of {len(group)} returned {len(results)} results")
        yield BatchRun(group, list(results), limit)
        start += len(group)
        k += 1


def _release_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = [
    "AUTO_CAP",
    "BatchItem",
    "BatchOutOfMemory",
    "BatchRun",
    "BatchedSpeechTokenLoop",
    "RowResult",
    "TokenEvent",
    "auto_batch_size",
    "free_memory_bytes",
    "is_out_of_memory",
    "kv_cache_bytes_per_row",
    "left_pad",
    "ramp_sizes",
    "shrinking_batches",
    "unpadded_map",
]
