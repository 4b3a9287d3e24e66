"""S3Gen on several chunks in one flow-matching call, and on one chunk exactly as upstream.

Upstream's ``S3Token2Wav.inference`` (chatterbox-tts 0.1.7) decodes one chunk:
``CausalMaskedDiffWithXvec.inference`` encodes voice prompt + tokens, then
``CausalConditionalCFM.forward`` draws its noise with ``torch.randn_like`` over
the whole row (prompt frames included) and runs ``solve_euler`` under CFG (the
rows doubled), then ``HiFTGenerator.inference`` turns the mel frames after the
prompt into 24 kHz audio, drawing its source noise from the global RNG, and
``trim_fade`` silences and fades in the first 40 ms.

:func:`render_rows` does the same for any number of rows, each with its own
voice reference and tokens, and is the one path of every decode (one row is a
batch of one):

* **Noise.** Each row draws its flow-matching noise exactly as it would alone:
  from its own seed (:attr:`RenderRow.seed`) and in its own shape
  ``(1, 80, frames)``; the RNG state after that draw is kept, and the row's HiFT
  runs from it, so a seeded row gets the same audio in a batch as alone. A row
  without a seed draws from the global RNG (no equality promised then).
* **Padding.** Rows are ``prompt + tokens`` each, padded at the end to the
  longest; masks come from the rows' lengths. Everything after the embedding is
  causal or masked except the encoder's pre-lookahead convolution, which reads
  the 3 positions after each one: upstream feeds it the embedded (nonzero)
  padding, so the last 3 tokens of a shorter row would read the padding. It is
  zeroed first here (a row alone reads zeros there, the convolution's own
  padding). The estimator is causal (one stage of causal convolutions, see
  :func:`check_batchable`) and masks attention keys.
* **Prompts.** Rows with different references (``s3gen_short_prompt =
  "first_chunk"`` puts a segment's first chunk beside later chunks of others)
  share one call: each row carries its own prompt tokens, prompt mel
  (``cond``) and speaker vector. Rows with different step counts run in
  separate calls (one call per ``n_timesteps``).
* **HiFT** runs per row (its source noise and non-causal convolutions have no
  masks), on the row's own mel frames.

**Meanflow** (Chatterbox Turbo's ``S3Gen(meanflow=True)``) is decoded as upstream's
``S3Token2Wav.flow_inference`` and ``CausalConditionalCFM.forward`` decode it: two
noise draws per row (``(1, 80, 2 x tokens)`` first, then ``(1, 80, 2 x (prompt +
tokens))`` whose token part the first draw replaces), no CFG, ``basic_euler`` on a
linear time grid with the end time ``r`` mixed into the time embedding, and 2 steps
when none are asked for (:func:`default_cfm_steps`). Seeded rows get, again, the
audio they get alone.

What does not depend on the tokens is computed once per voice reference
(:func:`prepared_reference`): the speaker vector (``F.normalize`` then the
affine projection), the prompt tensors on the device in S3Gen's dtype
(upstream casts every tensor of ``ref_dict`` on every call). No host-device
sync runs that the result does not need: upstream's ``(token >= vocab).any()``
check (callers drop special tokens with :func:`.vocoder.decodable`), the
``.item()`` of ``make_pad_mask`` and the ``.item()`` that
``add_optional_chunk_mask`` runs for each of the estimator's 14 attention stages
at each of its steps (140 per call) are gone: the attention biases are built
once per call. On one row the results are bit-identical to upstream's.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Mel bins of S3Gen's flow (and HiFT's input).
MEL_BINS = 80
#: Upstream's flow-matching steps when none are asked for.
DEFAULT_CFM_STEPS = 10
#: ... and for a meanflow S3Gen (``flow_inference``'s default, Turbo's ``generate``'s choice).
MEANFLOW_CFM_STEPS = 2
#: Voice references kept prepared per S3Gen module (an engine uses two at most).
REFERENCE_CACHE_SIZE = 8


@dataclass(frozen=True)
class PreparedReference:
    """A voice reference (upstream's ``ref_dict``) as the flow reads it, on the device."""

    #: ``(P,)`` prompt speech tokens (long).
    prompt_token: torch.Tensor
    #: ``(F, 80)`` prompt mel frames, in S3Gen's dtype (F is 2 x P for a whole reference).
    prompt_feat: torch.Tensor
    #: ``(1, 80)`` speaker vector: the x-vector normalized, then projected.
    speaker: torch.Tensor

    @property
    def prompt_tokens(self) -> int:
        return int(self.prompt_token.size(0))

    @property
    def prompt_frames(self) -> int:
        return int(self.prompt_feat.size(0))


def prepare_reference(s3gen: Any, ref_dict: dict[str, Any]) -> PreparedReference:
    """``ref_dict`` as ``S3Token2Mel.forward`` and ``flow.inference`` turn it into tensors
    on the device: the same casts and speaker projection, except that the prompt
    tokens go straight to ``long`` (upstream's loop casts them to S3Gen's dtype
    first: lossless in float32, but float16 and bfloat16 round ids above 2048 and
    256). The prompt's length is its tensor's (``prompt_token_len`` is not read)."""
    flow = s3gen.flow
    device, dtype = _device(s3gen), s3gen.dtype

    def tensor(key: str, as_dtype: torch.dtype) -> torch.Tensor:
        value = ref_dict[key]
        value = torch.from_numpy(value) if isinstance(value, np.ndarray) else torch.as_tensor(value)
        return value.to(device=device, dtype=as_dtype)

    with torch.inference_mode():
        prompt_token = torch.atleast_2d(tensor("prompt_token", torch.long))
        prompt_feat = tensor("prompt_feat", dtype)
        while prompt_feat.dim() < 3:
            prompt_feat = prompt_feat[None]
        if prompt_token.size(0) != 1 or prompt_feat.size(0) != 1:
            raise ValueError(f"a voice reference holds one prompt, got {prompt_token.size(0)} token rows "
                             f"and {prompt_feat.size(0)} mel rows")
        embedding = F.normalize(torch.atleast_2d(tensor("embedding", dtype)), dim=1)
        speaker = flow.spk_embed_affine_layer(embedding)
    return PreparedReference(prompt_token[0], prompt_feat[0], speaker)


class _ReferenceCache:
    """Prepared references of one S3Gen module by the identity of their ``ref_dict``
    (held, so an identity is never reused while cached), least recently used out
    first. References are read, never changed, so an entry stays valid while the
    module's device and dtype do."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[dict[str, Any], tuple[Any, ...], PreparedReference]] = OrderedDict()

    def get(self, s3gen: Any, ref_dict: dict[str, Any]) -> PreparedReference:
        where = (_device(s3gen), s3gen.dtype)
        entry = self._entries.get(id(ref_dict))
        if entry is not None and entry[0] is ref_dict and entry[1] == where:
            self._entries.move_to_end(id(ref_dict))
            return entry[2]
        prepared = prepare_reference(s3gen, ref_dict)
        self._entries[id(ref_dict)] = (ref_dict, where, prepared)
        self._entries.move_to_end(id(ref_dict))
        while len(self._entries) > REFERENCE_CACHE_SIZE:
            self._entries.popitem(last=False)
        return prepared


_CACHES: weakref.WeakKeyDictionary[Any, _ReferenceCache] = weakref.WeakKeyDictionary()


def prepared_reference(s3gen: Any, ref_dict: dict[str, Any]) -> PreparedReference:
    """:func:`prepare_reference`, computed once per (S3Gen module, reference)."""
    cache = _CACHES.get(s3gen)
    if cache is None:
        cache = _CACHES[s3gen] = _ReferenceCache()
    return cache.get(s3gen, ref_dict)


@dataclass(frozen=True)
class RenderRow:
    """One chunk to render: its token ids (context + new, all decodable) and voice."""

    tokens: Sequence[int]
    reference: PreparedReference
    #: Seed of this call's noise (flow matching, then HiFT); ``None``: the global RNG.
    seed: int | None = None
    #: Flow-matching steps (``None``: upstream's default, 10, or 2 for a meanflow S3Gen).
    n_timesteps: int | None = None
    #: HiFT source to reuse over the row's first samples (``(1, 1, S)``), or ``None``.
    source_prefix: torch.Tensor | None = None


@dataclass(frozen=True)
class RenderedRow:
    """A rendered chunk: 24 kHz audio, HiFT's source signal, and the row's seconds."""

    audio: np.ndarray
    #: ``(1, 1, samples)`` HiFT's source excitation of this call.
    source: torch.Tensor
    #: This row's share of the call: the flow's seconds split by the rows' mel
    #: frames (prompt included: a row's cost grows with its whole length), plus
    #: its own noise draw and HiFT.
    seconds: float


@dataclass
class _RowNoise:
    noise: torch.Tensor
    #: RNG states after the draw (CPU, then the CUDA device's or None); None unseeded.
    after: tuple[torch.Tensor, torch.Tensor | None] | None


def is_meanflow(s3gen: Any) -> bool:
    """Whether ``s3gen`` is a meanflow model (Turbo's): no CFG, two noise draws, 2 steps."""
    return bool(getattr(s3gen, "meanflow", False))


def default_cfm_steps(s3gen: Any) -> int:
    """Flow-matching steps when none are asked for: upstream's ``flow_inference`` default
    (2 for a meanflow model, else 10)."""
    return MEANFLOW_CFM_STEPS if is_meanflow(s3gen) else DEFAULT_CFM_STEPS


def check_batchable(s3gen: Any) -> None:
    """Refuse an S3Gen whose padded rows would not equal the rows alone: chunked
    attention masks, or an estimator with more than one causal stage (strided
    convolutions read across the padding). A meanflow model is supported (see the
    module doc)."""
    estimator = s3gen.flow.decoder.estimator
    if is_meanflow(s3gen) and getattr(estimator, "time_embed_mixer", None) is None:
        raise ValueError("a meanflow S3Gen needs its estimator's time_embed_mixer")
    encoder = s3gen.flow.encoder
    if encoder.static_chunk_size or encoder.use_dynamic_chunk or encoder.global_cmvn is not None:
        raise ValueError("S3Gen's encoder uses chunked attention or global CMVN; only full attention "
                         "is supported")
    if estimator.static_chunk_size or not estimator.causal or len(estimator.down_blocks) != 1:
        raise ValueError("S3Gen's estimator must be causal, with one stage and full attention, as the "
                         f"released one (this one: {len(estimator.down_blocks)} stage(s), causal={estimator.causal})")


def render_rows(s3gen: Any, rows: Sequence[RenderRow]) -> list[RenderedRow]:
    """Audio for each row, in order: one flow call per step count, then HiFT per row.

    Each seeded row's audio is what upstream ``s3gen.inference`` returns for it alone
    under ``torch.manual_seed(row.seed)`` (bit-identical for a single row, float32
    tolerance in a batch). Runs under inference mode on native CPU kernels.
    """
    if not rows:
        return []
    check_batchable(s3gen)
    flowed: dict[int, tuple[torch.Tensor, _RowNoise, float]] = {}
    with torch.inference_mode(), native_cpu_kernels(_device(s3gen)):
        for steps, indexes in _by_steps(rows, default_cfm_steps(s3gen)).items():
            flowed.update(zip(indexes, _flow_group(s3gen, [rows[i] for i in indexes], steps), strict=True))
        return [_vocode_row(s3gen, row, *flowed[i]) for i, row in enumerate(rows)]


def _flow_group(s3gen: Any, rows: Sequence[RenderRow], steps: int) -> list[tuple[torch.Tensor, _RowNoise, float]]:
    """Each row's noise, then one flow call on them all: per row its mel frames, its
    noise (with the RNG state after it) and its seconds so far."""
    device = _device(s3gen)
    lengths = [row.reference.prompt_tokens + len(row.tokens) for row in rows]
    noises, seconds = [], []
    for row, length in zip(rows, lengths, strict=True):
        started = time.perf_counter()
        frames = s3gen.flow.token_mel_ratio * length
        if is_meanflow(s3gen):
            noises.append(_draw_meanflow_noise(frames, s3gen.flow.token_mel_ratio * len(row.tokens), device,
                                               s3gen.dtype, row.seed))
        else:
            noises.append(_draw_noise((1, MEL_BINS, frames), device, s3gen.dtype, row.seed))
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    mels = flow_mels(s3gen, rows, [noise.noise for noise in noises], steps)
    elapsed = time.perf_counter() - started
    return [(mel, noise, own + elapsed * length / sum(lengths))
            for mel, noise, own, length in zip(mels, noises, seconds, lengths, strict=True)]


def _vocode_row(s3gen: Any, row: RenderRow, mel: torch.Tensor, noise: _RowNoise, seconds: float) -> RenderedRow:
    started = time.perf_counter()
    audio, source = vocode(s3gen, mel, noise.after, row.source_prefix)
    audio_np = audio.squeeze(0).detach().float().cpu().numpy()
    return RenderedRow(audio_np, source, seconds + time.perf_counter() - started)


def native_cpu_kernels(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """On a CPU, S3Gen runs without oneDNN (mkldnn).

    oneDNN builds and caches a kernel per input shape, and S3Gen sees a new
    length with nearly every chunk (context + new tokens, after special tokens
    are dropped). Its ``ConvTranspose1d`` upsamplers keep tens of MB per cached
    length (measured with torch 2.6: about 26 MB per new length on the tiny
    checkpoint, 33 MB on the full-size S3Gen), so a long run's memory grew by
    gigabytes until the cache's capacity; building those kernels also made a call
    on a new length 5x slower (tiny) or as slow as the native kernels (full size).
    The native kernels keep nothing per shape, are as fast on a new length, and
    5-10 % slower than a cached oneDNN kernel at full size. The switch is
    process-wide while S3Gen runs, which the engine's model lock serializes.
    """
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return contextlib.nullcontext()
    return torch.backends.mkldnn.flags(enabled=False)


def _by_steps(rows: Sequence[RenderRow], default: int = DEFAULT_CFM_STEPS) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.n_timesteps or default, []).append(i)
    return groups


def _device(s3gen: Any) -> torch.device:
    return next(s3gen.parameters()).device


@contextlib.contextmanager
def _forked_rng(device: torch.device, enabled: bool) -> Iterator[None]:
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=enabled):
        yield


def _draw_noise(shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype,
                seed: int | None) -> _RowNoise:
    """The flow's noise for one row, as ``torch.randn_like(mu)`` draws it alone."""
    if seed is None:
        return _RowNoise(torch.randn(shape, device=device, dtype=dtype), None)
    with _forked_rng(device, True):
        torch.manual_seed(seed)
        noise = torch.randn(shape, device=device, dtype=dtype)
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return _RowNoise(noise, (torch.get_rng_state(), cuda))


def _draw_meanflow_noise(frames: int, token_frames: int, device: torch.device, dtype: torch.dtype,
                         seed: int | None) -> _RowNoise:
    """A meanflow row's noise, ``(1, 80, frames)``, as upstream draws it alone: first
    ``flow_inference``'s ``(1, 80, token_frames)`` (the tokens' frames), then the flow's
    ``randn_like(mu)`` over all ``frames``, whose last ``token_frames`` the first draw
    replaces (the prompt's frames keep the second draw's first columns)."""
    with _forked_rng(device, seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        tokens = torch.randn((1, MEL_BINS, token_frames), device=device, dtype=dtype)
        noise = torch.randn((1, MEL_BINS, frames), device=device, dtype=dtype)
        noise[..., frames - token_frames:] = tokens
        if seed is None:
            return _RowNoise(noise, None)
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return _RowNoise(noise, (torch.get_rng_state(), cuda))


def _length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` True where a position is within its row (upstream's
    ``~make_pad_mask``, without its ``.item()``)."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def flow_mels(s3gen: Any, rows: Sequence[RenderRow], noises: Sequence[torch.Tensor],
              n_timesteps: int) -> list[torch.Tensor]:
    """Each row's mel frames after its prompt, ``(1, 80, frames)``: upstream's
    ``flow.inference`` (finalize) and ``CausalConditionalCFM.forward`` with the
    noise given (``noises[b]``: ``(1, 80, 2 x (prompt + tokens))``)."""
    flow = s3gen.flow
    device = _device(s3gen)
    ratio = flow.token_mel_ratio
    ids = [torch.cat([row.reference.prompt_token, torch.as_tensor(list(row.tokens), dtype=torch.long,
                                                                  device=device)]) for row in rows]
    lengths = [len(x) for x in ids]
    longest = max(lengths)
    token = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True) if len(ids) > 1 else ids[0][None]
    token_len = torch.tensor(lengths, dtype=torch.long, device=device)
    speaker = torch.cat([row.reference.speaker for row in rows])
    mask = _length_mask(token_len, longest).unsqueeze(-1).to(speaker)
    h, h_mask = encode(flow.encoder, flow.input_embedding(token) * mask, token_len,
                       padded=min(lengths) < longest)
    h = flow.encoder_proj(h)
    frames = h.size(1)
    conds = torch.zeros([len(rows), frames, flow.output_size], device=device).to(h.dtype)
    for b, row in enumerate(rows):
        conds[b, :row.reference.prompt_frames] = row.reference.prompt_feat
    conds = conds.transpose(1, 2)
    mel_mask = h_mask.to(h)
    mu = h.transpose(1, 2).contiguous()
    if len(rows) == 1:
        z = noises[0]
    else:
        z = torch.zeros_like(mu)
        for b, noise in enumerate(noises):
            z[b, :, :noise.size(2)] = noise[0]
    cfm = flow.decoder
    t_span = torch.linspace(0, 1, n_timesteps + 1, device=mu.device, dtype=mu.dtype)
    if is_meanflow(s3gen):  # linear time grid, no CFG (upstream's basic_euler)
        feat = basic_euler(cfm, z, t_span, mu, mel_mask, speaker, conds)
    else:
        if cfm.t_scheduler == "cosine":
            t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
        feat = solve_euler(cfm, z, t_span, mu, mel_mask, speaker, conds)
    return [feat[b:b + 1, :, row.reference.prompt_frames:ratio * length]
            for b, (row, length) in enumerate(zip(rows, lengths, strict=True))]


def encode(encoder: Any, xs: torch.Tensor, xs_lens: torch.Tensor, *,
           padded: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``UpsampleConformerEncoder.forward`` (full attention), with the padding zeroed
    before the pre-lookahead convolution when rows are ``padded``. Returns the
    encoded frames ``(B, 2T, C)`` and their mask ``(B, 1, 2T)``."""
    masks = _length_mask(xs_lens, xs.size(1)).unsqueeze(1)
    xs, pos_emb, masks = encoder.embed(xs, masks)
    if padded:  # what a row alone reads past its end: the lookahead's zero padding
        xs = xs * masks.transpose(1, 2).to(xs.dtype)
    xs = encoder.pre_lookahead_layer(xs)
    xs = encoder.forward_layers(xs, masks, pos_emb, masks)
    xs = xs.transpose(1, 2).contiguous()
    xs, xs_lens = encoder.up_layer(xs, xs_lens)
    xs = xs.transpose(1, 2).contiguous()
    masks = _length_mask(xs_lens, xs.size(1)).unsqueeze(1)
    xs, pos_emb, masks = encoder.up_embed(xs, masks)
    xs = encoder.forward_up_layers(xs, masks, pos_emb, masks)
    if encoder.normalize_before:
        xs = encoder.after_norm(xs)
    return xs, masks


def solve_euler(cfm: Any, x: torch.Tensor, t_span: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                spks: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """``ConditionalCFM.solve_euler`` (CFG doubling, same arithmetic), with the
    estimator's attention biases built once instead of at each step and stage."""
    from chatterbox.models.s3gen.flow_matching import cast_all

    estimator = cfm.estimator
    in_dtype = x.dtype
    x, t_span, mu, mask, spks, cond = cast_all(x, t_span, mu, mask, spks, cond, dtype=estimator.dtype)
    B, T = mu.size(0), x.size(2)
    x_in = torch.zeros([2 * B, MEL_BINS, T], device=x.device, dtype=x.dtype)
    mask_in = torch.zeros([2 * B, 1, T], device=x.device, dtype=x.dtype)
    mu_in = torch.zeros([2 * B, MEL_BINS, T], device=x.device, dtype=x.dtype)
    t_in = torch.zeros([2 * B], device=x.device, dtype=x.dtype)
    spks_in = torch.zeros([2 * B, MEL_BINS], device=x.device, dtype=x.dtype)
    cond_in = torch.zeros([2 * B, MEL_BINS, T], device=x.device, dtype=x.dtype)
    mask_in[:B] = mask_in[B:] = mask
    mu_in[:B] = mu
    spks_in[:B] = spks
    cond_in[:B] = cond
    biases = _attention_biases(estimator, mask_in, x.dtype)
    rate = cfm.inference_cfg_rate
    for t, r in zip(t_span[:-1], t_span[1:]):
        t = t.unsqueeze(dim=0)
        r = r.unsqueeze(dim=0)
        x_in[:B] = x_in[B:] = x
        t_in[:B] = t_in[B:] = t
        dxdt = estimate(estimator, x_in, mask_in, mu_in, t_in, spks_in, cond_in, biases)
        dxdt, cfg_dxdt = torch.split(dxdt, [B, B], dim=0)
        dxdt = ((1.0 + rate) * dxdt - rate * cfg_dxdt)
        dt = r - t
        x = x + dt * dxdt
    return x.to(in_dtype)


def basic_euler(cfm: Any, x: torch.Tensor, t_span: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                spks: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """``CausalConditionalCFM.basic_euler`` (meanflow: no CFG, the step's end time ``r``
    given to the estimator), with the attention biases built once. Each row gets the
    start and end times (upstream's ``(1,)`` tensors, one per row here)."""
    from chatterbox.models.s3gen.flow_matching import cast_all

    estimator = cfm.estimator
    in_dtype = x.dtype
    x, t_span, mu, mask, spks, cond = cast_all(x, t_span, mu, mask, spks, cond, dtype=estimator.dtype)
    B = x.size(0)
    biases = _attention_biases(estimator, mask, x.dtype)
    for t, r in zip(t_span[:-1], t_span[1:]):
        t, r = t[None], r[None]
        dxdt = estimate(estimator, x, mask, mu, t.expand(B), spks, cond, biases, r=r.expand(B))
        x = x + (r - t) * dxdt
    return x.to(in_dtype)


def _attention_biases(estimator: Any, mask: torch.Tensor, dtype: torch.dtype) -> list[torch.Tensor]:
    """The additive attention bias of each resolution (upstream's ``mask_to_bias`` of
    ``add_optional_chunk_mask``, full attention): one per down stage."""
    from chatterbox.models.s3gen.decoder import mask_to_bias

    biases, level = [], mask
    for _ in estimator.down_blocks:
        biases.append(mask_to_bias(level.bool(), dtype))
        level = level[:, :, ::2]
    return biases


def _attend(blocks: Any, x: torch.Tensor, bias: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    x = x.transpose(1, 2).contiguous()  # b c t -> b t c
    for block in blocks:
        x = block(hidden_states=x, attention_mask=bias, timestep=t)
    return x.transpose(1, 2).contiguous()


def estimate(estimator: Any, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor,
             spks: torch.Tensor, cond: torch.Tensor, biases: Sequence[torch.Tensor],
             r: torch.Tensor | None = None) -> torch.Tensor:
    """``ConditionalDecoder.forward`` with precomputed attention biases; with ``r`` (a
    meanflow estimator's end times) the time embedding is upstream's mix of ``t`` and ``r``."""
    t = estimator.time_embeddings(t).to(t.dtype)
    t = estimator.time_mlp(t)
    if r is not None:
        r = estimator.time_mlp(estimator.time_embeddings(r).to(t.dtype))
        t = estimator.time_embed_mixer(torch.cat([t, r], dim=1))
    x = torch.cat([x, mu, spks.unsqueeze(-1).expand(-1, -1, x.size(-1)), cond], dim=1)
    hiddens, masks = [], [mask]
    for level, (resnet, blocks, downsample) in enumerate(estimator.down_blocks):
        mask_down = masks[-1]
        x = _attend(blocks, resnet(x, mask_down, t), biases[level], t)
        hiddens.append(x)
        x = downsample(x * mask_down)
        masks.append(mask_down[:, :, ::2])
    masks = masks[:-1]
    mask_mid = masks[-1]
    for resnet, blocks in estimator.mid_blocks:
        x = _attend(blocks, resnet(x, mask_mid, t), biases[len(masks) - 1], t)
    for resnet, blocks, upsample in estimator.up_blocks:
        mask_up = masks.pop()
        skip = hiddens.pop()
        x = torch.cat([x[:, :, :skip.shape[-1]], skip], dim=1)
        x = _attend(blocks, resnet(x, mask_up, t), biases[len(masks)], t)
        x = upsample(x * mask_up)
    x = estimator.final_block(x, mask_up)
    return estimator.final_proj(x * mask_up) * mask


def vocode(s3gen: Any, mel: torch.Tensor, rng_after: tuple[torch.Tensor, torch.Tensor | None] | None,
           source_prefix: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """HiFT on one row's mel frames from the RNG state its noise draw left (upstream's
    ``hift_inference`` then ``trim_fade``). Returns ``(1, samples)`` audio and the
    ``(1, 1, samples)`` source signal."""
    device = _device(s3gen)
    with _forked_rng(device, rng_after is not None):
        if rng_after is not None:
            torch.set_rng_state(rng_after[0])
            if rng_after[1] is not None:
                torch.cuda.set_rng_state(rng_after[1], device)
        mel = mel.to(dtype=s3gen.dtype)
        cache = torch.zeros(1, 1, 0).to(device=device, dtype=s3gen.dtype) if source_prefix is None else source_prefix
        wav, source = s3gen.mel2wav.inference(speech_feat=mel, cache_source=cache)
    wav[:, :len(s3gen.trim_fade)] *= s3gen.trim_fade
    return wav, source


__all__ = ["DEFAULT_CFM_STEPS", "MEANFLOW_CFM_STEPS", "PreparedReference", "RenderRow", "RenderedRow",
           "basic_euler", "check_batchable", "default_cfm_steps", "encode", "estimate", "flow_mels", "is_meanflow",
           "native_cpu_kernels", "prepare_reference", "prepared_reference", "render_rows", "solve_euler", "vocode"]
