"""Chatterbox architectures: the size records, their inference from tensors, and the module builder.

:class:`CheckpointArch` holds every size of a checkpoint (:class:`T3Arch`, :class:`VEArch`, and
:class:`~seqopt_plugins.chatterbox.tiny_s3gen.S3GenArch`); :data:`RELEASED_ARCH` is the released
model, :data:`TINY_ARCH` seqopt's test sizes; :data:`ARCHS` holds both scales of every model
(``english``, ``multilingual``: T3 on Llama with a 2454-token grapheme vocabulary, ``turbo``: T3
on GPT-2 medium without Perceiver or emotion input, and S3Gen's meanflow decoder).

Inference reads every size from tensor names and shapes (no side file): the number of T3 layers
from the ``tfmr.layers.N`` keys, hidden and MLP widths from the weights, and so on. Attention heads
are not visible in a shape, so T3 is assumed to have 16 as released (head width = q_proj rows /
16), for GPT-2 too. Which model a folder holds comes from its file layout (:mod:`.files`).

Building: :func:`build_t3`, :func:`build_ve` and :func:`build_s3gen` (from :mod:`..tiny_s3gen`),
dispatched by component name in :func:`build_module`, are the one place that turns an arch into
upstream's own module classes, with each module's own initialisation; both the loader and the
random writer build through them. The T3 backbone is registered in upstream's ``LLAMA_CONFIGS``
under a derived name (``Llama_520M`` for the released sizes), a GPT-2 one likewise
(``GPT2_medium``). S3Gen's meanflow variant is the tiny_s3gen assembly with the one part
``S3Gen(meanflow=True)`` adds: the decoder's ``time_embed_mixer`` (:func:`build_s3gen_for`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..tiny_s3gen import (
    RELEASED_S3GEN,
    TINY_S3GEN,
    S3GenArch,
    build_s3gen,
    indexed_count,
    infer_s3gen_arch,
    tensor_shape,
)
from .files import (
    LAYOUTS,
    S3GEN_FILE,
    T3_FILE,
    VE_FILE,
    CheckpointError,
    Model,
    ModelLayout,
    _checked_folder,
    _read_tensors,
)

if TYPE_CHECKING:
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder

Scale = Literal["tiny", "full"]

T3_HEADS = 16
"""Attention heads of T3's Llama backbone (released model); not recoverable from a shape."""
PERCEIVER_HEADS = 4
"""``Perceiver(num_attn_heads=4)`` upstream; not recoverable from a shape."""

COMPONENT_FILES: Mapping[str, str] = {"ve": VE_FILE, "t3": T3_FILE, "s3gen": S3GEN_FILE}
"""The three weight files by component name, in the order they are read, built and written."""


# ----------------------------------------------------------------------------------------------
# Architectures
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class T3Arch:
    """Sizes of T3: its Llama backbone and Chatterbox's embeddings, heads and conditioning."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_layers: int = 30
    num_heads: int = T3_HEADS
    num_kv_heads: int = T3_HEADS
    head_dim: int = 64
    text_vocab_size: int = 704
    speech_vocab_size: int = 8194
    max_text_tokens: int = 2048
    max_speech_tokens: int = 4096
    speaker_embed_size: int = 256
    perceiver_queries: int = 32
    """Query tokens of the Perceiver resampler over the voice prompt (0: no Perceiver)."""
    emotion_adv: bool = True
    backbone: Literal["llama", "gpt2"] = "llama"
    """``llama`` (English, Multilingual) or ``gpt2`` (Turbo: no learned T3 position embeddings,
    GPT-2's own; ``tfmr.wte`` is saved, as released, though T3 never uses it)."""
    speech_cond_prompt_len: int = 150
    """S3 tokens of the voice prompt T3 conditions on (Turbo: 375); not visible in a shape."""
    gpt2_positions: int = 8196
    """GPT-2 ``n_positions`` (``tfmr.wpe`` rows); unused for Llama."""

    @property
    def llama_config_name(self) -> str:
        """``Llama_520M`` / ``GPT2_medium`` for the released backbones, else a derived name."""
        if self.backbone == "gpt2":
            if self.llama_config() == _released_gpt2_config():
                return "GPT2_medium"
            return (
                f"seqopt_gpt2_L{self.num_layers}_H{self.hidden_size}_I{self.intermediate_size}"
                f"_A{self.num_heads}_P{self.gpt2_positions}_V{self.text_vocab_size}"
            )
        if self.llama_config() == _released_llama_config():
            return "Llama_520M"
        return (
            f"seqopt_llama_L{self.num_layers}_H{self.hidden_size}_I{self.intermediate_size}"
            f"_A{self.num_heads}x{self.head_dim}_KV{self.num_kv_heads}"
        )

    def llama_config(self) -> dict[str, Any]:
        """Upstream's ``LLAMA_520M_CONFIG_DICT`` (or ``GPT2_MEDIUM_CONFIG``) with these sizes."""
        if self.backbone == "gpt2":
            config = _released_gpt2_config()
            config.update(
                n_embd=self.hidden_size,
                hidden_size=self.hidden_size,
                n_layer=self.num_layers,
                n_head=self.num_heads,
                n_positions=self.gpt2_positions,
                n_ctx=self.gpt2_positions,
                vocab_size=self.text_vocab_size,
            )
            if self.intermediate_size != 4 * self.hidden_size:  # GPT-2's default n_inner
                config["n_inner"] = self.intermediate_size
            return config
        config = _released_llama_config()
        config.update(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            head_dim=self.head_dim,
        )
        return config

    def t3_config(self) -> T3Config:
        """An upstream ``T3Config`` for these sizes; registers the backbone in ``LLAMA_CONFIGS``."""
        from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS
        from chatterbox.models.t3.modules.t3_config import T3Config

        name = self.llama_config_name
        if name not in LLAMA_CONFIGS:
            LLAMA_CONFIGS[name] = self.llama_config()
        hp = T3Config(text_tokens_dict_size=self.text_vocab_size)
        hp.llama_config_name = name
        hp.speech_tokens_dict_size = self.speech_vocab_size
        hp.max_text_tokens = self.max_text_tokens
        hp.max_speech_tokens = self.max_speech_tokens
        hp.speaker_embed_size = self.speaker_embed_size
        hp.use_perceiver_resampler = self.perceiver_queries > 0
        hp.emotion_adv = self.emotion_adv
        hp.speech_cond_prompt_len = self.speech_cond_prompt_len
        if self.backbone == "gpt2":
            hp.input_pos_emb = None
        return hp


@dataclass(frozen=True)
class VEArch:
    """Sizes of the VoiceEncoder (a 3-layer LSTM over 40 mel bins, then a projection)."""

    hidden_size: int = 256
    num_mels: int = 40
    speaker_embed_size: int = 256


@dataclass(frozen=True)
class CheckpointArch:
    """Every size of a checkpoint, as written or as inferred from its tensors."""

    t3: T3Arch = field(default_factory=T3Arch)
    s3gen: S3GenArch = RELEASED_S3GEN
    ve: VEArch = field(default_factory=VEArch)
    model: Model = "english"
    """Which released model's layout and structure (``english``, ``multilingual``, ``turbo``)."""
    s3gen_meanflow: bool = False
    """S3Gen's meanflow decoder (``S3Gen(meanflow=True)``, Turbo's ``s3gen_meanflow``)."""

    @property
    def scale(self) -> Literal["tiny", "full", "custom"]:
        """``full`` (released sizes), ``tiny`` (seqopt's test sizes) or ``custom``."""
        for scale in ("full", "tiny"):
            if self == ARCHS.get((self.model, scale)):
                return scale
        return "custom"

    @property
    def layout(self) -> ModelLayout:
        return LAYOUTS[self.model]


RELEASED_ARCH = CheckpointArch()
"""The released Chatterbox (English) sizes: T3 on Llama_520M (30 layers, 16 heads, 1024 wide)."""

TINY_ARCH = CheckpointArch(
    t3=T3Arch(hidden_size=128, intermediate_size=256, num_layers=16, head_dim=8),
    s3gen=TINY_S3GEN,
    ve=VEArch(hidden_size=32),
)
"""Released structure, small widths: T3 keeps 16 layers x 16 heads (so the alignment heads
(9, 2), (12, 15), (13, 11) exist) at width 128; vocabularies and conditioning shapes unchanged."""

RELEASED_MTL_ARCH = CheckpointArch(t3=T3Arch(text_vocab_size=2454), model="multilingual")
"""``ChatterboxMultilingualTTS``: English's sizes with ``T3Config.multilingual()``'s 2454 text
tokens (its grapheme vocabulary over 23 languages)."""

TINY_MTL_ARCH = CheckpointArch(
    t3=T3Arch(hidden_size=128, intermediate_size=256, num_layers=16, head_dim=8,
              text_vocab_size=2454),
    s3gen=TINY_S3GEN,
    ve=VEArch(hidden_size=32),
    model="multilingual",
)
"""Multilingual's structure at :data:`TINY_ARCH`'s widths (16 layers x 16 heads, as released)."""

RELEASED_TURBO_ARCH = CheckpointArch(
    t3=T3Arch(
        hidden_size=1024, intermediate_size=4096, num_layers=24, head_dim=64,
        text_vocab_size=50276, speech_vocab_size=6563, perceiver_queries=0, emotion_adv=False,
        backbone="gpt2", speech_cond_prompt_len=375,
    ),
    model="turbo",
    s3gen_meanflow=True,
)
"""``ChatterboxTurboTTS``: T3 on ``GPT2_medium`` (24 layers, 16 heads, 1024 wide, 50276 text
tokens, 6563 speech tokens, no Perceiver, no emotion input, 375-token voice prompt) and the
meanflow S3Gen; the VoiceEncoder as English."""

TINY_TURBO_ARCH = CheckpointArch(
    t3=T3Arch(
        hidden_size=128, intermediate_size=256, num_layers=4, head_dim=8,
        text_vocab_size=1024, speech_vocab_size=6563, perceiver_queries=0, emotion_adv=False,
        backbone="gpt2", speech_cond_prompt_len=375, gpt2_positions=2048,
    ),
    s3gen=TINY_S3GEN,
    ve=VEArch(hidden_size=32),
    model="turbo",
    s3gen_meanflow=True,
)
"""Turbo's structure, small: GPT-2 with 4 layers x 16 heads at width 128, 2048 positions and
1024 text tokens (seqopt's structural Turbo tokenizer has fewer; the released one has 50276)."""

ARCHS: Mapping[tuple[str, str], CheckpointArch] = {
    ("english", "full"): RELEASED_ARCH,
    ("english", "tiny"): TINY_ARCH,
    ("multilingual", "full"): RELEASED_MTL_ARCH,
    ("multilingual", "tiny"): TINY_MTL_ARCH,
    ("turbo", "full"): RELEASED_TURBO_ARCH,
    ("turbo", "tiny"): TINY_TURBO_ARCH,
}
"""Every model's architecture at each scale, by ``(model, scale)``."""

_ARCH_BY_SCALE: Mapping[str, CheckpointArch] = {"tiny": TINY_ARCH, "full": RELEASED_ARCH}


def _released_llama_config() -> dict[str, Any]:
    """A copy of upstream's ``LLAMA_520M_CONFIG_DICT`` (its ``rope_scaling`` copied too)."""
    from chatterbox.models.t3.llama_configs import LLAMA_520M_CONFIG_DICT

    config = dict(LLAMA_520M_CONFIG_DICT)
    config["rope_scaling"] = dict(config["rope_scaling"])
    return config


def _released_gpt2_config() -> dict[str, Any]:
    """A deep copy of upstream's ``GPT2_MEDIUM_CONFIG`` (Turbo's backbone)."""
    import copy

    from chatterbox.models.t3.llama_configs import GPT2_MEDIUM_CONFIG

    return copy.deepcopy(GPT2_MEDIUM_CONFIG)


def describe(arch: CheckpointArch) -> dict[str, Any]:
    """A flat, JSON-friendly summary of ``arch`` (for reports and benchmark records)."""
    return {"scale": arch.scale, **asdict(arch)}


# ----------------------------------------------------------------------------------------------
# Building modules from an architecture
# ----------------------------------------------------------------------------------------------


def build_t3(arch: T3Arch) -> T3:
    """Upstream ``T3`` on :meth:`T3Arch.t3_config` (for the released sizes, what ``T3()`` is)."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.perceiver import Perceiver

    t3 = T3(arch.t3_config())
    if arch.perceiver_queries and (arch.hidden_size != 1024 or arch.perceiver_queries != 32):
        # T3CondEnc builds Perceiver() at its 1024-wide defaults whatever the backbone width.
        t3.cond_enc.perceiver = Perceiver(
            pre_attention_query_token=arch.perceiver_queries,
            pre_attention_query_size=arch.hidden_size,
            embedding_dim=arch.hidden_size,
            num_attn_heads=PERCEIVER_HEADS,
        )
    return t3


def build_ve(arch: VEArch) -> VoiceEncoder:
    """Upstream ``VoiceEncoder`` (for the released sizes, what ``VoiceEncoder()`` builds)."""
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.models.voice_encoder.config import VoiceEncConfig

    hp = VoiceEncConfig()
    hp.ve_hidden_size = arch.hidden_size
    hp.num_mels = arch.num_mels
    hp.speaker_embed_size = arch.speaker_embed_size
    return VoiceEncoder(hp)


def build_s3gen_for(arch: CheckpointArch) -> torch.nn.Module:
    """``arch``'s S3Gen: :func:`build_s3gen`, or with ``s3gen_meanflow`` the meanflow variant
    (``S3Gen(meanflow=True)`` at the released sizes; otherwise the sized assembly given what
    ``meanflow=True`` adds upstream: the flag and the decoder's ``time_embed_mixer``)."""
    if not arch.s3gen_meanflow:
        return build_s3gen(arch.s3gen)
    if arch.s3gen == RELEASED_S3GEN:
        from chatterbox.models.s3gen import S3Gen

        return S3Gen(meanflow=True)
    from chatterbox.models.s3gen.utils.intmeanflow import get_intmeanflow_time_mixer

    s3gen = build_s3gen(arch.s3gen)
    estimator = s3gen.flow.decoder.estimator
    estimator.meanflow = True
    # ConditionalDecoder.__init__: time_embed_dim = channels[0] * 4
    estimator.time_embed_mixer = get_intmeanflow_time_mixer(arch.s3gen.decoder_channels[0] * 4)
    s3gen.meanflow = True
    return s3gen


def build_module(arch: CheckpointArch, component: str) -> torch.nn.Module:
    """The upstream module of ``component`` (``ve``, ``t3`` or ``s3gen``) with ``arch``'s sizes.

    Each module gets its own upstream initialisation, drawn from torch's global RNG.
    """
    if component == "ve":
        return build_ve(arch.ve)
    if component == "t3":
        return build_t3(arch.t3)
    if component == "s3gen":
        return build_s3gen_for(arch)
    raise ValueError(f"unknown checkpoint component {component!r}; expected one of "
                     f"{', '.join(COMPONENT_FILES)}")


# ----------------------------------------------------------------------------------------------
# Inferring an architecture from tensors
# ----------------------------------------------------------------------------------------------


def infer_t3_arch(state: Mapping[str, torch.Tensor]) -> T3Arch:
    """The :class:`T3Arch` of a T3 state dict (Llama or GPT-2 backbone); ``ValueError`` when it
    is not one. ``speech_cond_prompt_len`` is no shape: 375 for GPT-2 (Turbo), else 150."""
    if any(key.startswith("tfmr.h.") for key in state):
        return _infer_gpt2_t3_arch(state)
    layer = "tfmr.layers.0."
    q_rows = tensor_shape(state, layer + "self_attn.q_proj.weight")[0]
    if q_rows % T3_HEADS:
        raise ValueError(f"q_proj has {q_rows} rows, not a multiple of {T3_HEADS} heads")
    head_dim = q_rows // T3_HEADS
    kv_rows = tensor_shape(state, layer + "self_attn.k_proj.weight")[0]
    perceiver_key = "cond_enc.perceiver.pre_attention_query"
    return T3Arch(
        hidden_size=tensor_shape(state, "tfmr.norm.weight")[0],
        intermediate_size=tensor_shape(state, layer + "mlp.gate_proj.weight")[0],
        num_layers=indexed_count(state, "tfmr.layers."),
        num_heads=T3_HEADS,
        num_kv_heads=kv_rows // head_dim,
        head_dim=head_dim,
        text_vocab_size=tensor_shape(state, "text_emb.weight")[0],
        speech_vocab_size=tensor_shape(state, "speech_emb.weight")[0],
        max_text_tokens=tensor_shape(state, "text_pos_emb.emb.weight")[0] - 2,
        max_speech_tokens=tensor_shape(state, "speech_pos_emb.emb.weight")[0] - 4,
        speaker_embed_size=tensor_shape(state, "cond_enc.spkr_enc.weight")[1],
        perceiver_queries=tensor_shape(state, perceiver_key)[1] if perceiver_key in state else 0,
        emotion_adv="cond_enc.emotion_adv_fc.weight" in state,
    )


def _infer_gpt2_t3_arch(state: Mapping[str, torch.Tensor]) -> T3Arch:
    hidden = tensor_shape(state, "tfmr.ln_f.weight")[0]
    if hidden % T3_HEADS:
        raise ValueError(f"GPT-2 width {hidden} is not a multiple of {T3_HEADS} heads")
    perceiver_key = "cond_enc.perceiver.pre_attention_query"
    return T3Arch(
        hidden_size=hidden,
        intermediate_size=tensor_shape(state, "tfmr.h.0.mlp.c_fc.weight")[1],
        num_layers=indexed_count(state, "tfmr.h."),
        num_heads=T3_HEADS,
        num_kv_heads=T3_HEADS,
        head_dim=hidden // T3_HEADS,
        text_vocab_size=tensor_shape(state, "text_emb.weight")[0],
        speech_vocab_size=tensor_shape(state, "speech_emb.weight")[0],
        speaker_embed_size=tensor_shape(state, "cond_enc.spkr_enc.weight")[1],
        perceiver_queries=tensor_shape(state, perceiver_key)[1] if perceiver_key in state else 0,
        emotion_adv="cond_enc.emotion_adv_fc.weight" in state,
        backbone="gpt2",
        speech_cond_prompt_len=375,
        gpt2_positions=tensor_shape(state, "tfmr.wpe.weight")[0],
    )


def infer_ve_arch(state: Mapping[str, torch.Tensor]) -> VEArch:
    """The :class:`VEArch` of a VoiceEncoder state dict; ``ValueError`` when it is not one."""
    layers = sum(1 for key in state if key.startswith("lstm.weight_ih_l"))
    if layers != 3:
        raise ValueError(f"its LSTM has {layers} layers; upstream's VoiceEncoder has 3")
    gates, mels = tensor_shape(state, "lstm.weight_ih_l0")
    return VEArch(
        hidden_size=gates // 4,
        num_mels=mels,
        speaker_embed_size=tensor_shape(state, "proj.weight")[0],
    )


def infer_arch(directory: str | os.PathLike[str], model: str = "english") -> CheckpointArch:
    """The architecture of ``model``'s checkpoint in ``directory``, from its tensors alone."""
    folder = _checked_folder(directory, model)
    return _arch_of_states(folder, lambda name: _read_tensors(folder / name), model)


def _arch_of_states(
    folder: Path, state: Callable[[str], Mapping[str, torch.Tensor]], model: str = "english"
) -> CheckpointArch:
    """The :class:`CheckpointArch` of ``folder``'s weight files, ``state(file name)`` giving each
    one's tensors (read, or already in memory); inferred in the order T3, S3Gen, VoiceEncoder."""
    files = LAYOUTS[model].weights
    s3gen_state = state(files["s3gen"])
    arch = CheckpointArch(
        t3=_infer(folder / files["t3"], infer_t3_arch, state(files["t3"])),
        s3gen=_infer(folder / files["s3gen"], infer_s3gen_arch, s3gen_state),
        ve=_infer(folder / files["ve"], infer_ve_arch, state(files["ve"])),
        model=model,  # type: ignore[arg-type]
        s3gen_meanflow="flow.decoder.estimator.time_embed_mixer.weight" in s3gen_state,
    )
    _check_model_structure(folder / files["t3"], arch)
    return arch


def _check_model_structure(path: Path, arch: CheckpointArch) -> None:
    """The T3 backbone must be the model's own (GPT-2 for Turbo, Llama otherwise)."""
    want = "gpt2" if arch.model == "turbo" else "llama"
    if arch.t3.backbone != want:
        raise CheckpointError(
            f"{path} holds a {arch.t3.backbone} T3, but a {arch.layout.title} T3 is {want}: "
            "is this file from another Chatterbox model?"
        )


def _infer(
    path: Path,
    infer: Callable[[Mapping[str, torch.Tensor]], Any],
    state: Mapping[str, torch.Tensor],
) -> Any:
    """``infer(state)``, reporting weights of the wrong kind as a :class:`CheckpointError`."""
    try:
        return infer(state)
    except (ValueError, IndexError, ZeroDivisionError) as exc:
        raise CheckpointError(
            f"{path} does not hold the expected Chatterbox weights: {exc}"
        ) from exc
