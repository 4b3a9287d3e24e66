"""The ``chatterbox-turbo`` engine: the Chatterbox worker on Chatterbox Turbo.

Chatterbox Turbo (``ChatterboxTurboTTS`` in chatterbox-tts 0.1.7) is the fast model: a
GPT-2-medium T3 of 350M parameters without classifier-free guidance (one row per
segment, not two), a GPT-2 BPE tokenizer without start or stop text tokens, and a
mean-flow S3Gen that decodes in 2 steps instead of 10. What differs from the English
engine is here; everything else (the scheduler's batches and chunks, voices, the
watermark, batched decode) is the same worker:

* T3 runs :class:`.turbo_t3.TurboT3Batch` (Turbo's own sampling: temperature,
  top-k, top-p, repetition penalty, in upstream's order), with rows of several
  streams in one batch as for English;
* each segment's last chunk ends with Turbo's three S3Gen silence tokens, as its
  ``generate`` appends them (:data:`.vocoder.TURBO_END_TOKENS`);
* Turbo has no alignment guard upstream and no aligned heads are known for its
  GPT-2, so the engine does not use the ``attention`` slot (its record says so).

The chunk schedule is Turbo's own: the deadline policy measures this engine's costs
(a cheaper S3Gen call, a cheaper T3 step) under its own cost key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from seqopt_core.engine import AttentionSettings, SegmentJob, TokenStep
from seqopt_core.types import Segment

from .engine import ChatterboxBatch, ChatterboxEngine
from .options import TurboOptions
from .turbo_t3 import TurboBatchItem, TurboSampling, TurboT3Batch, turbo_text_ids
from .vocoder import TURBO_END_TOKENS

ENGINE_NAME = "chatterbox-turbo"
#: T3 conditioning bound for Turbo (speaker embedding and the voice's speech prompt).
COND_TOKENS_BOUND = 400


class ChatterboxTurboEngine(ChatterboxEngine):
    """The Chatterbox worker on a Turbo checkpoint (see the module doc)."""

    name = ENGINE_NAME
    model = "turbo"
    options_type = TurboOptions
    end_tokens = TURBO_END_TOKENS

    def __init__(self, loaded: Any, options: TurboOptions | None = None, runtime: Any = None) -> None:
        super().__init__(loaded, options, runtime)
        o = self.options
        self.turbo_sampling = TurboSampling(temperature=o.temperature, top_k=o.top_k, top_p=o.top_p,
                                            repetition_penalty=o.repetition_penalty)

    # -- text and conditioning ---------------------------------------------------------

    def text_ids(self, segment: Segment) -> torch.Tensor:
        """``segment``'s text as ``ChatterboxTurboTTS.generate`` tokenizes it (no start or stop token)."""
        return turbo_text_ids(self.tokenizer, segment.text)

    def text_tokens(self, segment: Segment) -> torch.Tensor:
        """What T3 gets for ``segment``: its GPT-2 ids, one row (Turbo has no CFG)."""
        return self.text_ids(segment).to(self.t3.device)

    def t3_conditionals(self, prompt_tokens: Sequence[int] | None) -> Any:
        """The voice's T3 conditionals as upstream's generate passes them (its emotion value
        unchanged: Turbo takes no exaggeration), ``prompt_tokens`` appended to its speech prompt."""
        from chatterbox.models.t3.modules.cond_enc import T3Cond

        base = self.conds.t3
        prompt = base.cond_prompt_speech_tokens
        if prompt_tokens and prompt is not None:
            tail = torch.tensor([list(prompt_tokens)], dtype=prompt.dtype, device=prompt.device)
            prompt = torch.cat([prompt, tail], dim=1)[:, -prompt.size(1):]
        return T3Cond(speaker_emb=base.speaker_emb, cond_prompt_speech_tokens=prompt,
                      emotion_adv=base.emotion_adv).to(device=self.t3.device)

    # -- the Engine protocol ---------------------------------------------------------------

    def check_attention(self, attention: AttentionSettings) -> None:
        """Turbo does not use the attention slot (its record's ``uses_attention`` is off)."""

    def open_batch(self, attention: AttentionSettings | None = None) -> TurboBatch:
        return TurboBatch(self, TurboT3Batch(self.t3, self.turbo_sampling))

    def turbo_item(self, job: SegmentJob) -> TurboBatchItem:
        """What Turbo's T3 needs for ``job``: conditionals, text ids, limits, its own generator."""
        text = self.text_tokens(job.segment)
        return TurboBatchItem(self.t3_conditionals(job.prompt_tokens), text,
                              self.length_limits(int(text.size(-1))), self.row_generator(job))

    def kv_bytes_per_segment(self, segment: Segment) -> int:
        """KV-cache bytes of one segment at its longest (one row: no CFG)."""
        from .t3_batch import kv_cache_bytes_per_row

        limit = self.length_limits(segment.tokens).max_new_tokens
        tokens = COND_TOKENS_BOUND + segment.tokens + limit
        return kv_cache_bytes_per_row(self.t3.tfmr.config, next(self.t3.tfmr.parameters()).dtype, tokens)


class TurboBatch(ChatterboxBatch):
    """A :class:`.turbo_t3.TurboT3Batch` whose rows are scheduler jobs."""

    def step(self, joining: Sequence[SegmentJob] = ()) -> list[TokenStep]:
        steps = self.t3_batch.step([(job, self.engine.voiced(job).turbo_item(job)) for job in joining])
        return [TokenStep(row.key, row.token, row.finished) for row in steps]


__all__ = ["ChatterboxTurboEngine", "ENGINE_NAME"]
