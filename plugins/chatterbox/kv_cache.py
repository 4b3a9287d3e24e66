"""A KV cache that appends in place instead of copying itself every step.

transformers' ``DynamicCache`` appends a decode step's keys and values with
``torch.cat``: every step copies the whole cache, for every layer. For T3 under
CFG at 16 rows (8 segments) and 300 positions that is about 1.2 GB of copying
per step, as much memory traffic as reading the weights, and it grows with the
context. :class:`GrowingCache` keeps each layer's keys and values in a buffer
with spare room at the end, writes each step into that room, and hands the
attention the filled part as a view. The buffer is copied only when it fills
(growing by a quarter of its length at least, so copies are amortized), when rows leave
the batch, and never beyond ``limit`` positions when the caller knows the most
it can need.

It is a ``transformers.Cache`` made of :class:`GrowingLayer`s, so the model uses
it exactly as it uses ``DynamicCache`` (same mask sizes, same ``keys`` and
``values`` shapes); the keys and values it returns are the same numbers, so
tokens are unchanged (``tests/test_kv_cache.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

#: Spare positions reserved after the prompt, and the least a full buffer grows by
#: (a full buffer grows by a quarter of its length if that is more). Each spare
#: position costs every row of every layer: 64 is 250 MB at 16 rows in fp32.
HEADROOM = 64


class GrowingLayer(DynamicLayer):
    """One layer's keys and values, ``(batch, kv_heads, positions, head_dim)``, in a
    buffer with room to append in place.

    ``keys`` and ``values`` read as the filled part (a view); assigning them (as
    ``DynamicLayer.crop`` and ``batch_select_indices`` do) replaces the buffer.
    """

    def __init__(self, limit: int | None = None, headroom: int = HEADROOM) -> None:
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self.length = 0
        #: Most positions this cache will ever hold (``None``: no bound known).
        self.limit = limit
        self.headroom = max(1, int(headroom))
        super().__init__()

    # ``keys``/``values`` are what the rest of transformers (and seqopt) read and assign.
    @property
    def keys(self) -> torch.Tensor | None:  # type: ignore[override]
        return None if self._k is None else self._k[:, :, :self.length]

    @keys.setter
    def keys(self, tensor: torch.Tensor | None) -> None:
        self._k = tensor
        self.length = 0 if tensor is None or tensor.dim() < 3 else tensor.size(-2)

    @property
    def values(self) -> torch.Tensor | None:  # type: ignore[override]
        return None if self._v is None else self._v[:, :, :self.length]

    @values.setter
    def values(self, tensor: torch.Tensor | None) -> None:
        self._v = tensor

    @property
    def capacity(self) -> int:
        return 0 if self._k is None else self._k.size(-2)

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self._k = self._v = None
        self.length = 0
        self.is_initialized = True

    def _room_for(self, needed: int, like_k: torch.Tensor, like_v: torch.Tensor) -> None:
        """Make the buffer hold at least ``needed`` positions (copying what it holds)."""
        if needed <= self.capacity:
            return
        grown = needed + max(self.headroom, needed // 4)
        if self.limit is not None and needed <= self.limit:
            grown = min(grown, self.limit)
        shape_k = (*like_k.shape[:2], grown, like_k.size(-1))
        shape_v = (*like_v.shape[:2], grown, like_v.size(-1))
        k = like_k.new_empty(shape_k)
        v = like_v.new_empty(shape_v)
        if self.length:
            k[:, :, :self.length] = self._k[:, :, :self.length]
            v[:, :, :self.length] = self._v[:, :, :self.length]
        self._k, self._v = k, v

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor,
               cache_kwargs: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._k is not None and self._k.size(0) != key_states.size(0):
            raise ValueError(f"the cache holds {self._k.size(0)} rows but the step has "
                             f"{key_states.size(0)}; select rows with batch_select_indices first")
        new = key_states.size(-2)
        self._room_for(self.length + new, key_states, value_states)
        self._k[:, :, self.length:self.length + new] = key_states
        self._v[:, :, self.length:self.length + new] = value_states
        self.length += new
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._k is not None:
            self._k = self._k.index_select(0, indices.to(self._k.device))
            self._v = self._v.index_select(0, indices.to(self._v.device))

    def drop_front(self, count: int) -> None:
        """Forget the first ``count`` positions of every row (padding that no row
        attends to), keeping the spare room at the end: no copy."""
        if count <= 0 or self._k is None:
            return
        count = min(count, self.length)
        self._k = self._k[:, :, count:]
        self._v = self._v[:, :, count:]
        self.length -= count


    def concatenate_rows(self, other: GrowingLayer, width: int) -> GrowingLayer:
        """A new layer holding this layer's rows, then ``other``'s, each left-padded
        with zeros to ``width`` positions (at least both lengths). Both layers are
        emptied: their buffers are released as soon as they are copied."""
        if self._k is None or other._k is None:
            raise ValueError("only filled cache layers can be concatenated")
        joined = GrowingLayer(self.limit, self.headroom)
        joined.lazy_initialization(self._k, self._v)
        rows = self._k.size(0) + other._k.size(0)
        capacity = width + self.headroom
        if self.limit is not None and width <= self.limit:
            capacity = min(capacity, self.limit)
        joined._k = self._k.new_empty((rows, *self._k.shape[1:2], capacity, self._k.size(-1)))
        joined._v = self._v.new_empty((rows, *self._v.shape[1:2], capacity, self._v.size(-1)))
        r = 0
        for part in (self, other):
            n, pad = part._k.size(0), width - part.length
            for mine, theirs in ((joined._k, part._k), (joined._v, part._v)):
                mine[r:r + n, :, :pad] = 0  # padding: masked out, but must be finite
                mine[r:r + n, :, pad:width] = theirs[:, :, :part.length]
            r += n
            part._k = part._v = None
            part.length = 0
        joined.length = width
        return joined


class GrowingCache(Cache):
    """``transformers.Cache`` of :class:`GrowingLayer`s, one per model layer.

    ``limit`` (optional) is the most positions a row can reach (prompt plus the
    most tokens the caller will generate): buffers never grow past it.
    """

    def __init__(self, num_layers: int, *, limit: int | None = None, headroom: int = HEADROOM) -> None:
        super().__init__(layers=[GrowingLayer(limit, headroom) for _ in range(num_layers)])

    def drop_front(self, count: int) -> None:
        for layer in self.layers:
            layer.drop_front(count)

    def concatenate_rows(self, other: GrowingCache) -> GrowingCache:
        """A cache with this cache's rows, then ``other``'s; the shorter one is
        left-padded with zero keys and values (the caller masks them out).

        It consumes both caches, layer by layer: each layer's old buffers are freed
        once copied, so a join needs about one layer's worth of memory on top of
        the cache, not a second copy of it."""
        if len(self.layers) != len(other.layers):
            raise ValueError(f"caches of {len(self.layers)} and {len(other.layers)} layers")
        width = max(self.get_seq_length(), other.get_seq_length())
        joined = GrowingCache(0)
        joined.layers = [a.concatenate_rows(b, width) for a, b in zip(self.layers, other.layers)]
        return joined

    @property
    def reserved_bytes(self) -> int:
        """Bytes held by the buffers, spare room included."""
        return sum(t.numel() * t.element_size() for layer in self.layers
                   for t in (layer._k, layer._v) if t is not None)


def growing_cache(model_config: Any, *, limit: int | None = None) -> GrowingCache:
    """A :class:`GrowingCache` for a transformers model config (``num_hidden_layers``)."""
    return GrowingCache(int(model_config.num_hidden_layers), limit=limit)
