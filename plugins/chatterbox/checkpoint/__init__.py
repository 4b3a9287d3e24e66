"""Chatterbox checkpoints in the released file layout: architectures, a shape-driven loader, and a
random-weight writer.

For the English model (the default) the folder holds exactly the released files (what
``ChatterboxTTS.from_local`` reads); the Multilingual and Turbo layouts are in
:data:`.files.LAYOUTS` (``model="multilingual"`` / ``"turbo"`` everywhere)::

    ve.safetensors      VoiceEncoder state dict
    t3_cfg.safetensors  T3 state dict (Llama backbone + Chatterbox embeddings and heads)
    s3gen.safetensors   S3Gen (S3Token2Wav) state dict
    tokenizer.json      the English text tokenizer, copied from the path given
    conds.pt            the built-in voice: a ``chatterbox.tts.Conditionals`` saved by its ``save``

Three parts, on the layout in :mod:`.files` (file names, :class:`CheckpointError`, folder checks):

- :mod:`.arch`: the size records (:class:`T3Arch`, :class:`VEArch`, :class:`CheckpointArch`,
  :data:`RELEASED_ARCH`, :data:`TINY_ARCH`), their inference from tensor names and shapes alone
  (:func:`infer_arch`, no side file), and the one builder of upstream's modules (``T3``,
  ``VoiceEncoder``, ``S3Gen``; see :mod:`..tiny_s3gen` for S3Gen) from an architecture.
- :mod:`.loader`: :func:`load_checkpoint` reads a folder, with released weights or with
  seqopt's random ones, into those modules (:class:`LoadedCheckpoint`).
- :mod:`.random_writer`: :func:`write_random_checkpoint` (behind ``seqopt make-checkpoint``)
  writes random weights in the released layout, deterministically from a seed, for tests and
  benchmarks.

**Random weights make noise, not speech.** A checkpoint written by :func:`write_random_checkpoint`
runs every line of upstream Chatterbox's model code (``T3``, ``S3Gen``, ``VoiceEncoder``,
``EnTokenizer``, ``Conditionals``) with the released shapes (``scale="full"``) or the same
structure at a fraction of the size (``scale="tiny"``), so tests and benchmarks exercise the real
code paths and, at full scale, the real compute cost. The audio it produces is noise, T3 never
emits a sensible stop token, and nothing measured on it says anything about speech quality.
"""

from __future__ import annotations

from ..tiny_s3gen import S3GenArch
from .arch import (
    ARCHS,
    RELEASED_ARCH,
    RELEASED_MTL_ARCH,
    RELEASED_TURBO_ARCH,
    TINY_MTL_ARCH,
    TINY_TURBO_ARCH,
    TINY_ARCH,
    CheckpointArch,
    Scale,
    T3Arch,
    VEArch,
    describe,
    infer_arch,
    infer_t3_arch,
    infer_ve_arch,
)
from .files import (
    LAYOUTS,
    MODELS,
    ModelLayout,
    CHECKPOINT_FILES,
    CONDS_FILE,
    REQUIRED_FILES,
    S3GEN_FILE,
    T3_FILE,
    TOKENIZER_FILE,
    VE_FILE,
    CheckpointError,
)
from .loader import LoadedCheckpoint, _quiet_perth_watermarker, load_checkpoint
from .random_writer import CheckpointInfo, write_random_checkpoint

__all__ = [
    "ARCHS",
    "LAYOUTS",
    "MODELS",
    "ModelLayout",
    "RELEASED_MTL_ARCH",
    "RELEASED_TURBO_ARCH",
    "TINY_MTL_ARCH",
    "TINY_TURBO_ARCH",
    "CHECKPOINT_FILES",
    "CONDS_FILE",
    "RELEASED_ARCH",
    "REQUIRED_FILES",
    "S3GEN_FILE",
    "T3_FILE",
    "TINY_ARCH",
    "TOKENIZER_FILE",
    "VE_FILE",
    "CheckpointArch",
    "CheckpointError",
    "CheckpointInfo",
    "LoadedCheckpoint",
    "S3GenArch",
    "Scale",
    "T3Arch",
    "VEArch",
    "describe",
    "infer_arch",
    "infer_t3_arch",
    "infer_ve_arch",
    "load_checkpoint",
    "write_random_checkpoint",
]
