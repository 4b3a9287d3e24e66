"""Chatterbox checkpoints in the released file layout: random-weight writer and shape-driven loader.

**Random weights make noise, not speech.** A checkpoint written by :func:`write_random_checkpoint`
runs every line of upstream Chatterbox's model code (``T3``, ``S3Gen``, ``VoiceEncoder``,
``EnTokenizer``, ``Conditionals``) with the released shapes (``scale="full"``) or the same
structure at a fraction of the size (``scale="tiny"``), so tests and benchmarks exercise the real
code paths and, at full scale, the real compute cost. The audio it produces is noise, T3 never
emits a sensible stop token, and nothing measured on it says anything about speech quality.

The folder holds exactly the released files (what ``ChatterboxTTS.from_local`` reads)::

    ve.safetensors      VoiceEncoder state dict
    t3_cfg.safetensors  T3 state dict (Llama backbone + Chatterbox embeddings and heads)
    s3gen.safetensors   S3Gen (S3Token2Wav) state dict
    tokenizer.json      the English text tokenizer, copied from the path given
    conds.pt            the built-in voice: a ``chatterbox.tts.Conditionals`` saved by its ``save``

:func:`load_checkpoint` reads that folder, with released weights or with seqopt's random ones, by
inferring every size from tensor names and shapes (no side file): the number of T3 layers from
the ``tfmr.layers.N`` keys, hidden and MLP widths from the weights, and so on. Attention heads
are not visible in a shape, so T3 is assumed to have 16 as released (head width = q_proj rows /
16). The T3 backbone is registered in upstream's ``LLAMA_CONFIGS`` under a derived name, and the
modules are upstream's own classes (see :mod:`.tiny_s3gen` for S3Gen).

Determinism: the same ``seed`` and ``scale`` give byte-identical files (each component draws from
torch's RNG seeded from ``seed`` and the component's name, inside ``torch.random.fork_rng`` so the
caller's RNG state is untouched).

Random initialisation is each module's own (Llama's normal(0, 0.02), upstream's kaiming or
default PyTorch init for S3Gen, VoiceEncoder and the Perceiver) except T3's own layers:
text/speech embeddings and the conditioning projections get normal(0, 0.02) like the backbone,
and the text/speech heads get normal(0, hidden**-0.5) so logits have unit variance: neither
uniform nor one-hot, which keeps sampling (min_p, top_p, repetition penalty) doing real work.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from seqopt_core import SeqoptError

from .tiny_s3gen import (
    RELEASED_S3GEN,
    TINY_S3GEN,
    S3GenArch,
    build_s3gen,
    indexed_count,
    infer_s3gen_arch,
    s3gen_ignorable_missing_keys,
    tensor_shape,
)

if TYPE_CHECKING:
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.tokenizers import EnTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS, Conditionals

__all__ = [
    "CHECKPOINT_FILES",
    "CONDS_FILE",
    "RELEASED_ARCH",
    "REQUIRED_FILES",
    "S3GEN_FILE",
    "T3_FILE",
    "TINY_ARCH",
    "TOKENIZER_FILE",
    "VE_FILE",
    "CheckpointArch",
    "CheckpointError",
    "CheckpointInfo",
    "LoadedCheckpoint",
    "S3GenArch",
    "Scale",
    "T3Arch",
    "VEArch",
    "describe",
    "infer_arch",
    "infer_t3_arch",
    "infer_ve_arch",
    "load_checkpoint",
    "write_random_checkpoint",
]

Scale = Literal["tiny", "full"]

VE_FILE = "ve.safetensors"
T3_FILE = "t3_cfg.safetensors"
S3GEN_FILE = "s3gen.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONDS_FILE = "conds.pt"
CHECKPOINT_FILES = (VE_FILE, T3_FILE, S3GEN_FILE, TOKENIZER_FILE, CONDS_FILE)
"""Every file of the released layout, in the order the writer produces them."""
REQUIRED_FILES = (VE_FILE, T3_FILE, S3GEN_FILE, TOKENIZER_FILE)
"""What loading needs; ``conds.pt`` (the built-in voice) is optional, as upstream."""

T3_HEADS = 16
"""Attention heads of T3's Llama backbone (released model); not recoverable from a shape."""
PERCEIVER_HEADS = 4
"""``Perceiver(num_attn_heads=4)`` upstream; not recoverable from a shape."""
SPEECH_COND_PROMPT_LEN = 150
"""``T3Config.speech_cond_prompt_len``: S3 tokens of the voice prompt T3 conditions on."""
GEN_PROMPT_TOKENS: Mapping[str, int] = {"tiny": 50, "full": 250}
"""S3Gen voice-prompt length in tokens (25/s) of the random built-in voice: 2 s / 10 s
(10 s is upstream's ``DEC_COND_LEN``); the prompt mel has twice as many frames."""
_METADATA_KEY = "seqopt"
_S3_TOKENS = 6561


class CheckpointError(SeqoptError):
    """A checkpoint folder cannot be written or read: missing, corrupt or mis-shaped files."""


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

    @property
    def llama_config_name(self) -> str:
        """``Llama_520M`` for the released backbone, else a name derived from the sizes."""
        if self.llama_config() == _released_llama_config():
            return "Llama_520M"
        return (
            f"seqopt_llama_L{self.num_layers}_H{self.hidden_size}_I{self.intermediate_size}"
            f"_A{self.num_heads}x{self.head_dim}_KV{self.num_kv_heads}"
        )

    def llama_config(self) -> dict[str, Any]:
        """Upstream's ``LLAMA_520M_CONFIG_DICT`` with this backbone's sizes."""
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

    @property
    def scale(self) -> Literal["tiny", "full", "custom"]:
        """``full`` (released sizes), ``tiny`` (seqopt's test sizes) or ``custom``."""
        if self == RELEASED_ARCH:
            return "full"
        if self == TINY_ARCH:
            return "tiny"
        return "custom"


RELEASED_ARCH = CheckpointArch()
"""The released Chatterbox (English) sizes: T3 on Llama_520M (30 layers, 16 heads, 1024 wide)."""

TINY_ARCH = CheckpointArch(
    t3=T3Arch(hidden_size=128, intermediate_size=256, num_layers=16, head_dim=8),
    s3gen=TINY_S3GEN,
    ve=VEArch(hidden_size=32),
)
"""Released structure, small widths: T3 keeps 16 layers x 16 heads (so the alignment heads
(9, 2), (12, 15), (13, 11) exist) at width 128; vocabularies and conditioning shapes unchanged."""

_ARCH_BY_SCALE: Mapping[str, CheckpointArch] = {"tiny": TINY_ARCH, "full": RELEASED_ARCH}


def _released_llama_config() -> dict[str, Any]:
    from chatterbox.models.t3.llama_configs import LLAMA_520M_CONFIG_DICT

    config = dict(LLAMA_520M_CONFIG_DICT)
    config["rope_scaling"] = dict(config["rope_scaling"])
    return config


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`write_random_checkpoint` wrote."""

    path: Path
    scale: Scale
    seed: int
    arch: CheckpointArch
    files: Mapping[str, int]
    """File name -> size in bytes, for the five files of the layout."""
    parameters: Mapping[str, int]
    """``t3`` / ``s3gen`` / ``ve`` -> number of saved tensor elements."""
    gen_prompt_tokens: int
    """Length of the built-in voice's S3Gen prompt in ``conds.pt`` (tokens; mel frames = 2x)."""
    seconds: float
    """Wall time of the whole write."""

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


@dataclass
class LoadedCheckpoint:
    """Upstream Chatterbox modules loaded from a checkpoint folder, in eval mode."""

    path: Path
    t3: T3
    s3gen: torch.nn.Module
    """An upstream ``S3Gen`` (``S3Token2Wav``)."""
    ve: VoiceEncoder
    tokenizer: EnTokenizer
    conds: Conditionals | None
    """The built-in voice from ``conds.pt``, or ``None`` when the folder has none."""
    arch: CheckpointArch
    random_weights: bool
    """True when seqopt wrote these weights at random (they make noise, not speech)."""
    device: torch.device
    dtype: torch.dtype
    """T3's dtype; S3Gen and the VoiceEncoder always stay float32."""
    seconds: float
    """Wall time of the load."""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    """Held while these modules run (see :meth:`ChatterboxEngine.model_work
    <seqopt_plugins.chatterbox.engine.ChatterboxEngine.model_work>`): every engine
    built on this checkpoint shares it, so their streams never run the model at
    the same time, switch T3's attention implementation under one another, or
    interleave draws from torch's global RNG."""
    _watermarker: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def scale_hint(self) -> Literal["tiny", "full", "custom"]:
        """``full`` for released sizes, ``tiny`` for seqopt's test sizes, else ``custom``."""
        return self.arch.scale

    def watermarker(self) -> Any:
        """This checkpoint's one Perth watermarker (``PerthImplicitWatermarker``), made
        on first use and shared by every engine and :meth:`to_tts` on it.

        It is loaded without Perth's ``loaded PerthNet (Implicit) at step 250,000``
        line on standard output (which would corrupt audio streamed there): the
        same pre-packaged network, loaded the way Perth loads it, minus the print.
        """
        with self.lock:
            if self._watermarker is None:
                self._watermarker = _quiet_perth_watermarker()
            return self._watermarker

    def to_tts(self, *, with_watermarker: bool = True) -> ChatterboxTTS:
        """Upstream's ``ChatterboxTTS`` around these modules (as ``from_local`` would build it).

        Its watermarker is this checkpoint's shared one (:meth:`watermarker`)
        instead of a new Perth network announced on standard output, which is what
        ``ChatterboxTTS.__init__`` would make; ``with_watermarker=False`` leaves it
        ``None`` (enough for ``prepare_conditionals``, not for ``generate``).
        """
        from chatterbox.tts import ChatterboxTTS
        from chatterbox.models.s3gen import S3GEN_SR

        tts = ChatterboxTTS.__new__(ChatterboxTTS)  # the attributes __init__ sets, minus Perth
        tts.sr = S3GEN_SR
        tts.t3, tts.s3gen, tts.ve, tts.tokenizer = self.t3, self.s3gen, self.ve, self.tokenizer
        tts.device = str(self.device)
        tts.conds = self.conds
        tts.watermarker = self.watermarker() if with_watermarker else None
        return tts


def _quiet_perth_watermarker() -> Any:
    """``perth.PerthImplicitWatermarker()`` without its print to standard output.

    Perth's ``PerthNet.load`` reads the pre-packaged ``implicit`` run through its
    ``CheckpointManager`` and prints a line; this does the same reads and hands
    the network to the watermarker. If Perth's internals ever differ, the plain
    constructor runs with its print sent to standard error instead.
    """
    import perth

    try:
        from perth.perth_net import PREPACKAGED_MODELS_DIR
        from perth.perth_net.perth_net_implicit.checkpoint_manager import CheckpointManager
        from perth.perth_net.perth_net_implicit.model.perth_net import PerthNet

        manager = CheckpointManager(PREPACKAGED_MODELS_DIR, "implicit")
        state = manager.load_latest()
        if state is None:
            raise FileNotFoundError(f"no PerthNet checkpoint in {PREPACKAGED_MODELS_DIR}")
        net = PerthNet(manager.hp)
        net.load_state_dict(state["model"])
        return perth.PerthImplicitWatermarker(run_name=None, perth_net=net)
    except (ImportError, AttributeError, FileNotFoundError, KeyError, TypeError):
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):
            return perth.PerthImplicitWatermarker()


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def write_random_checkpoint(
    directory: str | os.PathLike[str],
    *,
    scale: Scale = "tiny",
    seed: int = 0,
    tokenizer: str | os.PathLike[str],
    progress: Callable[[str], None] | None = None,
) -> CheckpointInfo:
    """Write a random-weight Chatterbox checkpoint in the released layout into ``directory``.

    ``scale="full"`` has the released sizes exactly (upstream's ``ChatterboxTTS.from_local``
    loads it; T3 alone is about 2 GB in fp32), ``"tiny"`` the same structure small enough for
    fast tests (:data:`TINY_ARCH`). ``tokenizer`` is the released English ``tokenizer.json``,
    copied in. The same ``seed`` and ``scale`` give byte-identical files. ``progress`` receives a
    line per step. Each file is written to a temporary name and renamed, so an interrupted write
    leaves no half-written file under a released name. The weights make noise, not speech.
    """
    started = time.perf_counter()
    if scale not in _ARCH_BY_SCALE:
        raise CheckpointError(f"scale must be 'tiny' or 'full', not {scale!r}")
    arch = _ARCH_BY_SCALE[scale]
    tokenizer_src = _checked_tokenizer_source(tokenizer)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    metadata = {_METADATA_KEY: json.dumps({"random_weights": True, "scale": scale, "seed": seed})}

    parameters: dict[str, int] = {}
    for name, filename, build in (
        ("ve", VE_FILE, lambda: _build_ve(arch.ve)),
        ("t3", T3_FILE, lambda: _random_t3(arch.t3)),
        ("s3gen", S3GEN_FILE, lambda: build_s3gen(arch.s3gen)),
    ):
        say(f"building random {name} ({scale})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_component_seed(seed, name))
            module = build()
        parameters[name] = _save_module(module, folder / filename, metadata)
        say(f"wrote {filename} ({_mib(folder / filename)})")
        del module

    _atomic_copy(tokenizer_src, folder / TOKENIZER_FILE)
    say(f"copied {TOKENIZER_FILE}")
    prompt_tokens = GEN_PROMPT_TOKENS[scale]
    conds = _random_conds(arch, prompt_tokens, _component_seed(seed, "conds"))
    _atomic_write(folder / CONDS_FILE, conds.save)
    say(f"wrote {CONDS_FILE}")
    return CheckpointInfo(
        path=folder,
        scale=scale,
        seed=seed,
        arch=arch,
        files={name: (folder / name).stat().st_size for name in CHECKPOINT_FILES},
        parameters=parameters,
        gen_prompt_tokens=prompt_tokens,
        seconds=time.perf_counter() - started,
    )


def _checked_tokenizer_source(tokenizer: str | os.PathLike[str]) -> Path:
    source = Path(tokenizer)
    if not source.is_file():
        raise CheckpointError(
            f"tokenizer {source} does not exist: pass the released Chatterbox English "
            "tokenizer.json (it is copied into the checkpoint as tokenizer.json)"
        )
    _load_tokenizer(source)  # fail now, not at load time, on a file that is no tokenizer
    return source


def _component_seed(seed: int, component: str) -> int:
    """A per-component seed, so each file depends only on ``seed`` and its own code."""
    return zlib.crc32(f"seqopt:{seed}:{component}".encode())


def _random_t3(arch: T3Arch) -> T3:
    """T3 with upstream's init for the backbone and a sane one for Chatterbox's own layers."""
    t3 = _build_t3(arch)
    std = t3.cfg.initializer_range
    with torch.no_grad():
        for embedding in (t3.text_emb, t3.speech_emb):
            embedding.weight.normal_(0.0, std)
        for head in (t3.text_head, t3.speech_head):
            head.weight.normal_(0.0, t3.dim**-0.5)
            if head.bias is not None:
                head.bias.zero_()
        enc = t3.cond_enc
        for linear in (enc.spkr_enc, enc.emotion_adv_fc):
            if linear is not None:
                linear.weight.normal_(0.0, std)
                if linear.bias is not None:
                    linear.bias.zero_()
    return t3


def _random_conds(arch: CheckpointArch, prompt_tokens: int, seed: int) -> Conditionals:
    """A random built-in voice shaped exactly like ``ChatterboxTTS.prepare_conditionals`` output."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts import Conditionals

    gen = torch.Generator().manual_seed(seed)
    speaker = torch.randn(1, arch.t3.speaker_embed_size, generator=gen).abs()  # VE: ReLU, L2-normed
    t3_cond = T3Cond(
        speaker_emb=speaker / speaker.norm(dim=1, keepdim=True),
        cond_prompt_speech_tokens=torch.randint(
            0, _S3_TOKENS, (1, SPEECH_COND_PROMPT_LEN), generator=gen
        ),
        emotion_adv=0.5 * torch.ones(1, 1, 1),
    )
    log_mel = (torch.randn(1, 2 * prompt_tokens, 80, generator=gen) * 2.0 - 6.0).clamp(-11.5, 2.0)
    ref_dict = {
        "prompt_token": torch.randint(0, _S3_TOKENS, (1, prompt_tokens), generator=gen),
        "prompt_token_len": torch.tensor([prompt_tokens]),
        "prompt_feat": log_mel,
        "prompt_feat_len": None,
        "embedding": torch.randn(1, arch.s3gen.xvector_embedding_size, generator=gen),
    }
    return Conditionals(t3_cond, ref_dict)


def _save_module(module: torch.nn.Module, path: Path, metadata: dict[str, str]) -> int:
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}
    _atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    return sum(tensor.numel() for tensor in state.values())


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` into a same-named file in a hidden sibling folder, then rename it into place.

    The temporary file keeps the final name because ``torch.save`` names the records inside its
    zip after the file (``conds/data.pkl``, as upstream's own ``conds.pt``).
    """
    staging = path.parent / ".seqopt-partial"
    staging.mkdir(exist_ok=True)
    tmp = staging / path.name
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        try:
            staging.rmdir()
        except OSError:  # another write is still using it
            pass


def _atomic_copy(source: Path, target: Path) -> None:
    _atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def _mib(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MiB"


# ----------------------------------------------------------------------------------------------
# Building modules from an architecture
# ----------------------------------------------------------------------------------------------


def _build_t3(arch: T3Arch) -> T3:
    """Upstream ``T3``; ``T3()`` itself for the released sizes."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.perceiver import Perceiver

    if arch == RELEASED_ARCH.t3:
        return T3()
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


def _build_ve(arch: VEArch) -> VoiceEncoder:
    """Upstream ``VoiceEncoder``; ``VoiceEncoder()`` itself for the released sizes."""
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.models.voice_encoder.config import VoiceEncConfig

    if arch == RELEASED_ARCH.ve:
        return VoiceEncoder()
    hp = VoiceEncConfig()
    hp.ve_hidden_size = arch.hidden_size
    hp.num_mels = arch.num_mels
    hp.speaker_embed_size = arch.speaker_embed_size
    return VoiceEncoder(hp)


# ----------------------------------------------------------------------------------------------
# Inferring an architecture from tensors
# ----------------------------------------------------------------------------------------------


def infer_t3_arch(state: Mapping[str, torch.Tensor]) -> T3Arch:
    """The :class:`T3Arch` of a T3 state dict; ``ValueError`` when it is not one."""
    if any(key.startswith("tfmr.h.") for key in state):
        raise ValueError("it holds a GPT-2 backbone (tfmr.h.*); only the Llama T3 is supported")
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


def infer_arch(directory: str | os.PathLike[str]) -> CheckpointArch:
    """The architecture of the checkpoint in ``directory``, from its tensors alone."""
    folder = _checked_folder(directory)
    return CheckpointArch(
        t3=_infer(folder / T3_FILE, infer_t3_arch, _read_tensors(folder / T3_FILE)),
        s3gen=_infer(folder / S3GEN_FILE, infer_s3gen_arch, _read_tensors(folder / S3GEN_FILE)),
        ve=_infer(folder / VE_FILE, infer_ve_arch, _read_tensors(folder / VE_FILE)),
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


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def load_checkpoint(
    directory: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedCheckpoint:
    """Load a Chatterbox checkpoint folder (released weights or random ones) into upstream modules.

    Sizes come from the tensors (see the module docstring). T3 and the VoiceEncoder load with
    ``strict=True``; S3Gen with ``strict=False`` as upstream, but any missing key other than
    upstream's declared ``ignore_state_dict_missing`` (two recomputable tokenizer buffers that some
    released files omit) and any unexpected key is an error. ``dtype`` applies to T3 (and the
    voice's T3 conditionals); S3Gen and the VoiceEncoder stay float32 because their upstream code
    builds float32 tensors internally. Raises :class:`CheckpointError` naming the file at fault.
    """
    started = time.perf_counter()
    folder = _checked_folder(directory)
    device = torch.device(device)
    states = {name: _read_tensors(folder / name) for name in (VE_FILE, T3_FILE, S3GEN_FILE)}
    arch = CheckpointArch(
        t3=_infer(folder / T3_FILE, infer_t3_arch, states[T3_FILE]),
        s3gen=_infer(folder / S3GEN_FILE, infer_s3gen_arch, states[S3GEN_FILE]),
        ve=_infer(folder / VE_FILE, infer_ve_arch, states[VE_FILE]),
    )
    ve = _load_into(_build_ve(arch.ve), states.pop(VE_FILE), folder / VE_FILE)
    t3 = _load_into(_build_t3(arch.t3), states.pop(T3_FILE), folder / T3_FILE)
    s3gen = _load_into(build_s3gen(arch.s3gen), states.pop(S3GEN_FILE), folder / S3GEN_FILE)
    t3.to(device=device, dtype=dtype).eval()
    s3gen.to(device).eval()
    ve.to(device).eval()
    conds = _load_conds(folder / CONDS_FILE, device, dtype)
    return LoadedCheckpoint(
        path=folder,
        t3=t3,
        s3gen=s3gen,
        ve=ve,
        tokenizer=_load_tokenizer(folder / TOKENIZER_FILE),
        conds=conds,
        arch=arch,
        random_weights=_written_at_random(folder / T3_FILE),
        device=device,
        dtype=dtype,
        seconds=time.perf_counter() - started,
    )


def _checked_folder(directory: str | os.PathLike[str]) -> Path:
    folder = Path(directory)
    must = ", ".join(REQUIRED_FILES)
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint folder {folder} does not exist; it must contain {must} "
            f"(and optionally {CONDS_FILE}, the built-in voice)"
        )
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise CheckpointError(
                f"{folder} has no {name}: a Chatterbox checkpoint folder must contain {must} "
                f"(and optionally {CONDS_FILE}, the built-in voice)"
            )
    return folder


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError, or OSError
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> Any:
    """``load_state_dict`` that reports a mismatch as a :class:`CheckpointError` naming ``path``."""
    ignorable = s3gen_ignorable_missing_keys() if path.name == S3GEN_FILE else frozenset()
    try:
        result = module.load_state_dict(state, strict=not ignorable)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not match the model its shapes describe: {exc}"
        ) from exc
    missing = sorted(set(result.missing_keys) - ignorable)
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{path} does not match the model its shapes describe: missing {missing[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    return module


def _load_conds(path: Path, device: torch.device, dtype: torch.dtype) -> Conditionals | None:
    from chatterbox.tts import Conditionals

    if not path.is_file():
        return None
    try:
        conds = Conditionals.load(path, map_location=device)
    except Exception as exc:  # torch.load raises many types for a damaged file
        raise CheckpointError(
            f"{path} is not a readable Chatterbox Conditionals file: {exc}"
        ) from exc
    conds.t3 = conds.t3.to(device=device, dtype=dtype)
    return conds


def _load_tokenizer(path: Path) -> EnTokenizer:
    from chatterbox.models.tokenizers import EnTokenizer

    try:
        return EnTokenizer(str(path))
    except Exception as exc:  # tokenizers' own error, or upstream's assert on [START]/[STOP]
        raise CheckpointError(f"{path} is not a Chatterbox English tokenizer: {exc!r}") from exc


def _written_at_random(path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        raw = (handle.metadata() or {}).get(_METADATA_KEY)
    try:
        return bool(raw and json.loads(raw).get("random_weights"))
    except (ValueError, AttributeError):
        return False


def describe(arch: CheckpointArch) -> dict[str, Any]:
    """A flat, JSON-friendly summary of ``arch`` (for reports and benchmark records)."""
    return {"scale": arch.scale, **asdict(arch)}
