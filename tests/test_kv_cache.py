"""The in-place KV cache: same keys and values as transformers' DynamicCache, fewer copies."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import DynamicCache

from seqopt_plugins.chatterbox.checkpoint import load_checkpoint
from seqopt_plugins.chatterbox.kv_cache import GrowingCache, GrowingLayer, growing_cache

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _kv(rows: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 2, n, 4, generator=g), torch.randn(rows, 2, n, 4, generator=g)


def test_growing_layer_returns_what_a_dynamic_cache_returns():
    ours, theirs = GrowingCache(1), DynamicCache()
    for step, n in enumerate([7, 1, 1, 3, 1] + [1] * 300):
        k, v = _kv(3, n, step)
        a = ours.update(k, v, 0)
        b = theirs.update(k, v, 0)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert ours.get_seq_length() == theirs.get_seq_length() == 313
    layer = ours.layers[0]
    assert layer.capacity >= 313
    index = torch.tensor([2, 0])
    ours.batch_select_indices(index)
    theirs.batch_select_indices(index)
    assert torch.equal(layer.keys, theirs.layers[0].keys)
    assert torch.equal(layer.values, theirs.layers[0].values)


def test_appends_copy_only_when_the_buffer_fills():
    layer = GrowingLayer(headroom=16)
    growths, capacity = 0, 0
    for step in range(200):
        layer.update(*_kv(1, 1, step))
        growths += layer.capacity != capacity
        capacity = layer.capacity
    # amortized growth (by 16 or a quarter): 9 copies in 200 steps, not 200 as with torch.cat
    assert growths == 9 and capacity == 215
    bounded = GrowingLayer(limit=20, headroom=16)
    bounded.update(*_kv(1, 10, 0))
    assert bounded.capacity == 20  # never reserves past the known limit ...
    for step in range(15):
        bounded.update(*_kv(1, 1, step))
    assert bounded.length == 25 and bounded.capacity >= 25  # ... but still grows past it


def test_drop_front_keeps_the_spare_room():
    layer = GrowingLayer(headroom=8)
    k, v = _kv(2, 6, 0)
    layer.update(k, v)
    room = layer.capacity
    layer.drop_front(2)
    assert torch.equal(layer.keys, k[:, :, 2:]) and torch.equal(layer.values, v[:, :, 2:])
    assert layer.capacity == room - 2 and layer.get_seq_length() == 4
    k2, v2 = _kv(2, 1, 1)
    storage = layer._k.untyped_storage().data_ptr()
    layer.update(k2, v2)
    assert layer._k.untyped_storage().data_ptr() == storage  # appended in place
    assert torch.equal(layer.keys, torch.cat([k[:, :, 2:], k2], dim=2))


def test_concatenate_rows_left_pads_the_shorter_cache_with_zeros():
    a, b = GrowingCache(2), GrowingCache(2)
    ka, va = _kv(2, 5, 0)
    kb, vb = _kv(1, 3, 1)
    for layer in range(2):
        a.update(ka, va, layer)
        b.update(kb, vb, layer)
    before = a.reserved_bytes + b.reserved_bytes
    joined = a.concatenate_rows(b)
    assert a.reserved_bytes == b.reserved_bytes == 0 < before  # consumed as it went
    assert joined.get_seq_length() == 5 and len(joined.layers) == 2
    keys = joined.layers[1].keys
    assert keys.shape == (3, 2, 5, 4)
    assert torch.equal(keys[:2], ka) and torch.equal(keys[2:, :, 2:], kb)
    assert torch.count_nonzero(keys[2:, :, :2]) == 0
    assert joined.reserved_bytes >= 2 * 2 * 3 * 2 * 5 * 4 * 4
    with pytest.raises(ValueError, match="rows"):
        joined.update(*_kv(2, 1, 2), 0)  # 3 rows cached, 2 given


def test_model_outputs_equal_dynamic_cache(tiny_checkpoint):
    t3 = load_checkpoint(tiny_checkpoint).t3
    tfmr = t3.tfmr
    g = torch.Generator().manual_seed(0)
    prompt = torch.randn(2, 9, t3.dim, generator=g)
    steps = [torch.randn(2, 1, t3.dim, generator=g) for _ in range(12)]
    outs = []
    with torch.inference_mode():
        for past in (DynamicCache(), growing_cache(tfmr.config, limit=30)):
            hidden = [tfmr(inputs_embeds=prompt, past_key_values=past, use_cache=True).last_hidden_state]
            for x in steps:
                hidden.append(tfmr(inputs_embeds=x, past_key_values=past, use_cache=True).last_hidden_state)
            outs.append(torch.cat(hidden, dim=1))
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-6)
