"""The released Chatterbox checkpoint layouts, shared by the writer, the loader and arch inference.

One :class:`ModelLayout` per model of chatterbox-tts 0.1.7 (:data:`LAYOUTS`): the files its
upstream ``from_local`` reads (``ChatterboxTTS``, ``ChatterboxMultilingualTTS``,
``ChatterboxTurboTTS``), the safetensors metadata key under which seqopt marks the weights it wrote
at random, :class:`CheckpointError`, and the two checks every reader of a folder makes first: the
folder has the model's required files (else the error names the missing file and, when the folder
holds another model's layout, that model), and a weight file reads (``.safetensors`` or a
``torch.save``'d state dict ``.pt``, as the model's release has it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


Model = Literal["english", "multilingual", "turbo"]
MODELS: tuple[Model, ...] = ("english", "multilingual", "turbo")


@dataclass(frozen=True)
class ModelLayout:
    """The files of one released Chatterbox model, as its upstream ``from_local`` reads them."""

    model: Model
    title: str
    """How errors name the model (``Chatterbox Multilingual``...)."""
    weights: Mapping[str, str]
    """Component (``ve``, ``t3``, ``s3gen``) -> weight file, in the order read, built, written."""
    tokenizer_files: tuple[str, ...]
    """The text tokenizer's files (all required)."""
    extra_files: tuple[str, ...] = ()
    """Further files the release ships and the tokenizer reads when present (optional)."""

    @property
    def required_files(self) -> tuple[str, ...]:
        return (*self.weights.values(), *self.tokenizer_files)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file, in the order the writer produces them."""
        return (*self.weights.values(), *self.tokenizer_files, CONDS_FILE, *self.extra_files)


MTL_T3_FILE = "t3_mtl23ls_v2.safetensors"
MTL_TOKENIZER_FILE = "grapheme_mtl_merged_expanded_v1.json"
CANGJIE_FILE = "Cangjie5_TC.json"
TURBO_T3_FILE = "t3_turbo_v1.safetensors"
TURBO_S3GEN_FILE = "s3gen_meanflow.safetensors"
TURBO_TOKENIZER_FILES = (
    "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json",
)
"""The GPT-2 tokenizer files ``AutoTokenizer.from_pretrained`` reads from the Turbo folder."""

LAYOUTS: Mapping[str, ModelLayout] = {
    "english": ModelLayout(
        "english", "Chatterbox (English)", {"ve": VE_FILE, "t3": T3_FILE, "s3gen": S3GEN_FILE},
        (TOKENIZER_FILE,),
    ),
    "multilingual": ModelLayout(
        "multilingual", "Chatterbox Multilingual",
        {"ve": "ve.pt", "t3": MTL_T3_FILE, "s3gen": "s3gen.pt"},
        (MTL_TOKENIZER_FILE,), extra_files=(CANGJIE_FILE,),
    ),
    "turbo": ModelLayout(
        "turbo", "Chatterbox Turbo",
        {"ve": VE_FILE, "t3": TURBO_T3_FILE, "s3gen": TURBO_S3GEN_FILE}, TURBO_TOKENIZER_FILES,
    ),
}
"""Every model's layout, by ``--model`` name."""

#: The engine that loads each model, and the built-in profile made for it (for messages).
ENGINE_OF: Mapping[str, str] = {"english": "chatterbox", "multilingual": "chatterbox-multilingual",
                                "turbo": "chatterbox-turbo"}
PROFILE_OF: Mapping[str, str] = {"english": "rtx4090", "multilingual": "multilingual", "turbo": "turbo"}


class CheckpointError(SeqoptError):
    """A checkpoint folder cannot be written or read: missing, corrupt or mis-shaped files."""


def layout_of(model: str) -> ModelLayout:
    """The :class:`ModelLayout` of ``model``; a :class:`CheckpointError` naming the choices."""
    if model not in LAYOUTS:
        raise CheckpointError(
            f"unknown Chatterbox model {model!r}; expected one of {', '.join(LAYOUTS)}"
        )
    return LAYOUTS[model]


def looks_like(folder: Path) -> list[str]:
    """The models whose required files are all in ``folder``."""
    return [
        name for name, layout in LAYOUTS.items()
        if all((folder / f).is_file() for f in layout.required_files)
    ]


def _checked_folder(directory: str | os.PathLike[str], model: str = "english") -> Path:
    layout = layout_of(model)
    folder = Path(directory)
    must = ", ".join(layout.required_files)
    kind = "Chatterbox" if model == "english" else layout.title
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint folder {folder} does not exist; it must contain {must} "
            f"(and optionally {CONDS_FILE}, the built-in voice)"
        )
    for name in layout.required_files:
        if not (folder / name).is_file():
            others = [m for m in looks_like(folder) if m != model]
            hint = (
                f"; it looks like a {LAYOUTS[others[0]].title} checkpoint "
                f"(its engine is {ENGINE_OF[others[0]]!r}: --profile {PROFILE_OF[others[0]]}; "
                f"from Python, load it with model={others[0]!r})" if others else ""
            )
            raise CheckpointError(
                f"{folder} has no {name}: a {kind} checkpoint folder must contain {must} "
                f"(and optionally {CONDS_FILE}, the built-in voice){hint}"
            )
    return folder


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file, or of a state dict saved with ``torch.save``
    (``.pt``, read with ``weights_only=True`` as upstream)."""
    if path.suffix == ".pt":
        return _read_torch_state(path)
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError, or OSError
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc


def _read_torch_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a damaged file
        raise CheckpointError(
            f"{path} is not a readable torch state dict (truncated or corrupt?): {exc}"
        ) from exc
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return dict(state)
