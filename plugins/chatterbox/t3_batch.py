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
  cut off the front of the cache;
* continuous batching: with more segments than ``max_active``, the next waiting
  segment is prefilled as soon as one ends and joins the running batch (the
  narrower of the two KV caches is left-padded to the other's length), so the
  batch stays full instead of draining to its longest segment;
* the KV cache is a :class:`.kv_cache.GrowingCache`: steps append in place.

Also here: how many segments fit in memory (:func:`auto_batch_size`), and results
in segment order from a generation whose width halves when it runs out of memory
(:func:`ordered_results`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from seqopt_core.system import available_memory_bytes

from .alignment import AlignmentGuard, LengthGuard
from .attention_kernels import AttentionTap, check_heads, tapping
from .kv_cache import GrowingCache, growing_cache
from .t3_stream import (
    AlignmentOptions,
    LengthLimits,
    SamplingOptions,
    TokenSampler,
    guided_logits,
    prompt_embeds,
    stop_reason,
)

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
    #: On a segment's last event: its share of the T3 time (each forward pass's
    #: time split evenly among the segments in it).
    seconds: float = 0.0


@dataclass
class RowResult:
    """A segment's outcome: its tokens (stop token excluded) and why it stopped."""

    tokens: list[int] = field(default_factory=list)
    stopped_by: str = ""
    guard: AlignmentGuard | None = None
    #: Its share of the T3 time (see :attr:`TokenEvent.seconds`).
    seconds: float = 0.0


@dataclass
class _Row:
    """Per-segment state while it is in the batch."""

    position: int
    item: BatchItem
    #: Padding columns in front of this row's keys (they get no attention weight).
    pad: int
    #: Speech ids so far, start token first (what the repetition penalty reads).
    generated: torch.Tensor
    guard: AlignmentGuard | None
    lengths: LengthGuard | None
    tokens: list[int] = field(default_factory=list)
    #: Decode steps done: the next sample is this row's step ``step``.
    step: int = 0
    #: Its share of the forward passes' time so far.
    seconds: float = 0.0


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
                 alignment: AlignmentOptions | None = None,
                 max_active: Width = None) -> list[RowResult]:
        """Run every item to its end; results in item order (see :meth:`events`)."""
        results = [RowResult() for _ in items]
        guards: dict[int, AlignmentGuard] = {}
        for event in self.events(items, sampling=sampling, alignment=alignment, guards=guards,
                                 max_active=max_active):
            if event.token is not None:
                results[event.position].tokens.append(event.token)
            else:
                results[event.position].stopped_by = event.stopped_by or ""
                results[event.position].seconds = event.seconds
        for position, guard in guards.items():
            results[position].guard = guard
        return results

    @torch.inference_mode()
    def events(self, items: Sequence[BatchItem], *, sampling: SamplingOptions,
               alignment: AlignmentOptions | None = None,
               guards: dict[int, AlignmentGuard] | None = None,
               max_active: Width = None) -> Iterator[TokenEvent]:
        """Yield each sampled token and each segment's end as they happen.

        At most ``max_active`` items (default: all) are in the batch at once;
        when one ends, the next waiting item is prefilled and joins the running
        batch (continuous batching), so the batch stays full until the items run
        out. ``max_active`` may be a function of how many items have ended (a
        ramp: few rows first, so the first results come soon). Items join in
        order; tokens of one step come in the order the rows joined. ``guards`` (if given) receives each item's alignment guard, by
        position. Closing the iterator early drops the KV cache with the
        generator's frame.
        """
        if not items:
            return
        if isinstance(max_active, int) and max_active < 1:
            raise ValueError(f"max_active must be at least 1, got {max_active}")
        step = _Stepper(self.t3, items, sampling, alignment, guards)
        waiting = list(range(len(items)))
        running: _Batch | None = None
        try:
            while waiting or running is not None:
                width = _width(max_active, len(items), step.ended)
                if waiting and (running is None or len(running.rows) < width):
                    free = width - (0 if running is None else len(running.rows))
                    joining, waiting = waiting[:free], waiting[free:]
                    fresh = yield from step.prefill(joining)
                    running = fresh if running is None else running.join(fresh)
                    continue
                assert running is not None
                running = yield from step.decode(running)
        finally:
            running = None
            step.close()


#: How many items may be in the batch at once: a number, ``None`` (all), or a function
#: of how many items have ended so far.
Width = int | Callable[[int], int] | None


def _width(max_active: Width, items: int, ended: int) -> int:
    if max_active is None:
        return items
    width = max_active(ended) if callable(max_active) else max_active
    return max(1, int(width))


@dataclass
class _Batch:
    """The rows in flight: their KV cache, attention mask (one column per cached
    position) and each row's last position id. ``None`` stands for an empty batch."""

    rows: list[_Row]
    past: GrowingCache
    mask: torch.Tensor
    positions: torch.Tensor

    def keep(self, keep: list[int], per: int) -> _Batch | None:
        """The batch without the rows not in ``keep`` (indexes into ``rows``); finished
        rows leave the cache, and padding no remaining row needs is cut off."""
        if len(keep) == len(self.rows):
            return self
        if not keep:
            return None
        rows = [self.rows[j] for j in keep]
        index = torch.tensor([j * per + r for j in keep for r in range(per)],
                             dtype=torch.long, device=self.mask.device)
        self.past.batch_select_indices(index)
        mask = _trim_common_padding(self.past, self.mask[index], rows)
        return _Batch(rows, self.past, mask, self.positions[index])

    def join(self, other: _Batch | None) -> _Batch:
        """This batch with ``other``'s rows after its own: the narrower cache is
        left-padded (zero keys and values, mask 0) to the wider one's length."""
        if other is None:
            return self
        ours, theirs = self.past.get_seq_length(), other.past.get_seq_length()
        wide = max(ours, theirs)
        for rows, extra in ((self.rows, wide - ours), (other.rows, wide - theirs)):
            for row in rows:
                row.pad += extra
        past = self.past.concatenate_rows(other.past)

        def widen(mask: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(mask, (wide - mask.size(1), 0), value=0)

        return _Batch(self.rows + other.rows, past, torch.cat([widen(self.mask), widen(other.mask)]),
                      torch.cat([self.positions, other.positions]))


class _Stepper:
    """One generation's fixed parts (model, sampling, alignment tap) and its two
    kinds of forward pass: prefilling joining rows and one decode step."""

    def __init__(self, t3: Any, items: Sequence[BatchItem], sampling: SamplingOptions,
                 alignment: AlignmentOptions | None, guards: dict[int, AlignmentGuard] | None) -> None:
        self.t3, self.hp, self.items, self.sampling = t3, t3.hp, items, sampling
        self.alignment, self.guards = alignment, guards
        self.per = 2 if sampling.cfg_weight > 0.0 else 1
        self.stop = self.hp.stop_speech_token
        self.sampler = TokenSampler(sampling, self.stop)
        self.bos = torch.tensor([[self.hp.start_speech_token]], dtype=torch.long, device=t3.device)
        self.tap = None
        if alignment is not None:
            config = t3.tfmr.config
            check_heads(alignment.heads, config.num_hidden_layers, config.num_attention_heads)
            self.tap = AttentionTap(alignment.heads, keep_all_layers=alignment.keep_all_layers)
        #: Items that have ended so far.
        self.ended = 0
        #: Longest a row's cache can get: the longest prompt plus the most tokens.
        self.limit = max(COND_TOKENS_BOUND + torch.atleast_2d(i.text_tokens).size(-1) + 1
                         + i.limits.max_new_tokens for i in items)

    def close(self) -> None:
        if self.tap is not None:
            self.tap.latest.clear()
            self.tap.layer_maps.clear()

    def _forward(self, inputs: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 past: GrowingCache, rows: int) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        """Logits (after CFG) of each row's last position, the aligned heads' mean map
        per row, and the seconds it took."""
        t3 = self.t3
        started = time.perf_counter()
        kwargs = dict(inputs_embeds=inputs, attention_mask=mask, position_ids=positions,
                      past_key_values=past, use_cache=True, return_dict=True)
        if self.tap is not None:
            self.tap.rows = tuple(range(0, rows * self.per, self.per))
            with tapping(self.tap):
                out = t3.tfmr(**kwargs)
        else:
            out = t3.tfmr(**kwargs)
        logits = guided_logits(t3.speech_head(out.last_hidden_state[:, -1, :]), self.sampling.cfg_weight)
        del out
        maps = self.tap.mean() if self.tap is not None else None
        if logits.device.type == "cuda":  # kernels run asynchronously: time them, not their launch
            torch.cuda.synchronize(logits.device)  # (sampling's .item() would wait here anyway)
        return logits, maps, time.perf_counter() - started

    def prefill(self, positions_: list[int]) -> Iterator[TokenEvent]:
        """Prefill the items at ``positions_`` as one left-padded batch, sample their
        first tokens; returns (as the generator's value) the batch of those still going."""
        t3, per = self.t3, self.per
        embeds, rows = [], []
        for position in positions_:
            item = self.items[position]
            text = torch.atleast_2d(item.text_tokens).to(dtype=torch.long, device=t3.device)
            if text.size(0) != per:
                raise ValueError(f"each item's text tokens need {per} row(s) with cfg_weight="
                                 f"{self.sampling.cfg_weight}, got {text.size(0)}")
            emb, span = prompt_embeds(t3, item.t3_cond, text, self.sampling.cfg_weight)
            embeds.append(emb)
            guard = None
            if self.alignment is not None:
                guard = AlignmentGuard(span, self.stop, repetition_run=self.alignment.repetition_run)
                if self.guards is not None:
                    self.guards[position] = guard
            lengths = LengthGuard(span[1] - span[0], self.stop, *item.length_guard) if item.length_guard else None
            rows.append(_Row(position, item, 0, self.bos.clone(), guard, lengths))
        inputs, mask, positions, pads = left_pad(embeds)
        del embeds
        for row, pad in zip(rows, pads):
            row.pad = pad
        past = growing_cache(t3.tfmr.config, limit=self.limit)
        logits, maps, seconds = self._forward(inputs, mask, positions, past, len(rows))
        batch = _Batch(rows, past, mask, positions[:, -1:])
        keep = yield from self._sample(batch, logits, maps, seconds, prefill=True)
        return batch.keep(keep, per)

    def decode(self, batch: _Batch) -> Iterator[TokenEvent]:
        """One decode step of every row in ``batch``; returns the batch of the rows still going."""
        t3, per = self.t3, self.per
        last = torch.cat([row.generated[:, -1:] for row in batch.rows], dim=0)  # (n, 1)
        steps = torch.tensor([[row.step] for row in batch.rows], device=last.device)
        embed = t3.speech_emb(last) + t3.speech_pos_emb.get_fixed_embedding(steps)
        inputs = embed.repeat_interleave(per, dim=0)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones(batch.mask.size(0), 1)], dim=1)
        batch.positions = batch.positions + 1
        logits, maps, seconds = self._forward(inputs, batch.mask, batch.positions, batch.past,
                                              len(batch.rows))
        keep = yield from self._sample(batch, logits, maps, seconds, prefill=False)
        return batch.keep(keep, per)

    def _sample(self, batch: _Batch, logits: torch.Tensor, maps: torch.Tensor | None,
                seconds: float, *, prefill: bool) -> Iterator[TokenEvent]:
        """Sample each row's next token exactly as the one-segment loop does; yields the
        events and returns the indexes (into ``batch.rows``) of the rows still going.
        ``seconds`` (the forward pass's) is shared evenly among the rows."""
        stop = self.stop
        keep: list[int] = []
        share = seconds / len(batch.rows)
        for j, row in enumerate(batch.rows):
            row.seconds += share
            limits = row.item.limits
            attention = None
            if row.guard is not None:
                assert maps is not None
                attention = unpadded_map(maps[j], row.pad, prefill=prefill)
            token = self.sampler.draw(logits[j:j + 1], row.generated, step=row.step, limits=limits,
                                      generator=row.item.generator, guard=row.guard,
                                      attention=attention, lengths=row.lengths)
            value = int(token.item())
            if value != stop:
                row.tokens.append(value)
                yield TokenEvent(row.position, value)
            if value == stop or len(row.tokens) >= limits.max_new_tokens:
                self.ended += 1
                yield TokenEvent(row.position, None, stop_reason(len(row.tokens), limits, row.guard),
                                 row.seconds)
                continue
            row.generated = torch.cat([row.generated, token], dim=1)
            row.step += 1
            keep.append(j)
        return keep


def _trim_common_padding(past: Any, mask: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """Cut the front columns that are padding for every remaining row off the cache
    and the mask (they get no attention weight; they only cost compute)."""
    common = min(row.pad for row in rows)
    if common <= 0:
        return mask
    past.drop_front(common)
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
    """Memory free for a batch on ``device``: CUDA's free memory, or on the CPU the
    system's available memory (psutil); ``None`` when it cannot be known (MPS)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return available_memory_bytes()
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


def ramp_sizes(batch_size: int) -> Callable[[int], int]:
    """Look-ahead ramp: with ``k`` segments ended, up to ``2 ** (k + 1)`` in the batch,
    at most ``batch_size`` (a short batch first, so the first results come soon and
    the audio buffered ahead of playback grows quickly)."""
    return lambda k: max(1, min(batch_size, 2 ** (k + 1)))


def ordered_results(items: Sequence[T], batch_size: int,
                    run: Callable[[list[T], Width], Iterator[tuple[int, R]]], *,
                    ramp: Callable[[int], int] | None = None,
                    is_oom: Callable[[BaseException], bool] = is_out_of_memory,
                    on_shrink: Callable[[int, BaseException], None] | None = None,
                    ) -> Iterator[tuple[T, R]]:
    """``(item, result)`` for every item, in item order, lazily.

    ``run(items, width)`` generates results by continuous batching with at most
    ``width`` items at once (a number, or a function of how many have ended) and
    yields ``(index into its items, result)`` as each ends, in any order; results
    that come early wait here for the ones before them. ``ramp(k)`` (optional)
    caps the width after ``k`` items have ended. When ``run`` raises an
    out-of-memory error (``is_oom``), the items without a result start again in a
    new ``run`` at half the width in use, and the width never grows back; no item
    is lost or repeated. At width one, out of memory raises :class:`BatchOutOfMemory`
    naming the first item without a result. Other errors propagate.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    done: dict[int, R] = {}
    limit, k = batch_size, 0
    while k < len(items):
        todo = [i for i in range(k, len(items)) if i not in done]

        def width(ended: int, limit: int = limit) -> int:
            return max(1, min(limit, ramp(ended))) if ramp is not None else limit

        ended = 0
        stream = run([items[i] for i in todo], width if ramp is not None else limit)
        try:
            for j, result in stream:
                done[todo[j]] = result
                ended += 1
                while k in done:
                    yield items[k], done.pop(k)
                    k += 1
        except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
            if not is_oom(exc):
                raise
            in_use = width(ended)
            if in_use <= 1:
                first = next(i for i in todo if i not in done)
                raise BatchOutOfMemory(items[first], exc) from exc
            limit = in_use // 2
            _release_cached_memory()
            if on_shrink is not None:
                on_shrink(limit, exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()


def _release_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = [
    "AUTO_CAP",
    "BatchItem",
    "BatchOutOfMemory",
    "BatchedSpeechTokenLoop",
    "RowResult",
    "TokenEvent",
    "Width",
    "auto_batch_size",
    "free_memory_bytes",
    "is_out_of_memory",
    "kv_cache_bytes_per_row",
    "left_pad",
    "ramp_sizes",
    "ordered_results",
    "unpadded_map",
]
