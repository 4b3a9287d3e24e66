"""Build upstream's S3Gen (``S3Token2Wav``) at any size, and read its size back from weights.

Upstream's ``S3Gen()`` hard-codes every size (about 264 M parameters; 1.06 GB in fp32).
Random-weight test checkpoints need the same classes with the same forward paths, only narrower, so
:func:`build_s3gen` assembles an ``S3Token2Wav`` from the *real* upstream classes (``S3Tokenizer``,
``CAMPPlus``, ``UpsampleConformerEncoder``, ``ConditionalDecoder``, ``CausalConditionalCFM``,
``CausalMaskedDiffWithXvec``, ``HiFTGenerator``, ``ConvRNNF0Predictor``) with the sizes in an
:class:`S3GenArch`. For :data:`RELEASED_S3GEN` it simply calls upstream's ``S3Gen()``.

The assembly mirrors ``S3Token2Mel.__init__`` and ``S3Token2Wav.__init__`` of chatterbox-tts 0.1.7
line by line; the only departures are sizes. Two upstream spots hard-code a size where the
constructor it sits in takes one, so a narrower model swaps in the same classes built at its own
width:

* ``UpsampleConformerEncoder`` builds ``pre_lookahead_layer`` (``PreLookaheadLayer``) and
  ``up_layer`` (``Upsample1D``) with ``channels=512`` whatever its ``output_size``;
* ``S3Tokenizer.__init__`` passes no config to ``S3TokenizerV2``, so its encoder is always
  1280 wide.

:func:`infer_s3gen_arch` reads an :class:`S3GenArch` back from a state dict (tensor names and
shapes only), so the loader needs no side file. Values no tensor shape reveals are fixed to the
released ones: the tokenizer's 64-wide heads (its rotary table is built for 64), the decoder's
8 attention heads, HiFT's upsample rates and kernel sizes (they set the 24 kHz output rate).

It raises ``ValueError`` for weights that do not describe an S3Gen; the checkpoint loader turns
that into a ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = [
    "RELEASED_S3GEN",
    "TINY_S3GEN",
    "S3GenArch",
    "assemble_s3gen",
    "build_s3gen",
    "infer_s3gen_arch",
    "indexed_count",
    "s3gen_ignorable_missing_keys",
    "tensor_shape",
]

_TOKENIZER_HEAD_DIM = 64  # S3TokenizerV2's rotary table (precompute_freqs_cis(64, ...)) fixes it
_DECODER_HEADS = 8  # ConditionalDecoder(num_heads=8) upstream; a shape shows heads x head_dim
_MEL_BINS = 80  # S3Gen's mel features, CFM channels and HiFT input


@dataclass(frozen=True)
class S3GenArch:
    """Every size of an S3Gen that differs between the released model and a tiny test model.

    Field names follow the upstream constructor arguments they feed.
    """

    tokenizer_state: int = 1280
    """``S3TokenizerV2`` width (``n_audio_state``); heads = width / 64."""
    tokenizer_layers: int = 6
    """``S3TokenizerV2`` attention blocks (``n_audio_layer``)."""
    tokenizer_mels: int = 128
    """``S3TokenizerV2`` mel bins (``n_mels``)."""
    xvector_init_channels: int = 128
    """``CAMPPlus(init_channels=...)``."""
    xvector_growth_rate: int = 32
    """``CAMPPlus(growth_rate=...)``."""
    xvector_bn_size: int = 4
    """``CAMPPlus(bn_size=...)``."""
    xvector_embedding_size: int = 192
    """``CAMPPlus(embedding_size=...)``: the x-vector in ``conds.pt``'s ``gen['embedding']``."""
    encoder_size: int = 512
    """Token embedding and ``UpsampleConformerEncoder`` width (``input_size == output_size``)."""
    encoder_heads: int = 8
    """``UpsampleConformerEncoder(attention_heads=...)``."""
    encoder_linear_units: int = 2048
    """``UpsampleConformerEncoder(linear_units=...)``."""
    encoder_blocks: int = 6
    """``UpsampleConformerEncoder(num_blocks=...)``; its 4 ``up_encoders`` are fixed upstream."""
    decoder_channels: tuple[int, ...] = (256,)
    """``ConditionalDecoder(channels=...)``."""
    decoder_attention_dim: int = 512
    """``num_heads * attention_head_dim`` of ``ConditionalDecoder`` (8 heads)."""
    decoder_blocks: int = 4
    """``ConditionalDecoder(n_blocks=...)``: transformer blocks per stage."""
    decoder_mid_blocks: int = 12
    """``ConditionalDecoder(num_mid_blocks=...)``."""
    hift_base_channels: int = 512
    """``HiFTGenerator(base_channels=...)``."""
    hift_resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    """``HiFTGenerator(resblock_kernel_sizes=...)`` (dilations 1, 3, 5 each)."""
    f0_channels: int = 512
    """``ConvRNNF0Predictor(cond_channels=...)``."""

    @property
    def tokenizer_heads(self) -> int:
        return self.tokenizer_state // _TOKENIZER_HEAD_DIM

    @property
    def decoder_head_dim(self) -> int:
        return self.decoder_attention_dim // _DECODER_HEADS


RELEASED_S3GEN = S3GenArch()
"""The sizes upstream's ``S3Gen()`` hard-codes (chatterbox-tts 0.1.7)."""

TINY_S3GEN = S3GenArch(
    tokenizer_state=64,
    tokenizer_layers=1,
    xvector_init_channels=16,
    xvector_growth_rate=8,
    xvector_bn_size=2,
    encoder_size=64,
    encoder_heads=4,
    encoder_linear_units=128,
    encoder_blocks=2,
    decoder_channels=(64,),
    decoder_attention_dim=64,
    decoder_blocks=1,
    decoder_mid_blocks=2,
    hift_base_channels=32,
    hift_resblock_kernel_sizes=(3, 7, 11),
    f0_channels=32,
)
"""Same classes and structure, about 2 M parameters (a fifth is the 6561 x 64 token embedding)."""


def build_s3gen(arch: S3GenArch = RELEASED_S3GEN) -> torch.nn.Module:
    """Upstream's ``S3Gen`` (``S3Token2Wav``) with the sizes in ``arch``, randomly initialised.

    :data:`RELEASED_S3GEN` returns plain ``S3Gen()``; other sizes :func:`assemble_s3gen`.
    Module initialisation is upstream's own (draws from torch's global RNG: seed it first for
    reproducible weights).
    """
    from chatterbox.models.s3gen import S3Gen

    if arch == RELEASED_S3GEN:
        return S3Gen()
    return assemble_s3gen(arch)


def assemble_s3gen(arch: S3GenArch) -> torch.nn.Module:
    """An ``S3Gen`` assembled from upstream's parts at ``arch``'s sizes (whatever they are).

    At :data:`RELEASED_S3GEN` sizes it has exactly ``S3Gen()``'s modules, buffers and shapes
    (the test suite checks that on the meta device).
    """
    from chatterbox.models.s3gen import S3Gen

    _validate(arch)
    s3gen = S3Gen.__new__(S3Gen)
    torch.nn.Module.__init__(s3gen)
    _init_token2mel(s3gen, arch)
    _init_token2wav(s3gen, arch)
    return s3gen


def _validate(arch: S3GenArch) -> None:
    if arch.tokenizer_state % _TOKENIZER_HEAD_DIM:
        raise ValueError(f"tokenizer width {arch.tokenizer_state} is not a multiple of 64")
    if arch.decoder_attention_dim % _DECODER_HEADS:
        raise ValueError(
            f"decoder attention width {arch.decoder_attention_dim} is not a multiple of 8"
        )
    if arch.encoder_size % arch.encoder_heads:
        raise ValueError(
            f"encoder width {arch.encoder_size} is not a multiple of {arch.encoder_heads} heads"
        )
    if arch.hift_base_channels % 8:
        raise ValueError(f"HiFT base channels {arch.hift_base_channels} is not a multiple of 8")


def _init_token2mel(s3gen: torch.nn.Module, arch: S3GenArch) -> None:
    """The body of upstream ``S3Token2Mel.__init__`` (meanflow=False), sized by ``arch``."""
    from chatterbox.models.s3gen.configs import CFM_PARAMS
    from chatterbox.models.s3gen.decoder import ConditionalDecoder
    from chatterbox.models.s3gen.flow import CausalMaskedDiffWithXvec
    from chatterbox.models.s3gen.flow_matching import CausalConditionalCFM
    from chatterbox.models.s3gen.utils.mel import mel_spectrogram
    from chatterbox.models.s3gen.xvector import CAMPPlus

    s3gen.tokenizer = _build_tokenizer(arch)
    s3gen.mel_extractor = mel_spectrogram
    s3gen.speaker_encoder = CAMPPlus(
        embedding_size=arch.xvector_embedding_size,
        growth_rate=arch.xvector_growth_rate,
        bn_size=arch.xvector_bn_size,
        init_channels=arch.xvector_init_channels,
        memory_efficient=False,
    )
    s3gen.meanflow = False
    estimator = ConditionalDecoder(
        in_channels=4 * _MEL_BINS,
        out_channels=_MEL_BINS,
        causal=True,
        channels=list(arch.decoder_channels),
        dropout=0.0,
        attention_head_dim=arch.decoder_head_dim,
        n_blocks=arch.decoder_blocks,
        num_mid_blocks=arch.decoder_mid_blocks,
        num_heads=_DECODER_HEADS,
        act_fn="gelu",
        meanflow=False,
    )
    decoder = CausalConditionalCFM(
        spk_emb_dim=_MEL_BINS, cfm_params=CFM_PARAMS, estimator=estimator
    )
    s3gen.flow = CausalMaskedDiffWithXvec(
        input_size=arch.encoder_size,
        spk_embed_dim=arch.xvector_embedding_size,
        encoder=_build_encoder(arch),
        decoder=decoder,
    )
    s3gen.resamplers = {}


def _init_token2wav(s3gen: torch.nn.Module, arch: S3GenArch) -> None:
    """The body of upstream ``S3Token2Wav.__init__``, sized by ``arch``."""
    from chatterbox.models.s3gen.const import S3GEN_SR
    from chatterbox.models.s3gen.f0_predictor import ConvRNNF0Predictor
    from chatterbox.models.s3gen.hifigan import HiFTGenerator

    kernels = list(arch.hift_resblock_kernel_sizes)
    s3gen.mel2wav = HiFTGenerator(
        sampling_rate=S3GEN_SR,
        base_channels=arch.hift_base_channels,
        upsample_rates=[8, 5, 3],
        upsample_kernel_sizes=[16, 11, 7],
        resblock_kernel_sizes=kernels,
        resblock_dilation_sizes=[[1, 3, 5] for _ in kernels],
        source_resblock_kernel_sizes=[7, 7, 11],
        source_resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        f0_predictor=ConvRNNF0Predictor(cond_channels=arch.f0_channels),
    )
    n_trim = S3GEN_SR // 50  # 20ms = half of a frame
    trim_fade = torch.zeros(2 * n_trim)
    trim_fade[n_trim:] = (torch.cos(torch.linspace(torch.pi, 0, n_trim)) + 1) / 2
    s3gen.register_buffer("trim_fade", trim_fade, persistent=False)
    s3gen.estimator_dtype = "fp32"


def _build_tokenizer(arch: S3GenArch) -> torch.nn.Module:
    """Upstream ``S3Tokenizer`` whose ``S3TokenizerV2`` gets a sized ``ModelConfig``.

    ``S3Tokenizer.__init__`` ignores its ``config`` for the encoder, so this runs
    ``S3TokenizerV2.__init__`` with the config and then the rest of ``S3Tokenizer.__init__``.
    """
    import librosa
    from chatterbox.models.s3tokenizer.s3tokenizer import S3Tokenizer
    from s3tokenizer.model_v2 import ModelConfig, S3TokenizerV2

    config = ModelConfig(
        n_mels=arch.tokenizer_mels,
        n_audio_state=arch.tokenizer_state,
        n_audio_head=arch.tokenizer_heads,
        n_audio_layer=arch.tokenizer_layers,
    )
    tokenizer = S3Tokenizer.__new__(S3Tokenizer)
    S3TokenizerV2.__init__(tokenizer, "speech_tokenizer_v2_25hz", config)
    tokenizer.n_fft = 400
    mel_filters = librosa.filters.mel(sr=16_000, n_fft=tokenizer.n_fft, n_mels=config.n_mels)
    tokenizer.register_buffer("_mel_filters", torch.FloatTensor(mel_filters))
    tokenizer.register_buffer("window", torch.hann_window(tokenizer.n_fft))
    return tokenizer


def _build_encoder(arch: S3GenArch) -> torch.nn.Module:
    """Upstream ``UpsampleConformerEncoder``, its two 512-wide layers rebuilt at its width."""
    from chatterbox.models.s3gen.transformer.upsample_encoder import (
        PreLookaheadLayer,
        Upsample1D,
        UpsampleConformerEncoder,
    )

    width = arch.encoder_size
    encoder = UpsampleConformerEncoder(
        output_size=width,
        attention_heads=arch.encoder_heads,
        linear_units=arch.encoder_linear_units,
        num_blocks=arch.encoder_blocks,
        dropout_rate=0.1,
        positional_dropout_rate=0.1,
        attention_dropout_rate=0.1,
        normalize_before=True,
        input_layer="linear",
        pos_enc_layer_type="rel_pos_espnet",
        selfattention_layer_type="rel_selfattn",
        input_size=width,
        use_cnn_module=False,
        macaron_style=False,
    )
    if width != 512:
        encoder.pre_lookahead_layer = PreLookaheadLayer(channels=width, pre_lookahead_len=3)
        encoder.up_layer = Upsample1D(channels=width, out_channels=width, stride=2)
    return encoder


def s3gen_ignorable_missing_keys() -> frozenset[str]:
    """Keys an S3Gen checkpoint may lack: upstream's ``S3Token2Wav.ignore_state_dict_missing``.

    They are the S3 tokenizer's mel filterbank and Hann window, persistent buffers that
    ``__init__`` recomputes deterministically. Some released S3Gen files omit them, which is why
    upstream loads ``s3gen.safetensors`` with ``strict=False``; the loader here tolerates exactly
    these two and nothing else.
    """
    from chatterbox.models.s3gen import S3Gen

    return frozenset(getattr(S3Gen, "ignore_state_dict_missing", ()))


# ----------------------------------------------------------------------------------------------
# Reading the sizes back from a state dict
# ----------------------------------------------------------------------------------------------


def infer_s3gen_arch(state: Mapping[str, torch.Tensor]) -> S3GenArch:
    """The :class:`S3GenArch` that ``state`` (an S3Gen state dict) was saved from.

    Raises ``ValueError`` naming the first expected tensor that is absent or oddly shaped.
    """
    tok = "tokenizer.encoder."
    xv = "speaker_encoder.xvector."
    enc = "flow.encoder."
    est = "flow.decoder.estimator."
    growth = tensor_shape(state, xv + "block1.tdnnd1.cam_layer.linear_local.weight")[0]
    bottleneck = tensor_shape(state, xv + "block1.tdnnd1.linear1.weight")[0]
    n_up = indexed_count(state, enc + "up_encoders.")
    if n_up != 4:
        raise ValueError(f"found {n_up} flow.encoder.up_encoders blocks; upstream always has 4")
    n_stages = indexed_count(state, est + "down_blocks.")
    if n_stages < 1:
        raise ValueError(f"no tensor named {est}down_blocks.0.*")
    n_ups = indexed_count(state, "mel2wav.ups.")
    n_resblocks = indexed_count(state, "mel2wav.resblocks.")
    if n_ups != 3 or n_resblocks % n_ups:
        raise ValueError(
            f"HiFT has {n_ups} upsample layers and {n_resblocks} resblocks; expected 3 and 3k"
        )
    hift = "mel2wav.conv_pre.parametrizations.weight.original1"
    f0 = "mel2wav.f0_predictor.condnet.0.parametrizations.weight.original1"
    kernels = tuple(
        tensor_shape(state, f"mel2wav.resblocks.{j}.convs1.0.parametrizations.weight.original1")[-1]
        for j in range(n_resblocks // n_ups)
    )
    return S3GenArch(
        tokenizer_state=tensor_shape(state, tok + "conv1.weight")[0],
        tokenizer_layers=indexed_count(state, tok + "blocks."),
        tokenizer_mels=tensor_shape(state, tok + "conv1.weight")[1],
        xvector_init_channels=tensor_shape(state, xv + "tdnn.linear.weight")[0],
        xvector_growth_rate=growth,
        xvector_bn_size=bottleneck // growth,
        xvector_embedding_size=tensor_shape(state, xv + "dense.linear.weight")[0],
        encoder_size=tensor_shape(state, enc + "embed.out.0.weight")[0],
        encoder_heads=tensor_shape(state, enc + "encoders.0.self_attn.pos_bias_u")[0],
        encoder_linear_units=tensor_shape(state, enc + "encoders.0.feed_forward.w_1.weight")[0],
        encoder_blocks=indexed_count(state, enc + "encoders."),
        decoder_channels=tuple(
            tensor_shape(state, f"{est}down_blocks.{i}.0.block1.block.0.weight")[0]
            for i in range(n_stages)
        ),
        decoder_attention_dim=tensor_shape(state, est + "down_blocks.0.1.0.attn1.to_q.weight")[0],
        decoder_blocks=indexed_count(state, est + "down_blocks.0.1."),
        decoder_mid_blocks=indexed_count(state, est + "mid_blocks."),
        hift_base_channels=tensor_shape(state, hift)[0],
        hift_resblock_kernel_sizes=kernels,
        f0_channels=tensor_shape(state, f0)[0],
    )


def tensor_shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    """The shape of ``state[key]``; ``ValueError`` naming the key when it is absent."""
    if key not in state:
        raise ValueError(f"no tensor named {key!r}")
    return tuple(state[key].shape)


def indexed_count(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    """How many consecutive ``prefix<N>.`` module indices exist (0 when none)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    count = len(found)
    if found and found != set(range(count)):
        raise ValueError(f"tensors {prefix}<N>.* skip indices: found {sorted(found)}")
    return count
