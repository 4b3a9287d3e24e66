"""seqopt's T3 sampling, as upstream's ``T3.inference`` samples, and the one-segment loop.

It reproduces chatterbox-tts 0.1.7's ``T3.inference`` step for step (same
conditioning, classifier-free guidance, repetition penalty, temperature, min-p
and top-p, same random draws), so that with the same seed and attention
implementation it yields the same speech tokens; ``tests/test_t3_stream.py``
checks that against upstream. What it adds: tokens come out as they are
sampled (so audio can start before the segment ends), the length limit comes
from the caller, a benchmark mode ignores the stop token, and no forward hooks
or patched modules are left behind.

Upstream details kept on purpose, for identical tokens:

* the conditioning already ends with the start-of-speech token, and the first
  forward pass appends it once more (position 0 both times); generated token
  ``i`` gets speech position ``i + 1``;
* the repetition penalty sees that start token among the generated ids;
* CFG: the second row has its text embeddings zeroed; logits are
  ``cond + w * (cond - uncond)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from seqopt_core.engine import GeneratedSegment

from .alignment import AlignmentGuard, LengthGuard
from .attention_kernels import DEFAULT_ALIGNED_HEADS


@dataclass(frozen=True)
class SamplingOptions:
    """Sampling settings, with ``ChatterboxTTS.generate``'s defaults."""

    temperature: float = 0.8
    top_p: float = 1.0
    min_p: float = 0.05
    repetition_penalty: float = 1.2
    cfg_weight: float = 0.5


@dataclass(frozen=True)
class LengthLimits:
    """How long the loop may run.

    ``max_new_tokens`` caps the tokens sampled. Before ``min_new_tokens`` the stop
    token is masked out. With ``ignore_stop`` it is masked out always and exactly
    ``max_new_tokens`` tokens come out (benchmark mode: random weights never
    emit a sensible stop token).
    """

    max_new_tokens: int
    min_new_tokens: int = 0
    ignore_stop: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")


def stop_reason(n_tokens: int, limits: LengthLimits, guard: AlignmentGuard | None) -> str:
    """Why a generation of ``n_tokens`` tokens ended: ``benchmark_length`` (stop token
    ignored), ``length_limit``, ``alignment_guard`` (the guard forced the stop token at
    the last step) or ``stop_token``."""
    if limits.ignore_stop:
        return "benchmark_length"
    if n_tokens >= limits.max_new_tokens:
        return "length_limit"
    if guard is not None and any(d.forced_stop for d in guard.decisions[-1:]):
        return "alignment_guard"
    return "stop_token"


def english_text_ids(tokenizer: Any, text: str) -> torch.Tensor:
    """``text`` as ``ChatterboxTTS.generate`` tokenizes it: ``punc_norm``, then the
    ``EnTokenizer`` (``(1, n)``, no start or stop token)."""
    from chatterbox.tts import punc_norm

    return tokenizer.text_to_tokens(punc_norm(text))


def multilingual_text_ids(tokenizer: Any, text: str, language: str) -> torch.Tensor:
    """``text`` as ``ChatterboxMultilingualTTS.generate`` tokenizes it for ``language``:
    its own ``punc_norm``, then the ``MTLTokenizer`` (the ``[language]`` token first)."""
    from chatterbox.mtl_tts import punc_norm

    return tokenizer.text_to_tokens(punc_norm(text), language_id=language.lower())


def t3_text_tensor(ids: torch.Tensor, *, cfg: bool, device: torch.device | str,
                   start_token: int, stop_token: int) -> torch.Tensor:
    """What generate feeds T3 from a text's ``(1, n)`` ``ids``: two rows when CFG is on,
    then the start and stop tokens around each."""
    ids = ids.to(device)
    if cfg:
        ids = torch.cat([ids, ids], dim=0)
    ids = torch.nn.functional.pad(ids, (1, 0), value=start_token)
    return torch.nn.functional.pad(ids, (0, 1), value=stop_token)


def text_token_tensor(tokenizer: Any, text: str, *, cfg: bool, device: torch.device | str,
                      start_token: int, stop_token: int) -> torch.Tensor:
    """What ``ChatterboxTTS.generate`` feeds T3 for ``text``: ``punc_norm``, the
    tokenizer, two rows when CFG is on, then the start and stop tokens."""
    return t3_text_tensor(english_text_ids(tokenizer, text), cfg=cfg, device=device,
                          start_token=start_token, stop_token=stop_token)


@dataclass(frozen=True)
class AlignmentOptions:
    """Run the alignment guard on these (layer, head) pairs (see :mod:`.alignment`)."""

    heads: tuple[tuple[int, int], ...] = DEFAULT_ALIGNED_HEADS
    repetition_run: int = 2
    #: Hold every layer's maps of the latest step too (the stock eager path's cost).
    keep_all_layers: bool = False


def prompt_embeds(t3: Any, t3_cond: Any, text_tokens: torch.Tensor, cfg_weight: float,
                  ) -> tuple[torch.Tensor, tuple[int, int]]:
    """T3's first input for one segment, as ``T3.inference`` builds it: conditioning,
    text and the start-of-speech token (from ``prepare_input_embeds``), then the
    start token's embedding once more at speech position 0. Returns the embeddings
    ``(rows, L, D)`` and the text's ``(start, end)`` columns (for the alignment guard)."""
    hp = t3.hp
    start = hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, len_cond = t3.prepare_input_embeds(t3_cond=t3_cond, text_tokens=text_tokens,
                                               speech_tokens=start, cfg_weight=cfg_weight)
    bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=t3.device)
    bos_embed = t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)
    inputs = torch.cat([embeds, bos_embed.expand(text_tokens.size(0), -1, -1)], dim=1)
    return inputs, (len_cond, len_cond + text_tokens.size(-1))


def guided_logits(logits: torch.Tensor, cfg_weight: float) -> torch.Tensor:
    """Classifier-free guidance: ``cond + w * (cond - uncond)`` for each segment's
    (conditional, unconditional) row pair; ``logits`` unchanged when ``w`` is 0."""
    if cfg_weight <= 0.0:
        return logits
    cond, uncond = logits[0::2], logits[1::2]
    return cond + torch.as_tensor(cfg_weight, dtype=cond.dtype, device=cond.device) * (cond - uncond)


class TokenSampler:
    """One sampling step of one segment, exactly as ``T3.inference`` takes it (after
    CFG): alignment guard, length guard, stop masking, repetition penalty over the
    segment's own ids, temperature, min-p, top-p, one ``torch.multinomial`` draw.
    Shared by the one-segment and the batched loops, so both draw the same tokens."""

    def __init__(self, sampling: SamplingOptions, stop_token: int) -> None:
        from transformers.generation.logits_process import (
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TopPLogitsWarper,
        )

        self.sampling = sampling
        self.stop = stop_token
        self.repetition = RepetitionPenaltyLogitsProcessor(penalty=float(sampling.repetition_penalty))
        self.min_p = MinPLogitsWarper(min_p=sampling.min_p)
        self.top_p = TopPLogitsWarper(top_p=sampling.top_p)

    def draw(self, logits: torch.Tensor, generated: torch.Tensor, *, step: int, limits: LengthLimits,
             generator: torch.Generator | None, guard: AlignmentGuard | None = None,
             attention: torch.Tensor | None = None, lengths: LengthGuard | None = None) -> torch.Tensor:
        """The next token, ``(1, 1)``, from one segment's guided ``logits`` ``(1, V)``
        at its ``step``; ``generated`` holds its ids so far (start token first) and
        ``attention`` the aligned heads' map the guard reads."""
        if guard is not None:
            logits = guard.step(attention, logits, int(generated[0, -1]))
        if lengths is not None:
            logits = lengths.step(step, logits)
        if limits.ignore_stop or step < limits.min_new_tokens:
            logits[:, self.stop] = -float("inf")
        logits = self.repetition(generated, logits)
        if self.sampling.temperature != 1.0:
            logits = logits / self.sampling.temperature
        logits = self.top_p(generated, self.min_p(generated, logits))
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=generator)


class SpeechTokenLoop:
    """Samples T3's speech tokens for one segment, one token per step: a
    :class:`.t3_step.T3Batch` of one row (the same step the batched path runs).

    ``t3`` is chatterbox's ``T3`` module, already on its device and in eval mode.
    The loop reads ``t3.tfmr.config._attn_implementation`` as it is: choose the
    attention implementation before calling :meth:`tokens`.
    """

    def __init__(self, t3: Any) -> None:
        self.t3 = t3
        self.hp = t3.hp

    def tokens(self, t3_cond: Any, text_tokens: torch.Tensor, *, sampling: SamplingOptions,
               limits: LengthLimits, generator: torch.Generator | None = None,
               alignment: AlignmentOptions | None = None,
               length_guard: tuple[float, float] | None = None) -> Iterator[int]:
        """Yield sampled speech token ids until the stop token or ``limits``.

        ``alignment`` runs the alignment guard; the attention implementation must
        then record the aligned heads (``seqopt_eager`` or ``seqopt_sdpa_aligned``).
        ``length_guard`` is ``(min_ratio, max_ratio)`` of speech to text tokens.

        The stop token itself is not yielded. Other ids, including special ones a
        random model may sample, are yielded as sampled (upstream feeds them back
        too); the caller filters what S3Gen can decode.
        """
        for token, _result in self._steps(t3_cond, text_tokens, sampling=sampling, limits=limits,
                                          generator=generator, alignment=alignment,
                                          length_guard=length_guard):
            if token is not None:
                yield token

    def generate(self, t3_cond: Any, text_tokens: torch.Tensor, *, sampling: SamplingOptions,
                 limits: LengthLimits, generator: torch.Generator | None = None,
                 alignment: AlignmentOptions | None = None,
                 length_guard: tuple[float, float] | None = None) -> GeneratedSegment:
        """The whole segment: its tokens, why it stopped and its alignment guard."""
        for _token, result in self._steps(t3_cond, text_tokens, sampling=sampling, limits=limits,
                                          generator=generator, alignment=alignment,
                                          length_guard=length_guard):
            if result is not None:
                return result
        raise AssertionError("a T3 row always ends with a result")  # pragma: no cover

    @torch.inference_mode()
    def _steps(self, t3_cond: Any, text_tokens: torch.Tensor, *, sampling: SamplingOptions,
               limits: LengthLimits, generator: torch.Generator | None,
               alignment: AlignmentOptions | None, length_guard: tuple[float, float] | None,
               ) -> Iterator[tuple[int | None, GeneratedSegment | None]]:
        from .t3_step import BatchItem, T3Batch

        text_tokens = torch.atleast_2d(text_tokens).to(dtype=torch.long, device=self.t3.device)
        if sampling.cfg_weight > 0.0 and text_tokens.size(0) != 2:
            raise ValueError("with cfg_weight > 0 the text tokens need two rows (cond, uncond)")
        batch = T3Batch(self.t3, sampling, alignment)
        joining = [(0, BatchItem(t3_cond, text_tokens, limits, generator, length_guard))]
        try:
            while True:
                for step in batch.step(joining):
                    yield step.token, step.finished
                    if step.finished is not None:
                        return
                joining = []
        finally:
            batch.close()  # releases the KV cache when the caller stops early
