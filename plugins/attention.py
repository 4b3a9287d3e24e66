"""Attention backends for T3 (consumed by the Chatterbox engine).

* ``eager``: transformers' eager attention on every layer; returns attention
  maps, which the alignment guard needs. What chatterbox-streaming runs.
* ``sdpa``: PyTorch scaled-dot-product attention on every layer; fast, returns
  no maps, so no alignment guard. What chatterbox-tts 0.1.7 English runs.

Both need torch (``pip install 'seqopt[chatterbox]'``); the records list and
validate without it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from seqopt_core import AttentionBackendSpec, hookimpl

_INSTALL = "pip install 'seqopt[chatterbox]'"


class AttentionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransformersAttention:
    """A transformers ``attn_implementation`` applied to every layer of T3."""

    def __init__(self, attn_implementation: str, provides_alignment: bool) -> None:
        self.attn_implementation = attn_implementation
        self.provides_alignment = provides_alignment

    def __repr__(self) -> str:
        return f"TransformersAttention({self.attn_implementation!r})"


def _eager(options: AttentionOptions) -> TransformersAttention:
    return TransformersAttention("eager", provides_alignment=True)


def _sdpa(options: AttentionOptions) -> TransformersAttention:
    return TransformersAttention("sdpa", provides_alignment=False)


@hookimpl
def seqopt_attention_backends() -> list[AttentionBackendSpec]:
    return [
        AttentionBackendSpec(name="eager", factory=_eager, options=AttentionOptions,
                             requires=("torch", "transformers"), install=_INSTALL,
                             description="eager attention, maps from every layer (alignment guard)"),
        AttentionBackendSpec(name="sdpa", factory=_sdpa, options=AttentionOptions,
                             requires=("torch", "transformers"), install=_INSTALL,
                             description="PyTorch SDPA kernels on every layer, no alignment guard"),
    ]
