"""Chatterbox Turbo's T3 loop, batched: GPT-2 T3 without CFG, one step at a time.

It reproduces chatterbox-tts 0.1.7's ``T3.inference_turbo`` step for step, so
that with the same seed (or the same generator) and attention implementation a
segment gets the same speech tokens, alone or batched with others
(``tests/test_turbo_t3.py`` checks both). It is :class:`.t3_step.T3Batch`'s
counterpart for Turbo, with the same interface (``rows``, ``step``, ``drop``,
``close``) and the same row bookkeeping (:class:`.t3_step.RowsInFlight`: left-padded
prefill with an attention mask and explicit position ids, a
:class:`.kv_cache.GrowingCache`, rows joining and leaving). What differs from
the English loop, all as upstream's ``inference_turbo`` does it:

* one row per segment (no CFG);
* the prefill is ``prepare_input_embeds(cond, text, start speech token)``
  alone: no second start token, no T3 position embeddings (GPT-2 adds its own
  learned ones from the position ids); a decode step feeds
  ``speech_emb(token)`` only;
* sampling is a ``LogitsProcessorList`` in upstream's order: temperature,
  top-k, top-p, then the repetition penalty; the penalty reads the start token
  at the first step and the sampled ids (start token not included) after that;
* upstream checks for the stop token only after decode steps, so a stop token
  sampled right after the prefill does not end the segment: it is returned as a
  token (id 6562, a special id the vocoder's ``decodable`` drops, as Turbo's
  ``generate`` drops ids >= 6561) and fed back as upstream feeds it;
* a step whose processed logits are all ``-inf`` ends the row without a token
  (upstream's ``break``).

The length limit (:class:`.t3_stream.LengthLimits`) is the row's own: upstream's
``max_gen_len=n`` is ``max_new_tokens=n + 1``; ``ignore_stop`` (benchmark mode)
and ``min_new_tokens`` mask the stop token's logit before the processors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from seqopt_core.engine import GeneratedSegment

from .kv_cache import growing_cache
from .t3_stream import LengthLimits, stop_reason
from .t3_step import RowBatch, RowStep, RowsInFlight, left_pad

@dataclass(frozen=True)
class TurboSampling:
    """Turbo's sampling settings, with ``ChatterboxTurboTTS.generate``'s defaults
    (Turbo has no CFG, min-p or exaggeration: upstream ignores them)."""

    temperature: float = 0.8
    top_k: int = 1000
    top_p: float = 0.95
    repetition_penalty: float = 1.2


@dataclass(frozen=True)
class TurboBatchItem:
    """One segment's input to a :class:`TurboT3Batch`.

    ``text_tokens`` is what :func:`turbo_text_tokens` returns, ``(1, L)``; ``t3_cond``
    the voice's ``T3Cond`` (``prepare_input_embeds`` caches the prompt's embedding in
    it, as upstream does). ``generator`` is the segment's own (``None``: the global RNG).
    """

    t3_cond: Any
    text_tokens: torch.Tensor
    limits: LengthLimits
    generator: torch.Generator | None = None


def turbo_text_ids(tokenizer: Any, text: str) -> torch.Tensor:
    """``text`` as ``ChatterboxTurboTTS.generate`` tokenizes it, ``(1, n)`` long on the CPU:
    Turbo's own ``punc_norm``, then the GPT-2 tokenizer (no start or stop text tokens)."""
    from chatterbox.tts_turbo import punc_norm

    return tokenizer(punc_norm(text), return_tensors="pt", padding=True, truncation=True).input_ids


def turbo_text_tokens(tokenizer: Any, text: str, device: torch.device | str) -> torch.Tensor:
    """What ``ChatterboxTurboTTS.generate`` feeds T3 for ``text``: :func:`turbo_text_ids`
    on ``device`` (Turbo adds nothing around them)."""
    return turbo_text_ids(tokenizer, text).to(device)


def turbo_processors(sampling: TurboSampling) -> Any:
    """``inference_turbo``'s ``LogitsProcessorList``: the same processors, same order,
    same conditions for leaving one out."""
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if sampling.temperature > 0 and sampling.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k > 0:
        processors.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        processors.append(TopPLogitsWarper(sampling.top_p))
    if sampling.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
    return processors


@dataclass
class _TurboRow:
    """Per-segment state while it is in the batch (what :class:`.t3_step.RowsInFlight` needs:
    ``key`` and ``pad``; the rest is this loop's)."""

    key: Any
    item: TurboBatchItem
    #: Padding columns in front of this row's keys (they get no attention weight).
    pad: int
    text_tokens: int
    #: Every id sampled so far, a first-step stop token included (what upstream feeds back
    #: and returns); a stop token that ends the row is not added.
    tokens: list[int] = field(default_factory=list)
    #: Samples drawn so far: the next one is this row's step ``step``.
    step: int = 0
    seconds: float = 0.0


class TurboT3Batch(RowBatch):
    """Segments generated together by Turbo's T3 (GPT-2, no CFG), one step at a time.

    The interface is :class:`.t3_step.T3Batch`'s: :meth:`step` prefills the rows that
    join (``(key, TurboBatchItem)`` pairs) and samples their first tokens, or runs one
    decode step of every row in flight; each returns a :class:`.t3_step.RowStep` per
    row, with the row's :class:`seqopt_core.engine.GeneratedSegment` on its last step.
    ``t3`` is upstream's ``T3`` on GPT-2 (``t3.is_gpt``), on its device in eval mode;
    the attention implementation set on it is used as it is.
    """

    def __init__(self, t3: Any, sampling: TurboSampling | None = None) -> None:
        if not getattr(t3, "is_gpt", False):
            raise ValueError("TurboT3Batch runs Turbo's GPT-2 T3; use T3Batch for a Llama T3")
        self.t3, self.hp = t3, t3.hp
        self.sampling = sampling or TurboSampling()
        self.processors = turbo_processors(self.sampling)
        self.stop = int(self.hp.stop_speech_token)
        self.start = int(self.hp.start_speech_token)
        super().__init__()

    def _step_context(self) -> Any:
        return torch.inference_mode()

    # -- the forward passes -------------------------------------------------------------

    def _forward(self, inputs: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 past: Any) -> tuple[torch.Tensor, float]:
        """Each row's speech logits at its last position, and the seconds it took."""
        t3 = self.t3
        started = time.perf_counter()
        out = t3.tfmr(inputs_embeds=inputs, attention_mask=mask, position_ids=positions,
                      past_key_values=past, use_cache=True, return_dict=True)
        logits = t3.speech_head(out.last_hidden_state[:, -1, :])
        del out
        if logits.device.type == "cuda":  # time the kernels, not their launch
            torch.cuda.synchronize(logits.device)
        return logits, time.perf_counter() - started

    def _prefill(self, joining: Sequence[tuple[Any, TurboBatchItem]]) -> tuple[RowsInFlight | None, list[RowStep]]:
        t3 = self.t3
        embeds, rows = [], []
        for key, item in joining:
            text = torch.atleast_2d(item.text_tokens).to(dtype=torch.long, device=t3.device)
            if text.size(0) != 1:
                raise ValueError(f"Turbo has no CFG: each item's text tokens need 1 row, got {text.size(0)}")
            embeds.append(prefill_embeds(t3, item.t3_cond, text))
            rows.append(_TurboRow(key, item, 0, int(text.size(-1))))
            self._limit = max(self._limit, embeds[-1].size(1) + item.limits.max_new_tokens + 1)
        inputs, mask, positions, pads = left_pad(embeds)
        del embeds
        for row, pad in zip(rows, pads):
            row.pad = pad
        past = growing_cache(t3.tfmr.config, limit=self._limit)
        logits, seconds = self._forward(inputs, mask, positions, past)
        fresh = RowsInFlight(rows, past, mask, positions[:, -1:])
        keep, steps = self._sample(fresh, logits, seconds)
        return fresh.keep(keep, 1), steps

    def _decode(self, running: RowsInFlight) -> tuple[RowsInFlight | None, list[RowStep]]:
        t3 = self.t3
        last = torch.tensor([[row.tokens[-1]] for row in running.rows], dtype=torch.long, device=t3.device)
        inputs = t3.speech_emb(last)
        running.mask = torch.cat([running.mask, running.mask.new_ones(running.mask.size(0), 1)], dim=1)
        running.positions = running.positions + 1
        logits, seconds = self._forward(inputs, running.mask, running.positions, running.past)
        keep, out = self._sample(running, logits, seconds)
        return running.keep(keep, 1), out

    # -- sampling -------------------------------------------------------------------------

    def _sample(self, batch: RowsInFlight, logits: torch.Tensor, seconds: float) -> tuple[list[int], list[RowStep]]:
        """Each row's next token as ``inference_turbo`` samples it; the indexes (into
        ``batch.rows``) of the rows still going, and each row's step."""
        keep: list[int] = []
        out: list[RowStep] = []
        share = seconds / len(batch.rows)
        for j, row in enumerate(batch.rows):
            row.seconds += share
            limits = row.item.limits
            value = self._draw(row, logits[j:j + 1])
            ended = value is None or (value == self.stop and row.step > 0)
            if not ended:
                row.tokens.append(value)
                row.step += 1
            if ended or len(row.tokens) >= limits.max_new_tokens:
                out.append(RowStep(row.key, None if ended else value, GeneratedSegment(
                    tuple(row.tokens), stop_reason(len(row.tokens), limits, None),
                    row.text_tokens, row.seconds, None)))
                continue
            out.append(RowStep(row.key, value))
            keep.append(j)
        return keep, out

    def _draw(self, row: _TurboRow, logits: torch.Tensor) -> int | None:
        """One sample for ``row`` from its ``(1, V)`` logits; ``None`` when the processed
        logits are all ``-inf`` (upstream stops there without a token)."""
        limits = row.item.limits
        if limits.ignore_stop or row.step < limits.min_new_tokens:
            logits = logits.clone()
            logits[:, self.stop] = -float("inf")
        history = row.tokens if row.tokens else [self.start]
        ids = torch.tensor([history], dtype=torch.long, device=logits.device)
        processed = self.processors(ids, logits)
        if row.step > 0 and bool(torch.all(processed == -float("inf"))):
            return None
        probs = torch.softmax(processed, dim=-1)
        return int(torch.multinomial(probs, num_samples=1, generator=row.item.generator).item())


def prefill_embeds(t3: Any, t3_cond: Any, text_tokens: torch.Tensor) -> torch.Tensor:
    """Turbo T3's first input for one segment, ``(1, L, D)``: ``prepare_input_embeds`` of
    the conditioning, the text and the start speech token, as ``inference_turbo`` builds it."""
    start = t3.hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, _len_cond = t3.prepare_input_embeds(t3_cond=t3_cond, text_tokens=text_tokens,
                                                speech_tokens=start, cfg_weight=0.0)
    return embeds


def generate_turbo(t3: Any, t3_cond: Any, text_tokens: torch.Tensor, *, limits: LengthLimits,
                   sampling: TurboSampling | None = None,
                   generator: torch.Generator | None = None) -> GeneratedSegment:
    """One segment alone through a :class:`TurboT3Batch` of one row: its tokens and why
    it stopped."""
    batch = TurboT3Batch(t3, sampling)
    joining: list[tuple[Any, TurboBatchItem]] = [(0, TurboBatchItem(t3_cond, text_tokens, limits, generator))]
    try:
        while True:
            for step in batch.step(joining):
                if step.finished is not None:
                    return step.finished
            joining = []
    finally:
        batch.close()


__all__ = ["TurboBatchItem", "TurboSampling", "TurboT3Batch", "generate_turbo",
           "prefill_embeds", "turbo_processors", "turbo_text_ids", "turbo_text_tokens"]
