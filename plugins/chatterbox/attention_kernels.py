"""Attention implementations that also hand the aligned heads' weights to the guard.

Two functions are registered in transformers' ``AttentionInterface`` (a registry
of named attention functions, not a patch of any model):

* ``seqopt_eager``: transformers' eager attention on every layer; the weights
  it computes anyway are kept for the aligned heads and, with
  ``keep_all_layers``, every layer's maps of the latest step are held as
  ``output_attentions=True`` holds them (the baseline: what the streaming fork
  and 0.1.7's multilingual model pay for);
* ``seqopt_sdpa_aligned``: SDPA on every layer, plus, on the aligned layers
  only, ``softmax(q k^T * scale + mask)`` for the aligned heads, computed from
  that layer's own queries and cached keys: one query row per decode step.

Weights are recorded only while an :class:`AttentionTap` is active
(:func:`tapping`), for the first batch row (the conditional row under CFG, as
upstream's analyzer reads), or, when the tap names ``rows`` (batched synthesis:
one conditional row per segment), for each of those rows; the model's mask is
applied per row, so left padding gets no weight. Outside a tap both behave exactly like eager and
SDPA. Selecting them on a model is done per generation by the engine, which
restores the previous implementation afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch

EAGER_MAPS = "seqopt_eager"
SDPA_ALIGNED = "seqopt_sdpa_aligned"
#: (layer, head) pairs whose attention aligns text and speech in Chatterbox's T3.
DEFAULT_ALIGNED_HEADS: tuple[tuple[int, int], ...] = ((12, 15), (13, 11), (9, 2))


@dataclass
class AttentionTap:
    """Collects the latest attention weights of some (layer, head) pairs."""

    heads: tuple[tuple[int, int], ...] = DEFAULT_ALIGNED_HEADS
    #: Also keep every layer's full attention maps of the latest step, as
    #: ``output_attentions=True`` does (the stock eager path's memory cost).
    keep_all_layers: bool = False
    latest: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    layer_maps: dict[int, torch.Tensor] = field(default_factory=dict)
    #: Batch rows to record. ``None`` (one segment): row 0 only, and ``latest``
    #: holds ``(q_len, k_len)`` maps. A tuple (batched segments): ``latest`` holds
    #: ``(len(rows), q_len, k_len)``, one map per named row, in that order.
    rows: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.by_layer: dict[int, list[int]] = {}
        for layer, head in self.heads:
            self.by_layer.setdefault(layer, []).append(head)

    def mean(self) -> torch.Tensor:
        """Mean of the recorded heads' latest weights, ``(q_len, k_len)``."""
        missing = [h for h in self.heads if h not in self.latest]
        if missing:
            raise RuntimeError(f"no attention was recorded for (layer, head) {missing}; is the "
                               "attention implementation one that records (seqopt_eager, "
                               "seqopt_sdpa_aligned)?")
        return torch.stack([self.latest[h] for h in self.heads]).mean(dim=0)

    def record(self, layer: int, head: int, weights: torch.Tensor) -> None:
        """Store ``weights`` (``(rows, q, k)``, one map per recorded row) for ``(layer, head)``."""
        self.latest[(layer, head)] = weights[0] if self.rows is None else weights


_ACTIVE: ContextVar[AttentionTap | None] = ContextVar("seqopt_attention_tap", default=None)


@contextmanager
def tapping(tap: AttentionTap) -> Iterator[AttentionTap]:
    """Record into ``tap`` for the duration of the block (this thread/context only)."""
    token = _ACTIVE.set(tap)
    try:
        yield tap
    finally:
        _ACTIVE.reset(token)


def check_heads(heads: Sequence[tuple[int, int]], layers: int, n_heads: int) -> None:
    bad = [(l, h) for l, h in heads if not (0 <= l < layers and 0 <= h < n_heads)]
    if bad:
        raise ValueError(f"aligned heads {bad} do not exist in a model with {layers} layers of "
                         f"{n_heads} heads")


def _selector(indexes: Sequence[int]) -> slice | list[int]:
    """``indexes`` as a slice when they are evenly spaced and increasing (a view, no
    gather kernel and no index tensor copied to the device each step), else a list."""
    idx = list(indexes)
    if len(idx) == 1:
        return slice(idx[0], idx[0] + 1)
    step = idx[1] - idx[0]
    if step > 0 and all(b - a == step for a, b in zip(idx, idx[1:])):
        return slice(idx[0], idx[-1] + 1, step)
    return idx


def _mask_rows(attention_mask: torch.Tensor, rows: slice | list[int], count: int,
               k_len: int) -> torch.Tensor:
    """The model's 4-D mask for ``rows`` (a mask broadcast over the batch serves every row)."""
    mask = attention_mask[..., :k_len]
    return mask[rows] if mask.size(0) > 1 else mask.expand(count, *mask.shape[1:])


def aligned_weights(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                    attention_mask: torch.Tensor | None, scaling: float,
                    heads: Sequence[int], rows: Sequence[int] | None = None) -> torch.Tensor:
    """Attention weights of ``heads``, float32.

    ``rows=None``: batch row 0, ``(len(heads), q_len, k_len)``. Otherwise those
    batch rows, ``(len(rows), len(heads), q_len, k_len)``, each masked with its
    own row of the model's mask (left padding gets no weight).

    ``query`` is ``(B, H, q, d)`` after RoPE, ``key`` the layer's full (cached) keys
    ``(B, H_kv, k, d)``. The mask is the model's (or, when SDPA got none, causal).
    Rows and heads are picked by slicing where they can be (the usual case: one
    head per layer, every other row under CFG), so on a GPU this costs the matmul
    and softmax kernels alone.
    """
    groups = getattr(module, "num_key_value_groups", 1)
    picked = [0] if rows is None else list(rows)
    row_sel = _selector(picked)
    q = query[row_sel][:, _selector(heads)].float()
    k = key[row_sel][:, _selector([h // groups for h in heads])]
    scores = torch.matmul(q, k.float().transpose(-1, -2)) * scaling
    q_len, k_len = scores.shape[-2:]
    if attention_mask is not None and attention_mask.dtype != torch.bool:
        scores = scores + _mask_rows(attention_mask, row_sel, len(picked), k_len).float()
    elif attention_mask is not None:
        scores = scores.masked_fill(~_mask_rows(attention_mask, row_sel, len(picked), k_len), float("-inf"))
    elif q_len > 1:
        causal = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).triu(k_len - q_len + 1)
        scores = scores.masked_fill(causal, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights[0] if rows is None else weights


def _sdpa_aligned(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    tap = _ACTIVE.get()
    if tap is not None:
        heads = tap.by_layer.get(module.layer_idx)
        if heads:
            scaling = kwargs.get("scaling") or module.scaling
            weights = aligned_weights(module, query, key, attention_mask, scaling, heads,
                                      rows=tap.rows if tap.rows is not None else (0,))
            for i, head in enumerate(heads):
                tap.record(module.layer_idx, head, weights[:, i])
    return out, None


def _eager_maps(module, query, key, value, attention_mask, **kwargs):
    from transformers.models.llama.modeling_llama import eager_attention_forward

    out, weights = eager_attention_forward(module, query, key, value, attention_mask, **kwargs)
    tap = _ACTIVE.get()
    if tap is not None:
        if tap.keep_all_layers:
            tap.layer_maps[module.layer_idx] = weights
        rows = list(tap.rows) if tap.rows is not None else [0]
        for head in tap.by_layer.get(module.layer_idx, ()):
            tap.record(module.layer_idx, head, weights[rows, head].float())
    return out, weights


_registered = False


def register() -> None:
    """Register both implementations with transformers (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask

    AttentionInterface.register(SDPA_ALIGNED, _sdpa_aligned)
    AttentionInterface.register(EAGER_MAPS, _eager_maps)
    ALL_MASK_ATTENTION_FUNCTIONS.register(SDPA_ALIGNED, sdpa_mask)
    ALL_MASK_ATTENTION_FUNCTIONS.register(EAGER_MAPS, eager_mask)
    _registered = True
