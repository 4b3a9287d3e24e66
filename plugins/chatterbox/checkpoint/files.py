"""The released Chatterbox checkpoint layout, shared by the writer, the loader and arch inference.

The file names (what ``ChatterboxTTS.from_local`` reads), the safetensors metadata key under which
seqopt marks the weights it wrote at random, :class:`CheckpointError`, and the two checks every
reader of a folder makes first: the folder has the required files, and a safetensors file reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from seqopt_core import SeqoptError

VE_FILE = "ve.safetensors"
T3_FILE = "t3_cfg.safetensors"
S3GEN_FILE = "s3gen.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONDS_FILE = "conds.pt"
CHECKPOINT_FILES = (VE_FILE, T3_FILE, S3GEN_FILE, TOKENIZER_FILE, CONDS_FILE)
"""Every file of the released layout, in the order the writer produces them."""
REQUIRED_FILES = (VE_FILE, T3_FILE, S3GEN_FILE, TOKENIZER_FILE)
"""What loading needs; ``conds.pt`` (the built-in voice) is optional, as upstream."""
_METADATA_KEY = "seqopt"
"""Safetensors metadata key of seqopt's record (``random_weights``, ``scale``, ``seed``)."""


class CheckpointError(SeqoptError):
    """A checkpoint folder cannot be written or read: missing, corrupt or mis-shaped files."""


def _checked_folder(directory: str | os.PathLike[str]) -> Path:
    folder = Path(directory)
    must = ", ".join(REQUIRED_FILES)
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint folder {folder} does not exist; it must contain {must} "
            f"(and optionally {CONDS_FILE}, the built-in voice)"
        )
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise CheckpointError(
                f"{folder} has no {name}: a Chatterbox checkpoint folder must contain {must} "
                f"(and optionally {CONDS_FILE}, the built-in voice)"
            )
    return folder


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError, or OSError
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc
