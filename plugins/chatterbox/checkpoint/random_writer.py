"""Writing random-weight Chatterbox checkpoints in the released layout: a test and benchmark tool.

**Random weights make noise, not speech.** :func:`write_random_checkpoint` (behind
``seqopt make-checkpoint``) writes the five released files with upstream's own modules, built by
:mod:`.arch`'s builders at the released sizes (``scale="full"``) or seqopt's tiny ones
(``scale="tiny"``), and a random built-in voice shaped like ``prepare_conditionals`` output.

``model`` picks which release's layout and structure (``english``, the default;
``multilingual``; ``turbo``; see :data:`.files.LAYOUTS` and :data:`.arch.ARCHS`). English copies
the released ``tokenizer.json`` it is given; Multilingual and Turbo get seqopt's structural
tokenizer files (:mod:`.tokenizer_files`): token counts with them are structural, not the
released vocabularies'.

Determinism: the same ``model``, ``seed`` and ``scale`` give byte-identical files (each component draws from
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
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .arch import ARCHS, CheckpointArch, Scale, build_module
from .files import (
    _METADATA_KEY,
    CANGJIE_FILE,
    CONDS_FILE,
    TOKENIZER_FILE,
    CheckpointError,
    layout_of,
)
from .loader import _load_tokenizer

if TYPE_CHECKING:
    from chatterbox.models.t3 import T3
    from chatterbox.tts import Conditionals

SPEECH_COND_PROMPT_LEN = 150
"""``T3Config.speech_cond_prompt_len`` of English and Multilingual: S3 tokens of the voice prompt
T3 conditions on (the written voice takes each model's own, ``T3Arch.speech_cond_prompt_len``:
375 for Turbo)."""
GEN_PROMPT_TOKENS: Mapping[str, int] = {"tiny": 50, "full": 250}
"""S3Gen voice-prompt length in tokens (25/s) of the random built-in voice: 2 s / 10 s
(10 s is upstream's ``DEC_COND_LEN``); the prompt mel has twice as many frames."""
_S3_TOKENS = 6561


@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`write_random_checkpoint` wrote."""

    path: Path
    scale: Scale
    seed: int
    arch: CheckpointArch
    files: Mapping[str, int]
    """File name -> size in bytes, for every file of the model's layout."""
    parameters: Mapping[str, int]
    """``t3`` / ``s3gen`` / ``ve`` -> number of saved tensor elements."""
    gen_prompt_tokens: int
    """Length of the built-in voice's S3Gen prompt in ``conds.pt`` (tokens; mel frames = 2x)."""
    seconds: float
    """Wall time of the whole write."""
    model: str = "english"

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def write_random_checkpoint(
    directory: str | os.PathLike[str],
    *,
    scale: Scale = "tiny",
    seed: int = 0,
    tokenizer: str | os.PathLike[str] | None = None,
    model: str = "english",
    progress: Callable[[str], None] | None = None,
) -> CheckpointInfo:
    """Write a random-weight Chatterbox checkpoint in the released layout into ``directory``.

    ``scale="full"`` has the released sizes exactly (upstream's ``ChatterboxTTS.from_local``
    loads it; T3 alone is about 2 GB in fp32), ``"tiny"`` the same structure small enough for
    fast tests (:data:`TINY_ARCH`). ``tokenizer`` is the released English ``tokenizer.json``,
    copied in (English only: the other models get structural tokenizer files). ``model`` is
    ``english``, ``multilingual`` or ``turbo``. The same ``seed`` and ``scale`` give byte-identical files. ``progress`` receives a
    line per step. Each file is written to a temporary name and renamed, so an interrupted write
    leaves no half-written file under a released name. The weights make noise, not speech.
    """
    started = time.perf_counter()
    layout = layout_of(model)
    if (model, scale) not in ARCHS:
        raise CheckpointError(f"scale must be 'tiny' or 'full', not {scale!r}")
    arch = ARCHS[(model, scale)]
    if model == "english":
        if tokenizer is None:
            raise CheckpointError(
                "an English checkpoint needs the released tokenizer.json: pass tokenizer=PATH"
            )
        tokenizer_src = _checked_tokenizer_source(tokenizer)
    elif tokenizer is not None:
        raise CheckpointError(
            f"tokenizer= is for English checkpoints only; {layout.title} gets seqopt's "
            "structural tokenizer files"
        )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    record = {"random_weights": True, "scale": scale, "seed": seed}
    if model != "english":
        record["model"] = model
    metadata = {_METADATA_KEY: json.dumps(record)}

    parameters: dict[str, int] = {}
    for name, filename in layout.weights.items():
        say(f"building random {name} ({scale})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_component_seed(seed, _seed_key(model, name)))
            module = build_module(arch, name)
            if name == "t3":
                _init_t3_own_layers(module)
        parameters[name] = _save_module(module, folder / filename, metadata)
        say(f"wrote {filename} ({_mib(folder / filename)})")
        del module

    if model == "english":
        _atomic_copy(tokenizer_src, folder / TOKENIZER_FILE)
        say(f"copied {TOKENIZER_FILE}")
    else:
        write_structural_tokenizer(model, folder)
        say(f"wrote structural tokenizer files {', '.join(layout.tokenizer_files)}")
    prompt_tokens = GEN_PROMPT_TOKENS[scale]
    conds = _random_conds(arch, prompt_tokens, _component_seed(seed, _seed_key(model, "conds")))
    _atomic_write(folder / CONDS_FILE, conds.save)
    say(f"wrote {CONDS_FILE}")
    return CheckpointInfo(
        path=folder,
        scale=scale,
        seed=seed,
        arch=arch,
        files={name: (folder / name).stat().st_size for name in layout.files},
        parameters=parameters,
        gen_prompt_tokens=prompt_tokens,
        seconds=time.perf_counter() - started,
        model=model,
    )


def _seed_key(model: str, component: str) -> str:
    """The name a component's seed is drawn from (English keeps its original names)."""
    return component if model == "english" else f"{model}/{component}"


def write_structural_tokenizer(model: str, folder: Path) -> None:
    """seqopt's structural tokenizer files for ``model`` (see :mod:`.tokenizer_files`)."""
    from . import tokenizer_files

    if model == "multilingual":
        name = layout_of(model).tokenizer_files[0]
        _atomic_write(folder / name, tokenizer_files.write_mtl_tokenizer)
        _atomic_write(folder / CANGJIE_FILE, tokenizer_files.write_cangjie_table)
        return
    for name, text in tokenizer_files.turbo_tokenizer_files().items():
        _atomic_write(folder / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))


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


def _init_t3_own_layers(t3: T3) -> None:
    """Re-draw Chatterbox's own T3 layers (upstream's init stays for the backbone): a sane
    init for the embeddings, heads and conditioning projections (see the module docstring)."""
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


def _random_conds(arch: CheckpointArch, prompt_tokens: int, seed: int) -> Conditionals:
    """A random built-in voice shaped exactly like ``ChatterboxTTS.prepare_conditionals`` output."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts import Conditionals

    gen = torch.Generator().manual_seed(seed)
    speaker = torch.randn(1, arch.t3.speaker_embed_size, generator=gen).abs()  # VE: ReLU, L2-normed
    t3_cond = T3Cond(
        speaker_emb=speaker / speaker.norm(dim=1, keepdim=True),
        cond_prompt_speech_tokens=torch.randint(
            0, _S3_TOKENS, (1, arch.t3.speech_cond_prompt_len), generator=gen
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
    """Save ``module``'s state dict as safetensors (with seqopt's record) or, for a ``.pt``
    name (Multilingual's ``ve.pt`` / ``s3gen.pt``), with ``torch.save`` as released."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}
    if path.suffix == ".pt":
        _atomic_write(path, lambda tmp: torch.save(state, tmp))
    else:
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
