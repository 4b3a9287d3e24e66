"""Attention backends for T3 (used by the Chatterbox engine).

* ``eager``: eager attention on every layer; the aligned heads' maps feed the
  alignment guard. The baseline: what chatterbox-streaming and 0.1.7's
  multilingual model run.
* ``sdpa``: PyTorch SDPA on every layer; no maps, no alignment guard. What
  0.1.7's English model and upstream master run.
* ``sdpa_aligned``: SDPA on every layer, plus the attention weights of only the
  aligned (layer, head) pairs, computed from that layer's queries and cached
  keys (one query row per decode step), feeding the same alignment guard.
* ``flash_attention_2``: FlashAttention 2 kernels, where the ``flash-attn``
  package and a CUDA device are present; no alignment guard.

The records list and validate without torch; the engine imports the kernels.
"""

from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, field_validator

from seqopt_core import AttentionBackendSpec, hookimpl

_INSTALL = "pip install 'seqopt[chatterbox]'"
DEFAULT_ALIGNED_HEADS = [(12, 15), (13, 11), (9, 2)]
#: Chatterbox's T3 (Llama_520M): 30 layers of 16 attention heads (the released
#: checkpoint; ``seqopt_plugins.chatterbox.checkpoint.RELEASED_ARCH``, which needs
#: torch to import). Smaller checkpoints (seqopt's tiny test one has 16 layers)
#: are checked against their real size when the engine loads them.
T3_LAYERS = 30
T3_HEADS = 16


class PlainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlignedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aligned_heads: list[tuple[int, int]] = Field(
        default_factory=lambda: list(DEFAULT_ALIGNED_HEADS),
        description="(layer, head) pairs whose attention aligns text and speech")
    repetition_run: int = Field(
        2, ge=2, le=8, description="equal tokens in a row that force the stop token "
        "(2 = upstream 0.1.7's behaviour)")

    @field_validator("aligned_heads")
    @classmethod
    def _heads_exist(cls, heads: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if not heads:
            raise ValueError("give at least one (layer, head) pair")
        bad = [(layer, head) for layer, head in heads
               if not (0 <= layer < T3_LAYERS and 0 <= head < T3_HEADS)]
        if bad:
            shown = ", ".join(f"({layer}, {head})" for layer, head in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise ValueError(
                f"{shown}{more}: no such attention head in Chatterbox's T3, which has layers 0 to "
                f"{T3_LAYERS - 1} of heads 0 to {T3_HEADS - 1} (both counted from 0); the default "
                f"is {', '.join(f'({l}, {h})' for l, h in DEFAULT_ALIGNED_HEADS)}")
        seen: set[tuple[int, int]] = set()
        for layer, head in heads:
            if (layer, head) in seen:
                raise ValueError(f"({layer}, {head}) is listed more than once; list each "
                                 "(layer, head) pair once")
            seen.add((layer, head))
        return heads


class AttentionChoice:
    """An attention backend object: the implementation to select and, for the
    backends whose record provides alignment, the guard's heads and run length."""

    def __init__(self, attn_implementation: str, options: BaseModel | None = None) -> None:
        self.attn_implementation = attn_implementation
        self.aligned_heads = tuple(tuple(h) for h in getattr(options, "aligned_heads", ()))
        self.repetition_run = getattr(options, "repetition_run", 2)

    def __repr__(self) -> str:
        return f"AttentionChoice({self.attn_implementation!r}, heads={self.aligned_heads})"


def _eager(options: AlignedOptions) -> AttentionChoice:
    return AttentionChoice("seqopt_eager", options)


def _sdpa(options: PlainOptions) -> AttentionChoice:
    return AttentionChoice("sdpa")


def _sdpa_aligned(options: AlignedOptions) -> AttentionChoice:
    return AttentionChoice("seqopt_sdpa_aligned", options)


def _flash(options: PlainOptions) -> AttentionChoice:
    return AttentionChoice("flash_attention_2")


def register_kernels() -> None:
    """Register seqopt's two recording implementations with transformers (imports torch)."""
    from seqopt_plugins.chatterbox.attention_kernels import register

    register()


def _cuda_present() -> str | None:
    """Checked only once torch and flash-attn are known to be installed."""
    import torch

    return None if torch.cuda.is_available() else "needs a CUDA device (none is visible)"


@hookimpl
def seqopt_attention_backends() -> list[AttentionBackendSpec]:
    needs = ("torch", "transformers")
    return [
        AttentionBackendSpec(name="eager", factory=_eager, options=AlignedOptions, requires=needs,
                             install=_INSTALL, provides_alignment=True, keeps_all_layers=True,
                             setup=register_kernels,
                             description="eager attention on every layer, alignment guard from its maps"),
        AttentionBackendSpec(name="sdpa", factory=_sdpa, options=PlainOptions, requires=needs,
                             install=_INSTALL,
                             description="PyTorch SDPA on every layer, no alignment guard"),
        AttentionBackendSpec(name="sdpa_aligned", factory=_sdpa_aligned, options=AlignedOptions,
                             requires=needs, install=_INSTALL, provides_alignment=True,
                             setup=register_kernels,
                             description="SDPA on every layer + aligned heads' weights for the guard"),
        AttentionBackendSpec(name="flash_attention_2", factory=_flash, options=PlainOptions,
                             requires=(*needs, "flash_attn"), install="pip install flash-attn",
                             check=_cuda_present,
                             description="FlashAttention 2 kernels (CUDA), no alignment guard"),
    ]
