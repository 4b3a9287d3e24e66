"""Random-weight Multilingual and Turbo checkpoints, loaded by upstream's ``from_local`` and ours.

One tiny checkpoint per model is written per session. Upstream's ``from_local`` builds its
modules at the released sizes, so for the tiny folders its module constructors (``T3``,
``S3Gen``, ``VoiceEncoder``) are swapped, inside the test only, for seqopt's builders at the tiny
sizes: everything else (file names, formats, ``load_state_dict`` with upstream's strictness,
tokenizer, conditionals, ``generate``) is upstream's own code. The Multilingual tokenizer's two
network fetches (the Cangjie table from the Hub, pkuseg's model) are pointed at the folder /
skipped, as there is no network here. Weights are random: outputs are noise, not speech.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

pytest.importorskip("chatterbox.mtl_tts", reason="needs the chatterbox extra: seqopt[chatterbox]")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from seqopt_core.cli import main  # noqa: E402
from seqopt_plugins.chatterbox.checkpoint import (  # noqa: E402
    LAYOUTS,
    TINY_MTL_ARCH,
    TINY_TURBO_ARCH,
    CheckpointError,
    infer_arch,
    load_checkpoint,
    write_random_checkpoint,
)
from seqopt_plugins.chatterbox.checkpoint.arch import build_s3gen_for, build_t3, build_ve  # noqa: E402
from seqopt_plugins.chatterbox.checkpoint.tokenizer_files import (  # noqa: E402
    MTL_SPECIALS,
    TURBO_EOS,
    TURBO_TAGS,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MTL_LANGUAGES_SAMPLE = {
    "en": "Hello world.",
    "fr": "Bonjour à tous.",
    "de": "Grüße aus Köln.",
    "ru": "Привет, мир.",
    "el": "Γειά σου κόσμε.",
    "ar": "مرحبا بالعالم.",
    "hi": "नमस्ते दुनिया।",
    "ko": "안녕하세요.",
    "zh": "你好世界。",
}


def _tiny(tmp_path_factory, model: str, arch) -> Path:
    folder = tmp_path_factory.mktemp(f"{model}-tiny")
    info = write_random_checkpoint(folder, model=model, scale="tiny", seed=0)
    assert info.arch == arch and info.model == model
    return folder


@pytest.fixture(scope="session")
def mtl_dir(tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory, "multilingual", TINY_MTL_ARCH)


@pytest.fixture(scope="session")
def turbo_dir(tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory, "turbo", TINY_TURBO_ARCH)


@pytest.fixture(scope="session")
def mtl_loaded(mtl_dir):
    return load_checkpoint(mtl_dir, model="multilingual")


@pytest.fixture(scope="session")
def turbo_loaded(turbo_dir):
    return load_checkpoint(turbo_dir, model="turbo")


def _tiny_constructors(monkeypatch, module, arch) -> None:
    """Make ``module``'s ``T3(hp)``, ``S3Gen(...)`` and ``VoiceEncoder()`` build ``arch``'s sizes."""
    monkeypatch.setattr(module, "T3", lambda hp=None: build_t3(arch.t3))
    monkeypatch.setattr(module, "S3Gen", lambda meanflow=False: build_s3gen_for(arch))
    monkeypatch.setattr(module, "VoiceEncoder", lambda: build_ve(arch.ve))


def _offline_mtl_tokenizer(monkeypatch, folder: Path) -> None:
    import spacy_pkuseg
    from chatterbox.models.tokenizers import tokenizer as upstream_tokenizer

    def no_pkuseg_model(*_args, **_kwargs):
        raise ImportError("pkuseg's model is not installed (no network)")

    monkeypatch.setattr(spacy_pkuseg, "pkuseg", no_pkuseg_model)
    monkeypatch.setattr(upstream_tokenizer, "hf_hub_download",
                        lambda **kwargs: str(folder / kwargs["filename"]))


def _short(method, **limit):
    """``method`` with its generation length capped (upstream's generate passes 1000)."""

    @functools.wraps(method)
    def capped(*args, **kwargs):
        return method(*args, **{**kwargs, **limit})

    return capped


def _speakable(inference):
    """T3 ``inference`` keeping only S3 speech tokens (ids < 6561) in its output.

    A random T3 samples ids the released model never emits (the unused rows 6563..8193 of its
    8194-entry speech vocabulary); upstream's ``drop_invalid_tokens`` only handles start/stop,
    and S3Gen cannot embed the rest, so they are dropped here, as Turbo's ``generate`` does.
    """

    @functools.wraps(inference)
    def filtered(*args, **kwargs):
        tokens = inference(*args, **kwargs)
        return tokens[:, tokens[0] < 6561]

    return filtered


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ---------------------------------------------------------------------------------------------
# Layout, determinism, architecture
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["multilingual", "turbo"])
def test_writes_exactly_the_released_files(model, mtl_dir, turbo_dir):
    folder = {"multilingual": mtl_dir, "turbo": turbo_dir}[model]
    assert sorted(p.name for p in folder.iterdir()) == sorted(LAYOUTS[model].files)


def test_multilingual_file_formats_are_the_released_ones(mtl_dir):
    for name in ("ve.pt", "s3gen.pt"):
        state = torch.load(mtl_dir / name, map_location="cpu", weights_only=True)
        assert isinstance(state, dict) and all(torch.is_tensor(v) for v in state.values())
    assert infer_arch(mtl_dir, "multilingual") == TINY_MTL_ARCH


def test_same_seed_gives_identical_bytes(turbo_dir, tmp_path):
    again = write_random_checkpoint(tmp_path / "again", model="turbo", scale="tiny", seed=0)
    for name in LAYOUTS["turbo"].files:
        assert (turbo_dir / name).read_bytes() == (again.path / name).read_bytes(), name


def test_turbo_arch_is_gpt2_with_meanflow(turbo_loaded):
    arch = turbo_loaded.arch
    assert arch == TINY_TURBO_ARCH and arch.scale == "tiny" and turbo_loaded.random_weights
    assert arch.t3.backbone == "gpt2" and arch.s3gen_meanflow
    assert turbo_loaded.t3.is_gpt and turbo_loaded.s3gen.meanflow
    assert turbo_loaded.s3gen.flow.decoder.estimator.time_embed_mixer is not None


def test_released_shapes_are_the_upstream_ones():
    """Upstream's from_local modules vs ours at full scale, on the meta device (shapes only)."""
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from seqopt_plugins.chatterbox.checkpoint import RELEASED_MTL_ARCH, RELEASED_TURBO_ARCH
    from seqopt_plugins.chatterbox.checkpoint.arch import infer_t3_arch
    from seqopt_plugins.chatterbox.tiny_s3gen import assemble_s3gen, infer_s3gen_arch

    turbo_hp = T3Config(text_tokens_dict_size=50276)  # as ChatterboxTurboTTS.from_local
    turbo_hp.llama_config_name = "GPT2_medium"
    turbo_hp.speech_tokens_dict_size = 6563
    turbo_hp.input_pos_emb = None
    turbo_hp.speech_cond_prompt_len = 375
    turbo_hp.use_perceiver_resampler = False
    turbo_hp.emotion_adv = False

    def shapes(module):
        return {k: v.shape for k, v in module.state_dict().items()}

    with torch.device("meta"):
        mtl_t3, turbo_t3 = T3(T3Config.multilingual()), T3(turbo_hp)
        meanflow = S3Gen(meanflow=True)
        ours_mtl, ours_turbo = build_t3(RELEASED_MTL_ARCH.t3), build_t3(RELEASED_TURBO_ARCH.t3)
        plain = assemble_s3gen(RELEASED_TURBO_ARCH.s3gen)
    assert shapes(ours_mtl) == shapes(mtl_t3) and shapes(ours_turbo) == shapes(turbo_t3)
    assert vars(RELEASED_MTL_ARCH.t3.t3_config()) == vars(T3Config.multilingual())
    assert vars(RELEASED_TURBO_ARCH.t3.t3_config()) == vars(turbo_hp)
    assert infer_t3_arch(mtl_t3.state_dict()) == RELEASED_MTL_ARCH.t3
    assert infer_t3_arch(turbo_t3.state_dict()) == RELEASED_TURBO_ARCH.t3
    assert infer_s3gen_arch(meanflow.state_dict()) == RELEASED_TURBO_ARCH.s3gen
    # the meanflow decoder is the plain one plus its time_embed_mixer
    extra = set(shapes(meanflow)) - set(shapes(plain))
    assert extra == {"flow.decoder.estimator.time_embed_mixer.weight"}


# ---------------------------------------------------------------------------------------------
# Upstream's from_local and generate
# ---------------------------------------------------------------------------------------------


def test_multilingual_loads_with_upstreams_from_local_and_generates(
    mtl_dir, mtl_loaded, monkeypatch
):
    from chatterbox import mtl_tts

    _tiny_constructors(monkeypatch, mtl_tts, TINY_MTL_ARCH)
    monkeypatch.setattr(mtl_tts.T3Config, "multilingual", classmethod(lambda cls: None))
    _offline_mtl_tokenizer(monkeypatch, mtl_dir)
    tts = mtl_tts.ChatterboxMultilingualTTS.from_local(mtl_dir, "cpu")
    for name in ("t3", "s3gen", "ve"):
        _same_state(getattr(tts, name), getattr(mtl_loaded, name))
    assert tts.tokenizer.cangjie_converter.word2cj  # the folder's Cangjie table was read

    tts.t3.inference = _speakable(_short(tts.t3.inference, max_new_tokens=8))
    torch.manual_seed(0)
    wav = tts.generate("Bonjour.", language_id="fr")
    assert wav.ndim == 2 and wav.shape[1] > 0 and torch.isfinite(wav).all()


def test_turbo_loads_with_upstreams_from_local_and_generates(turbo_dir, turbo_loaded, monkeypatch):
    from chatterbox import tts_turbo

    _tiny_constructors(monkeypatch, tts_turbo, TINY_TURBO_ARCH)
    tts = tts_turbo.ChatterboxTurboTTS.from_local(turbo_dir, "cpu")
    for name in ("t3", "s3gen", "ve"):
        _same_state(getattr(tts, name), getattr(turbo_loaded, name))

    tts.t3.inference_turbo = _short(tts.t3.inference_turbo, max_gen_len=4)
    torch.manual_seed(0)
    wav = tts.generate("Hello there [laugh].")
    assert wav.ndim == 2 and wav.shape[1] > 0 and torch.isfinite(wav).all()


def test_our_loader_wraps_the_upstream_classes(mtl_loaded, turbo_loaded):
    from chatterbox.mtl_tts import ChatterboxMultilingualTTS
    from chatterbox.tts_turbo import ChatterboxTurboTTS

    assert isinstance(mtl_loaded.to_tts(with_watermarker=False), ChatterboxMultilingualTTS)
    turbo = turbo_loaded.to_tts(with_watermarker=False)
    assert isinstance(turbo, ChatterboxTurboTTS) and turbo.conds is not None
    assert turbo.conds.t3.cond_prompt_speech_tokens.shape == (1, 375)


# ---------------------------------------------------------------------------------------------
# Tokenizers (structural)
# ---------------------------------------------------------------------------------------------


def test_multilingual_tokenizer_encodes_every_sample_language(mtl_loaded):
    tok = mtl_loaded.tokenizer
    unk = MTL_SPECIALS["[UNK]"]
    for lang, text in MTL_LANGUAGES_SAMPLE.items():
        ids = tok.encode(text, language_id=lang)
        assert ids[0] == tok.tokenizer.token_to_id(f"[{lang}]"), lang
        assert unk not in ids, (lang, ids)
        assert max(ids) < TINY_MTL_ARCH.t3.text_vocab_size


def test_multilingual_special_tokens_round_trip(mtl_loaded):
    tok = mtl_loaded.tokenizer.tokenizer
    for token, token_id in MTL_SPECIALS.items():
        assert tok.token_to_id(token) == token_id
        assert tok.encode(token).ids == [token_id]
    assert tok.token_to_id("[START]") == mtl_loaded.t3.hp.start_text_token
    assert tok.token_to_id("[STOP]") == mtl_loaded.t3.hp.stop_text_token
    assert mtl_loaded.tokenizer.decode(tok.encode("ab[SPACE]c").ids) == "ab c"


def test_turbo_tokenizer_round_trips_text_and_tags(turbo_loaded):
    tok = turbo_loaded.tokenizer
    text = "Hi [laugh] there — ça va?"
    ids = tok(text).input_ids
    assert tok.decode(ids) == text and max(ids) < TINY_TURBO_ARCH.t3.text_vocab_size
    for tag in TURBO_TAGS:
        assert len(tok(tag).input_ids) == 1, tag
    assert tok.eos_token == TURBO_EOS and tok.pad_token == TURBO_EOS


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_multilingual_loader_on_an_english_folder_says_so(tiny_checkpoint):
    with pytest.raises(CheckpointError, match=r"has no ve\.pt: a Chatterbox Multilingual .*"
                       r"looks like a Chatterbox \(English\) checkpoint"):
        load_checkpoint(tiny_checkpoint, model="multilingual")


def test_turbo_loader_names_the_missing_file(turbo_dir, tmp_path):
    folder = tmp_path / "turbo"
    folder.mkdir()
    for name in LAYOUTS["turbo"].files:
        if name != "s3gen_meanflow.safetensors":
            (folder / name).symlink_to(turbo_dir / name)
    with pytest.raises(CheckpointError, match=r"has no s3gen_meanflow\.safetensors: "
                                              r"a Chatterbox Turbo checkpoint folder"):
        load_checkpoint(folder, model="turbo")


def test_english_loader_on_a_turbo_folder_says_so(turbo_dir):
    with pytest.raises(CheckpointError, match=r"has no t3_cfg\.safetensors.*"
                                              r"looks like a Chatterbox Turbo checkpoint"):
        load_checkpoint(turbo_dir)


def test_unknown_model_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="unknown Chatterbox model 'mini'"):
        write_random_checkpoint(tmp_path, model="mini")


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------


def test_cli_writes_the_multilingual_layout(tmp_path):
    out = tmp_path / "mtl"
    result = CliRunner().invoke(
        main, ["make-checkpoint", str(out), "--model", "multilingual", "--scale", "tiny"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(LAYOUTS["multilingual"].files)
    assert "multilingual" in result.output and "noise, not speech" in result.output
