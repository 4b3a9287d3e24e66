"""Continuous batching of T3, and how many segments fit in one batch.

T3 decoding reads every weight once per step whatever the batch size, so
generating B segments together costs far less than B generations one after
another. :class:`BatchedSpeechTokenLoop` runs a :class:`.t3_step.T3Batch` (the
one T3 step, shared with the one-segment path) over a list of segments with at
most ``max_active`` in flight: when one ends, the next waiting one joins, so
the batch stays full instead of draining to its longest segment. Each segment's
tokens equal the ones it gets alone with the same generator
(``tests/test_batch.py``). The pipeline does not use this loop: its scheduler
(:mod:`seqopt_core.scheduler`) drives ``T3Batch`` itself, deciding each step
which segments join; this loop is for tests and benchmarks of T3 alone.

Also here: how many segments fit in memory (:func:`auto_batch_size`) and how an
out-of-memory error is recognised (:func:`is_out_of_memory`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from seqopt_core.engine import GeneratedSegment
from seqopt_core.system import available_memory_bytes

from .t3_step import COND_TOKENS_BOUND, BatchItem, RowStep, T3Batch, left_pad, unpadded_map
from .t3_stream import AlignmentOptions, SamplingOptions
#: Largest automatic batch, in segments, per device type.
AUTO_CAP = {"cpu": 8, "mps": 8, "cuda": 32}
#: Share of the free memory the KV caches of one batch may take (the rest: activations,
#: the cache's copy while it grows, S3Gen, everything else on the machine).
CPU_MEMORY_FRACTION = 0.5
CUDA_MEMORY_FRACTION = 0.7


class BatchedSpeechTokenLoop:
    """Samples T3's speech tokens for several segments at once (see the module doc).

    Like :class:`.t3_stream.SpeechTokenLoop`, it uses the attention
    implementation set on the model; with ``alignment`` it must be one that
    records the aligned heads (``seqopt_eager``, ``seqopt_sdpa_aligned``).
    """

    def __init__(self, t3: Any) -> None:
        self.t3 = t3
        self.hp = t3.hp

    def generate(self, items: Sequence[BatchItem], *, sampling: SamplingOptions,
                 alignment: AlignmentOptions | None = None,
                 max_active: Width = None) -> list[GeneratedSegment]:
        """Run every item to its end; results in item order (see :meth:`events`)."""
        results: list[GeneratedSegment | None] = [None] * len(items)
        for step in self.events(items, sampling=sampling, alignment=alignment, max_active=max_active):
            if step.finished is not None:
                results[step.key] = step.finished
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def events(self, items: Sequence[BatchItem], *, sampling: SamplingOptions,
               alignment: AlignmentOptions | None = None,
               max_active: Width = None) -> Iterator[RowStep]:
        """Yield each row's step (``key`` is the item's position) as it happens.

        At most ``max_active`` items (default: all) are in the batch at once;
        when one ends, the next waiting item is prefilled and joins the running
        batch. ``max_active`` may be a function of how many items have ended (a
        ramp). Items join in order; rows of one step come in the order they
        joined. Closing the iterator early drops the KV cache.
        """
        if not items:
            return
        if isinstance(max_active, int) and max_active < 1:
            raise ValueError(f"max_active must be at least 1, got {max_active}")
        batch = T3Batch(self.t3, sampling, alignment)
        waiting = list(range(len(items)))
        ended = 0
        try:
            while waiting or batch.rows:
                width = _width(max_active, len(items), ended)
                joining: list[tuple[Any, BatchItem]] = []
                if waiting and batch.rows < width:
                    free = width - batch.rows
                    joining = [(i, items[i]) for i in waiting[:free]]
                    waiting = waiting[free:]
                for step in batch.step(joining):
                    ended += step.finished is not None
                    yield step
        finally:
            batch.close()


#: How many items may be in the batch at once: a number, ``None`` (all), or a function
#: of how many items have ended so far.
Width = int | Callable[[int], int] | None


def _width(max_active: Width, items: int, ended: int) -> int:
    if max_active is None:
        return items
    width = max_active(ended) if callable(max_active) else max_active
    return max(1, int(width))


# -- how many segments per batch -------------------------------------------------------


def kv_cache_bytes_per_row(config: Any, dtype: torch.dtype, tokens: int) -> int:
    """Bytes of KV cache one batch row holds at ``tokens`` positions:
    layers x 2 (keys, values) x kv heads x head dim x dtype bytes x tokens."""
    heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    item = torch.empty(0, dtype=dtype).element_size()
    return int(config.num_hidden_layers) * 2 * heads * head_dim * item * int(tokens)


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory free for a batch on ``device``: CUDA's free memory, or on the CPU the
    system's available memory (psutil); ``None`` when it cannot be known (MPS)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return available_memory_bytes()
    return None


def auto_batch_size(free_bytes: int | None, bytes_per_segment: int, *, device_type: str) -> int:
    """Segments per batch: as many KV caches as fit in a fraction of the free
    memory, at least 1, at most the device type's cap (:data:`AUTO_CAP`).
    Unknown free memory gives the cap of a CPU."""
    cap = AUTO_CAP.get(device_type, AUTO_CAP["cpu"])
    if free_bytes is None:
        return min(cap, AUTO_CAP["cpu"])
    fraction = CUDA_MEMORY_FRACTION if device_type == "cuda" else CPU_MEMORY_FRACTION
    fits = math.floor(free_bytes * fraction / max(1, bytes_per_segment))
    return max(1, min(cap, fits))


# -- batches that shrink when memory runs out --------------------------------------------


#: How allocators word a failed allocation: CUDA and MPS say "out of memory"; torch's CPU
#: allocator says "can't allocate memory" (its errno text reads "Cannot allocate memory").
OUT_OF_MEMORY_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """``torch.cuda.OutOfMemoryError``, ``MemoryError``, or a RuntimeError that says an
    allocation failed (CPU allocator, MPS)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if (oom is not None and isinstance(exc, oom)) or isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(w in text for w in OUT_OF_MEMORY_WORDS)


__all__ = [
    "AUTO_CAP",
    "BatchItem",
    "BatchedSpeechTokenLoop",
    "Width",
    "auto_batch_size",
    "free_memory_bytes",
    "is_out_of_memory",
    "kv_cache_bytes_per_row",
    "left_pad",
    "unpadded_map",
]
