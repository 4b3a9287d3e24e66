"""Loading a Chatterbox checkpoint folder (released weights or seqopt's random ones).

:func:`load_checkpoint` checks the folder, reads the three weight files, infers every size from
their tensors (:mod:`.arch`), builds upstream's modules through :mod:`.arch`'s builders and loads
the weights into them, then reads the tokenizer and the optional built-in voice (``conds.pt``).
The result, :class:`LoadedCheckpoint`, also holds the lock every engine on it shares and a
Perth watermarker made on first use without Perth's line on standard output.

``model`` picks the layout (:data:`.files.LAYOUTS`): ``english`` (the default), ``multilingual``
(an upstream ``MTLTokenizer``) or ``turbo`` (GPT-2 T3, meanflow S3Gen, a ``transformers`` GPT-2
tokenizer); :meth:`LoadedCheckpoint.to_tts` wraps the modules in that model's upstream class.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..tiny_s3gen import s3gen_ignorable_missing_keys
from .arch import CheckpointArch, _arch_of_states, build_s3gen_for, build_t3, build_ve
from .files import (
    _METADATA_KEY,
    CANGJIE_FILE,
    LAYOUTS,
    CONDS_FILE,
    S3GEN_FILE,
    TOKENIZER_FILE,
    CheckpointError,
    _checked_folder,
    _read_tensors,
)

if TYPE_CHECKING:
    from chatterbox.models.t3 import T3
    from chatterbox.models.tokenizers import EnTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS, Conditionals


@dataclass
class LoadedCheckpoint:
    """Upstream Chatterbox modules loaded from a checkpoint folder, in eval mode."""

    path: Path
    t3: T3
    s3gen: torch.nn.Module
    """An upstream ``S3Gen`` (``S3Token2Wav``)."""
    ve: VoiceEncoder
    tokenizer: Any
    """``EnTokenizer`` (English), ``MTLTokenizer`` (Multilingual) or a ``transformers`` GPT-2
    tokenizer (Turbo)."""
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
    model: str = "english"
    """``english``, ``multilingual`` or ``turbo``."""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    """Held while these modules run (see :meth:`ChatterboxEngine.work
    <seqopt_plugins.chatterbox.engine.ChatterboxEngine.work>`): every engine
    built on this checkpoint shares it, so their streams never run the model at
    the same time or switch T3's attention implementation under one another."""
    decode_lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    """Held while S3Gen (and the watermark) runs; ``lock`` alone then guards T3, so one
    thread's T3 steps and another's decode may run at the same time (the engine's
    ``work(stage=...)``). A piece of work that holds both takes ``lock`` first."""
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
        with self.decode_lock:  # the watermark is part of the decode stage
            if self._watermarker is None:
                self._watermarker = _quiet_perth_watermarker()
            return self._watermarker

    def to_tts(self, *, with_watermarker: bool = True) -> ChatterboxTTS:
        """Upstream's ``ChatterboxTTS`` around these modules (as ``from_local`` would build it);
        ``ChatterboxMultilingualTTS`` / ``ChatterboxTurboTTS`` for those models.

        Its watermarker is this checkpoint's shared one (:meth:`watermarker`)
        instead of a new Perth network announced on standard output, which is what
        ``ChatterboxTTS.__init__`` would make; ``with_watermarker=False`` leaves it
        ``None`` (enough for ``prepare_conditionals``, not for ``generate``).
        """
        from chatterbox.models.s3gen import S3GEN_SR

        tts_class = _tts_class(self.model)
        tts = tts_class.__new__(tts_class)  # the attributes __init__ sets, minus Perth
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


def load_checkpoint(
    directory: str | os.PathLike[str],
    *,
    model: str = "english",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedCheckpoint:
    """Load a Chatterbox checkpoint folder (released weights or random ones) into upstream modules.

    Sizes come from the tensors (see :mod:`.arch`). T3 and the VoiceEncoder load with
    ``strict=True``; S3Gen with ``strict=False`` as upstream, but any missing key other than
    upstream's declared ``ignore_state_dict_missing`` (two recomputable tokenizer buffers that some
    released files omit) and any unexpected key is an error. ``dtype`` applies to T3 (and the
    voice's T3 conditionals); S3Gen and the VoiceEncoder stay float32 because their upstream code
    builds float32 tensors internally. ``model`` (``english``, ``multilingual``, ``turbo``) names
    the layout. Raises :class:`CheckpointError` naming the file at fault (and, for a folder of
    another model, that model).
    """
    started = time.perf_counter()
    folder = _checked_folder(directory, model)
    layout = LAYOUTS[model]
    device = torch.device(device)
    files = layout.weights
    states = {name: _read_tensors(folder / name) for name in files.values()}
    arch = _arch_of_states(folder, states.__getitem__, model)
    ve = _load_into(build_ve(arch.ve), states.pop(files["ve"]), folder / files["ve"])
    t3 = _load_into(build_t3(arch.t3), states.pop(files["t3"]), folder / files["t3"])
    s3gen = _load_into(build_s3gen_for(arch), states.pop(files["s3gen"]), folder / files["s3gen"])
    if arch.t3.backbone == "gpt2":
        del t3.tfmr.wte  # as ChatterboxTurboTTS.from_local: T3 feeds its own embeddings
    t3.to(device=device, dtype=dtype).eval()
    s3gen.to(device).eval()
    ve.to(device).eval()
    conds = _load_conds(folder / CONDS_FILE, device, dtype, model)
    return LoadedCheckpoint(
        path=folder,
        t3=t3,
        s3gen=s3gen,
        ve=ve,
        tokenizer=_TOKENIZER_LOADERS[model](folder),
        conds=conds,
        arch=arch,
        random_weights=_written_at_random(folder / files["t3"]),
        device=device,
        dtype=dtype,
        seconds=time.perf_counter() - started,
        model=model,
    )


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> Any:
    """``load_state_dict`` that reports a mismatch as a :class:`CheckpointError` naming ``path``."""
    ignorable = s3gen_ignorable_missing_keys() if path.name == S3GEN_FILE else frozenset()
    # (Multilingual's s3gen.pt and Turbo's s3gen_meanflow load strict=True upstream.)
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


def _tts_class(model: str) -> Any:
    if model == "multilingual":
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS

        return ChatterboxMultilingualTTS
    if model == "turbo":
        from chatterbox.tts_turbo import ChatterboxTurboTTS

        return ChatterboxTurboTTS
    from chatterbox.tts import ChatterboxTTS

    return ChatterboxTTS


def _load_conds(
    path: Path, device: torch.device, dtype: torch.dtype, model: str = "english"
) -> Conditionals | None:
    import importlib

    module = {"multilingual": "chatterbox.mtl_tts", "turbo": "chatterbox.tts_turbo"}
    Conditionals = importlib.import_module(module.get(model, "chatterbox.tts")).Conditionals

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


def _load_mtl_tokenizer(folder: Path) -> Any:
    """Upstream ``MTLTokenizer`` on the folder's grapheme vocabulary, without the network.

    ``MTLTokenizer.__init__`` fetches ``Cangjie5_TC.json`` through ``hf_hub_download`` and builds
    ``spacy_pkuseg``'s segmenter, which downloads its model on first use (and raises a
    ``ConnectionError`` offline). This runs the same steps locally: the Cangjie table from the
    folder (as ``ChineseCangjieConverter._load_cangjie_mapping`` parses it; none when absent) and
    the segmenter only when pkuseg's model is already installed, else ``None`` (upstream's own
    fallback without pkuseg: Chinese words are then not space-separated).
    """
    from chatterbox.models.tokenizers.tokenizer import ChineseCangjieConverter, MTLTokenizer
    from tokenizers import Tokenizer

    path = folder / LAYOUTS["multilingual"].tokenizer_files[0]
    tokenizer = MTLTokenizer.__new__(MTLTokenizer)
    try:
        tokenizer.tokenizer = Tokenizer.from_file(str(path))
        tokenizer.check_vocabset_sot_eot()
    except Exception as exc:  # tokenizers' own error, or upstream's assert on [START]/[STOP]
        raise CheckpointError(
            f"{path} is not a Chatterbox Multilingual grapheme tokenizer: {exc!r}"
        ) from exc
    converter = ChineseCangjieConverter.__new__(ChineseCangjieConverter)
    converter.word2cj, converter.cj2word = _read_cangjie(folder / CANGJIE_FILE)
    converter.segmenter = _installed_pkuseg()
    tokenizer.cangjie_converter = converter
    return tokenizer


def _read_cangjie(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    word2cj: dict[str, str] = {}
    cj2word: dict[str, list[str]] = {}
    if not path.is_file():
        return word2cj, cj2word
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        for entry in entries:
            word, code = entry.split("\t")[:2]
            word2cj[word] = code
            cj2word.setdefault(code, []).append(word)
    except (ValueError, AttributeError, TypeError) as exc:
        raise CheckpointError(
            f"{path} is not a Cangjie table (a JSON list of \"character<TAB>code\" strings): {exc}"
        ) from exc
    return word2cj, cj2word


def _installed_pkuseg() -> Any:
    """``spacy_pkuseg.pkuseg()`` when its default model is on disk, else ``None``."""
    try:
        from spacy_pkuseg import pkuseg
    except ImportError:
        return None
    if not (Path.home() / ".pkuseg" / "spacy_ontonotes").is_dir():
        return None
    try:
        return pkuseg()
    except Exception:  # noqa: BLE001 - a broken model install: segment nothing, as upstream
        return None


def _load_turbo_tokenizer(folder: Path) -> Any:
    """``AutoTokenizer.from_pretrained(folder)`` with the pad token Turbo's ``from_local`` sets."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises OSError, ValueError, JSON errors...
        raise CheckpointError(
            f"{folder} has no readable Chatterbox Turbo (GPT-2) tokenizer: {exc!r}"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


_TOKENIZER_LOADERS = {
    "english": lambda folder: _load_tokenizer(folder / TOKENIZER_FILE),
    "multilingual": _load_mtl_tokenizer,
    "turbo": _load_turbo_tokenizer,
}


def _written_at_random(path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        raw = (handle.metadata() or {}).get(_METADATA_KEY)
    try:
        return bool(raw and json.loads(raw).get("random_weights"))
    except (ValueError, AttributeError):
        return False
