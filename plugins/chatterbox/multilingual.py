"""The ``chatterbox-multilingual`` engine: the Chatterbox worker on Chatterbox Multilingual.

Chatterbox Multilingual (``ChatterboxMultilingualTTS`` in chatterbox-tts 0.1.7) is the
English model's architecture trained on 23 languages: the same T3 and S3Gen with
another text vocabulary, ``MTLTokenizer`` (a ``[language]`` token before the text,
per-language preprocessing for Chinese, Japanese, Hebrew, Korean and Russian). So
everything the English engine does (the scheduler's batches, chunked S3Gen, voices,
the watermark) runs unchanged; what differs is here:

* each segment is tokenized for its own language (:attr:`seqopt_core.types.Segment.language`,
  from ``synthesis.language``; ``en`` when unset), as upstream's ``generate`` does it;
* the checkpoint is the Multilingual layout (``t3_mtl23ls_v2.safetensors``, ``ve.pt``,
  ``s3gen.pt``, ``grapheme_mtl_merged_expanded_v1.json``);
* sampling defaults are Multilingual's (:class:`~.options.MultilingualOptions`).

The guard against hallucinated speech: upstream's ``T3.inference`` runs an
``AlignmentStreamAnalyzer`` for this model, which switches every layer to eager
attention with ``output_attentions=True`` and registers three forward hooks on
each call that are never removed. Here the ``attention`` slot decides: the
``multilingual`` profile's ``sdpa_aligned`` makes the analyzer's decisions from
the aligned heads at SDPA speed (:mod:`.alignment`), with no hook installed.
"""

from __future__ import annotations

import torch

from seqopt_core.types import Segment

from .engine import ChatterboxEngine
from .options import MultilingualOptions
from .t3_stream import multilingual_text_ids

ENGINE_NAME = "chatterbox-multilingual"
#: The language a segment without one is spoken in.
DEFAULT_LANGUAGE = "en"


class ChatterboxMultilingualEngine(ChatterboxEngine):
    """The Chatterbox worker on a Multilingual checkpoint (see the module doc)."""

    name = ENGINE_NAME
    model = "multilingual"
    options_type = MultilingualOptions

    def text_ids(self, segment: Segment) -> torch.Tensor:
        """``segment``'s text as ``ChatterboxMultilingualTTS.generate`` tokenizes it for the
        segment's language (``[language]`` token first)."""
        return multilingual_text_ids(self.tokenizer, segment.text, segment.language or DEFAULT_LANGUAGE)


__all__ = ["ChatterboxMultilingualEngine", "ENGINE_NAME"]
