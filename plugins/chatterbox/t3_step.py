"""The one T3 step: rows of segments in flight, one forward pass per step for all of them.

Both the one-segment path (streaming a segment chunk by chunk) and continuous
batching run :class:`T3Batch`; a segment alone is a batch of one row. Each step
either prefills the segments that join (and samples their first tokens) or
runs one decode step of every row in flight:

* each segment has two rows under CFG (conditional, then unconditional with its
  text embeddings zeroed), in segment order;
* prefills of different lengths are LEFT-padded, with an attention mask and
  explicit position ids (``cumsum(mask) - 1``), so that every row's RoPE
  positions equal its positions alone; decode steps continue each row's own
  positions, and padding keys get no attention weight;
* sampling is per segment, exactly as ``T3.inference`` samples
  (:class:`.t3_stream.TokenSampler`): CFG, alignment guard, length guard, stop
  masking, repetition penalty over that segment's own ids, temperature, min-p,
  top-p, one ``torch.multinomial`` draw from that segment's own generator;
* a segment that stops (stop token, its own length limit) leaves the batch with
  its result (:class:`seqopt_core.engine.GeneratedSegment`: tokens, why it
  stopped, its share of the step time, its alignment guard): its rows are
  dropped from the KV cache, the mask and the positions, and padding columns no
  remaining row needs are cut off the front of the cache;
* rows that join a running batch are prefilled together and appended (the
  narrower of the two KV caches is left-padded to the other's length);
* the KV cache is a :class:`.kv_cache.GrowingCache`: steps append in place.

Each row carries its own alignment guard and length guard, so rows of several
streams can share a batch. Which rows join, and when, is the scheduler's
decision (:mod:`seqopt_core.scheduler`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from seqopt_core.engine import GeneratedSegment

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


@dataclass(frozen=True)
class BatchItem:
    """One segment's input to a T3 batch.

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
class RowStep:
    """One row's outcome of one step: ``token`` sampled (``None`` when it was the stop
    token), ``finished`` on the row's last step."""

    key: Any
    token: int | None
    finished: GeneratedSegment | None = None


@dataclass
class _Row:
    """Per-segment state while it is in the batch."""

    key: Any
    item: BatchItem
    #: Padding columns in front of this row's keys (they get no attention weight).
    pad: int
    #: Speech ids so far, start token first (what the repetition penalty reads).
    generated: torch.Tensor
    guard: AlignmentGuard | None
    lengths: LengthGuard | None
    text_tokens: int
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


@dataclass
class RowsInFlight:
    """The rows in flight: their KV cache, attention mask (one column per cached
    position) and each row's last position id. Shared by :class:`T3Batch` and Turbo's
    :class:`.turbo_t3.TurboT3Batch`: a row needs only ``key`` and ``pad``."""

    rows: list[_Row]
    past: GrowingCache
    mask: torch.Tensor
    positions: torch.Tensor

    def keep(self, keep: list[int], per: int) -> RowsInFlight | None:
        """These rows without the ones not in ``keep`` (indexes into ``rows``); finished
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
        return RowsInFlight(rows, self.past, mask, self.positions[index])

    def join(self, other: RowsInFlight | None, limit: int) -> RowsInFlight:
        """These rows with ``other``'s after them: the narrower cache is left-padded
        (zero keys and values, mask 0) to the wider one's length."""
        if other is None:
            return self
        ours, theirs = self.past.get_seq_length(), other.past.get_seq_length()
        wide = max(ours, theirs)
        for rows, extra in ((self.rows, wide - ours), (other.rows, wide - theirs)):
            for row in rows:
                row.pad += extra
        past = self.past.concatenate_rows(other.past)
        for layer in past.layers:
            layer.limit = limit

        def widen(mask: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(mask, (wide - mask.size(1), 0), value=0)

        return RowsInFlight(self.rows + other.rows, past, torch.cat([widen(self.mask), widen(other.mask)]),
                     torch.cat([self.positions, other.positions]))


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


class RowBatch:
    """What :class:`T3Batch` and Turbo's :class:`.turbo_t3.TurboT3Batch` share: the rows in
    flight (:class:`RowsInFlight`), a step that prefills the rows joining or else runs one
    decode step of every row, rows leaving on ``drop``, and ``close``. A subclass sets
    ``per`` (KV cache rows per segment: 2 under CFG) and implements ``_prefill`` and
    ``_decode``; ``_step_context`` wraps each step and ``_release`` frees its own state."""

    per = 1

    def __init__(self) -> None:
        self._running: RowsInFlight | None = None
        #: The KV cache's capacity for the rows in flight (see :meth:`RowsInFlight.join`).
        self._limit = 0
        #: A step raised (out of memory, say): cached device memory is released on close.
        self._failed = False

    @property
    def rows(self) -> int:
        return 0 if self._running is None else len(self._running.rows)

    def step(self, joining: Sequence[tuple[Any, Any]] = ()) -> list[RowStep]:
        """Prefill ``joining`` (``(key, item)`` pairs) and sample their first tokens,
        or, with nothing joining, one decode step of every row in flight."""
        try:
            with self._step_context():
                if joining:
                    fresh, steps = self._prefill(joining)
                    if self._running is None:
                        self._running = fresh
                    else:
                        self._running = self._running.join(fresh, self._limit)
                    return steps
                if self._running is None:
                    return []
                self._running, steps = self._decode(self._running)
                return steps
        except BaseException:
            self._failed = True
            raise

    def drop(self, keys: Sequence[Any]) -> None:
        """The rows joined with these keys leave the batch now (their KV cache rows go);
        the others go on as if nothing happened."""
        if self._running is None:
            return
        gone = set(map(id, keys))
        keep = [j for j, row in enumerate(self._running.rows) if id(row.key) not in gone]
        self._running = self._running.keep(keep, self.per)

    def close(self) -> None:
        self._running = None
        self._release()
        if self._failed and torch.cuda.is_available():
            torch.cuda.empty_cache()  # what the failed step held, for the next, narrower batch

    def _step_context(self) -> Any:
        return contextlib.nullcontext()

    def _release(self) -> None:
        """Free the subclass's own per-batch state (on :meth:`close`)."""

    def _prefill(self, joining: Sequence[tuple[Any, Any]]) -> tuple[RowsInFlight | None, list[RowStep]]:
        raise NotImplementedError

    def _decode(self, running: RowsInFlight) -> tuple[RowsInFlight | None, list[RowStep]]:
        raise NotImplementedError


class T3Batch(RowBatch):
    """Segments generated together by T3, one step at a time (see the module doc).

    It uses the attention implementation set on the model; with ``alignment`` it
    must be one that records the aligned heads (``seqopt_eager``,
    ``seqopt_sdpa_aligned``). Rows are identified by the ``key`` they join with.
    """

    def __init__(self, t3: Any, sampling: SamplingOptions, alignment: AlignmentOptions | None = None) -> None:
        self.t3, self.hp, self.sampling, self.alignment = t3, t3.hp, sampling, alignment
        self.per = 2 if sampling.cfg_weight > 0.0 else 1
        self.stop = self.hp.stop_speech_token
        self.sampler = TokenSampler(sampling, self.stop)
        self.bos = torch.tensor([[self.hp.start_speech_token]], dtype=torch.long, device=t3.device)
        self.tap = None
        if alignment is not None:
            config = t3.tfmr.config
            check_heads(alignment.heads, config.num_hidden_layers, config.num_attention_heads)
            self.tap = AttentionTap(alignment.heads, keep_all_layers=alignment.keep_all_layers)
        super().__init__()

    def _release(self) -> None:
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

    def _prefill(self, joining: Sequence[tuple[Any, BatchItem]]) -> tuple[RowsInFlight | None, list[RowStep]]:
        t3, per = self.t3, self.per
        embeds, rows = [], []
        for key, item in joining:
            text = torch.atleast_2d(item.text_tokens).to(dtype=torch.long, device=t3.device)
            if text.size(0) != per:
                raise ValueError(f"each item's text tokens need {per} row(s) with cfg_weight="
                                 f"{self.sampling.cfg_weight}, got {text.size(0)}")
            emb, span = prompt_embeds(t3, item.t3_cond, text, self.sampling.cfg_weight)
            embeds.append(emb)
            guard = None
            if self.alignment is not None:
                guard = AlignmentGuard(span, self.stop, repetition_run=self.alignment.repetition_run)
            lengths = LengthGuard(span[1] - span[0], self.stop, *item.length_guard) if item.length_guard else None
            rows.append(_Row(key, item, 0, self.bos.clone(), guard, lengths, int(text.size(-1))))
            self._limit = max(self._limit, COND_TOKENS_BOUND + int(text.size(-1)) + 1
                              + item.limits.max_new_tokens)
        inputs, mask, positions, pads = left_pad(embeds)
        del embeds
        for row, pad in zip(rows, pads):
            row.pad = pad
        past = growing_cache(t3.tfmr.config, limit=self._limit)
        logits, maps, seconds = self._forward(inputs, mask, positions, past, len(rows))
        fresh = RowsInFlight(rows, past, mask, positions[:, -1:])
        keep, steps = self._sample(fresh, logits, maps, seconds, prefill=True)
        return fresh.keep(keep, per), steps

    def _decode(self, running: RowsInFlight) -> tuple[RowsInFlight | None, list[RowStep]]:
        t3, per = self.t3, self.per
        last = torch.cat([row.generated[:, -1:] for row in running.rows], dim=0)  # (n, 1)
        steps = torch.tensor([[row.step] for row in running.rows], device=last.device)
        embed = t3.speech_emb(last) + t3.speech_pos_emb.get_fixed_embedding(steps)
        inputs = embed.repeat_interleave(per, dim=0)
        running.mask = torch.cat([running.mask, running.mask.new_ones(running.mask.size(0), 1)], dim=1)
        running.positions = running.positions + 1
        logits, maps, seconds = self._forward(inputs, running.mask, running.positions, running.past,
                                              len(running.rows))
        keep, out = self._sample(running, logits, maps, seconds, prefill=False)
        return running.keep(keep, per), out

    def _sample(self, batch: RowsInFlight, logits: torch.Tensor, maps: torch.Tensor | None,
                seconds: float, *, prefill: bool) -> tuple[list[int], list[RowStep]]:
        """Sample each row's next token exactly as ``T3.inference`` does; the indexes
        (into ``batch.rows``) of the rows still going, and each row's step. ``seconds``
        (the forward pass's) is shared evenly among the rows."""
        stop = self.stop
        keep: list[int] = []
        out: list[RowStep] = []
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
            sampled = None if value == stop else value
            if sampled is not None:
                row.tokens.append(value)
            if sampled is None or len(row.tokens) >= limits.max_new_tokens:
                out.append(RowStep(row.key, sampled, GeneratedSegment(
                    tuple(row.tokens), stop_reason(len(row.tokens), limits, row.guard),
                    row.text_tokens, row.seconds, row.guard)))
                continue
            out.append(RowStep(row.key, sampled))
            row.generated = torch.cat([row.generated, token], dim=1)
            row.step += 1
            keep.append(j)
        return keep, out


__all__ = ["COND_TOKENS_BOUND", "BatchItem", "RowStep", "T3Batch", "left_pad", "unpadded_map"]
