"""Random-weight Chatterbox checkpoints in the released layout, run through upstream's own code.

One tiny checkpoint is written per module and shared; everything here runs the real
chatterbox-tts classes on it (T3 generation, S3Gen token-to-waveform, the VoiceEncoder and
upstream's conditionals pipeline). The weights are random: outputs are noise, not speech, so the
tests check shapes, finiteness, determinism and error reporting, never audio quality.

The full-size checkpoint (about 3.2 GB, written and loaded by upstream's ``from_local``) is a
slow test: it runs when ``SEQOPT_SLOW=1`` is set.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("chatterbox.tts", reason="needs the chatterbox extra: seqopt[chatterbox]")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from seqopt_plugins.chatterbox.checkpoint import (  # noqa: E402
    CHECKPOINT_FILES,
    CONDS_FILE,
    RELEASED_ARCH,
    REQUIRED_FILES,
    S3GEN_FILE,
    T3_FILE,
    TINY_ARCH,
    VE_FILE,
    CheckpointError,
    LoadedCheckpoint,
    T3Arch,
    infer_arch,
    infer_t3_arch,
    infer_ve_arch,
    load_checkpoint,
    write_random_checkpoint,
)
from seqopt_plugins.chatterbox.tiny_s3gen import (  # noqa: E402
    RELEASED_S3GEN,
    assemble_s3gen,
    infer_s3gen_arch,
    s3gen_ignorable_missing_keys,
)

SAFETENSORS_FILES = (VE_FILE, T3_FILE, S3GEN_FILE)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer_path) -> Path:
    folder = tmp_path_factory.mktemp("tiny-seed0")
    info = write_random_checkpoint(folder, scale="tiny", seed=0, tokenizer=tokenizer_path)
    assert info.path == folder and info.arch == TINY_ARCH
    return folder


@pytest.fixture(scope="module")
def loaded(tiny_dir) -> LoadedCheckpoint:
    return load_checkpoint(tiny_dir)


@pytest.fixture
def text_tokens(loaded):
    """Text tokens framed and CFG-doubled exactly as ``ChatterboxTTS.generate`` does."""

    def make(text: str, cfg: bool = True) -> torch.Tensor:
        tokens = loaded.tokenizer.text_to_tokens(text)
        if cfg:
            tokens = torch.cat([tokens, tokens], dim=0)
        tokens = F.pad(tokens, (1, 0), value=loaded.t3.hp.start_text_token)
        return F.pad(tokens, (0, 1), value=loaded.t3.hp.stop_text_token)

    return make


def _link_copy(source: Path, target: Path, *, skip: str | None = None) -> Path:
    """The checkpoint folder as symlinks (cheap), optionally without one file."""
    target.mkdir()
    for name in CHECKPOINT_FILES:
        if name != skip:
            (target / name).symlink_to(source / name)
    return target


# ---------------------------------------------------------------------------------------------
# The layout and determinism
# ---------------------------------------------------------------------------------------------


def test_writes_exactly_the_released_files(tiny_dir):
    assert sorted(p.name for p in tiny_dir.iterdir()) == sorted(CHECKPOINT_FILES)
    assert set(CHECKPOINT_FILES) == {
        "ve.safetensors",
        "t3_cfg.safetensors",
        "s3gen.safetensors",
        "tokenizer.json",
        "conds.pt",
    }
    total = sum((tiny_dir / name).stat().st_size for name in CHECKPOINT_FILES)
    assert total < 64 * 2**20, "the tiny checkpoint should stay small"


def test_tokenizer_is_a_verbatim_copy(tiny_dir, tokenizer_path):
    assert (tiny_dir / "tokenizer.json").read_bytes() == Path(tokenizer_path).read_bytes()


def test_same_seed_gives_identical_bytes_and_leaves_the_callers_rng_alone(
    tiny_dir, tmp_path, tokenizer_path
):
    rng_before = torch.random.get_rng_state()
    info = write_random_checkpoint(tmp_path / "again", seed=0, tokenizer=tokenizer_path)
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    for name in CHECKPOINT_FILES:
        assert (info.path / name).read_bytes() == (tiny_dir / name).read_bytes(), name
    assert info.files == {name: (tiny_dir / name).stat().st_size for name in CHECKPOINT_FILES}
    assert info.total_bytes == sum(info.files.values())


def test_another_seed_gives_other_weights_and_voice(tiny_dir, tmp_path, tokenizer_path):
    other = write_random_checkpoint(tmp_path / "seed1", seed=1, tokenizer=tokenizer_path).path
    recomputed = s3gen_ignorable_missing_keys()  # mel filterbank and window: not random
    for name in SAFETENSORS_FILES:
        ours, theirs = load_file(tiny_dir / name), load_file(other / name)
        assert ours.keys() == theirs.keys()
        random_tensors = [
            k
            for k, v in ours.items()
            if v.is_floating_point() and v.numel() > 16 and v.std() > 0 and k not in recomputed
        ]
        assert random_tensors, name
        for key in random_tensors:
            assert not torch.equal(ours[key], theirs[key]), f"{name}:{key}"
    voice, other_voice = (torch.load(d / CONDS_FILE, weights_only=True) for d in (tiny_dir, other))
    assert not torch.equal(voice["t3"]["speaker_emb"], other_voice["t3"]["speaker_emb"])
    assert not torch.equal(voice["gen"]["prompt_token"], other_voice["gen"]["prompt_token"])


def test_rejects_an_unknown_scale_and_a_missing_tokenizer(tmp_path, tokenizer_path):
    with pytest.raises(CheckpointError, match="scale"):
        write_random_checkpoint(
            tmp_path / "x", scale="huge", tokenizer=tokenizer_path  # type: ignore[arg-type]
        )
    with pytest.raises(CheckpointError, match="tokenizer"):
        write_random_checkpoint(tmp_path / "y", tokenizer=tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"bad\.json is not a Chatterbox English tokenizer"):
        write_random_checkpoint(tmp_path / "z", tokenizer=tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def test_load_round_trips_every_tensor(tiny_dir, loaded):
    ignorable = s3gen_ignorable_missing_keys()
    for name, module in ((VE_FILE, loaded.ve), (T3_FILE, loaded.t3), (S3GEN_FILE, loaded.s3gen)):
        saved = load_file(tiny_dir / name)
        live = module.state_dict()
        assert set(live) - set(saved) <= (ignorable if name == S3GEN_FILE else set()), name
        assert set(saved) <= set(live), name
        for key, tensor in saved.items():
            assert torch.equal(live[key].cpu(), tensor), f"{name}:{key}"


def test_architecture_is_inferred_from_the_tensors(tiny_dir, loaded):
    assert infer_arch(tiny_dir) == TINY_ARCH
    assert loaded.arch == TINY_ARCH
    assert loaded.scale_hint == "tiny"
    assert loaded.random_weights is True
    assert loaded.t3.hp.llama_config_name == TINY_ARCH.t3.llama_config_name != "Llama_520M"


def test_t3_keeps_the_released_depth_and_heads(loaded):
    from chatterbox.models.t3.inference.alignment_stream_analyzer import LLAMA_ALIGNED_HEADS

    cfg = loaded.t3.cfg
    assert len(loaded.t3.tfmr.layers) == cfg.num_hidden_layers >= 14
    assert cfg.num_attention_heads == 16
    assert cfg.head_dim * 16 == cfg.hidden_size
    for layer, head in LLAMA_ALIGNED_HEADS:
        assert layer < cfg.num_hidden_layers and head < cfg.num_attention_heads
    assert loaded.t3.cond_enc.perceiver.pre_attention_query.shape[-1] == cfg.hidden_size


def test_released_shapes_are_recognised(tmp_path):
    """Upstream's own default modules (built on the meta device: shapes only, no memory)."""
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder

    with torch.device("meta"):
        t3, s3gen, ve = T3(), S3Gen(), VoiceEncoder()
        assembled = assemble_s3gen(RELEASED_S3GEN)
    assert infer_t3_arch(t3.state_dict()) == RELEASED_ARCH.t3
    assert infer_s3gen_arch(s3gen.state_dict()) == RELEASED_ARCH.s3gen
    assert infer_ve_arch(ve.state_dict()) == RELEASED_ARCH.ve
    assert RELEASED_ARCH.t3.llama_config_name == "Llama_520M"
    assert vars(T3Arch().t3_config()) == vars(T3Config.english_only())
    # The tiny S3Gen is assembled by the same code: at released sizes it is S3Gen() exactly.
    shapes = {k: v.shape for k, v in s3gen.state_dict().items()}
    assert {k: v.shape for k, v in assembled.state_dict().items()} == shapes
    assert vars(assembled).keys() == vars(s3gen).keys()
    # (weight-norm parametrisation makes a class per module: compare class names)
    names = [type(m).__name__ for m in s3gen.modules()]
    assert [type(m).__name__ for m in assembled.modules()] == names


# ---------------------------------------------------------------------------------------------
# Upstream code paths on the tiny checkpoint
# ---------------------------------------------------------------------------------------------


def test_t3_inference_generates_speech_tokens(loaded, text_tokens):
    """Upstream's own sampling loop (CFG batch of 2, KV cache, min_p/top_p/repetition penalty)."""
    torch.manual_seed(0)
    conds = copy.deepcopy(loaded.conds)
    tokens = loaded.t3.inference(
        t3_cond=conds.t3, text_tokens=text_tokens("Hello there, this is a test."), max_new_tokens=6
    )
    assert tokens.dtype == torch.long and tokens.shape[0] == 1 and 1 <= tokens.shape[1] <= 6
    assert ((tokens >= 0) & (tokens < loaded.t3.hp.speech_tokens_dict_size)).all()


def test_t3_kv_cache_decode_matches_a_full_forward(loaded, text_tokens):
    t3 = loaded.t3
    cond = copy.deepcopy(loaded.conds.t3)
    bos = torch.tensor([[t3.hp.start_speech_token]])
    with torch.inference_mode():
        embeds, _ = t3.prepare_input_embeds(
            t3_cond=cond, text_tokens=text_tokens("A few words.", cfg=False), speech_tokens=bos
        )
        out = t3.tfmr(inputs_embeds=embeds, use_cache=True)
        logits = t3.speech_head(out.last_hidden_state[:, -1])
        assert torch.isfinite(logits).all()
        assert logits.std() > 0.3, "logits should not be flat"
        assert logits.softmax(-1).max() < 0.5, "logits should not be one-hot"
        steps = [embeds]
        past = out.past_key_values
        for i in range(3):
            token = logits.argmax(-1, keepdim=True)
            step = t3.speech_emb(token) + t3.speech_pos_emb.get_fixed_embedding(i + 1)
            steps.append(step)
            out = t3.tfmr(inputs_embeds=step, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = t3.speech_head(out.last_hidden_state[:, -1])
        full = t3.tfmr(inputs_embeds=torch.cat(steps, dim=1), use_cache=False)
        assert torch.allclose(t3.speech_head(full.last_hidden_state[:, -1]), logits, atol=1e-4)


def test_s3gen_turns_25_tokens_into_a_24khz_waveform(loaded):
    from chatterbox.models.s3gen import S3GEN_SR

    torch.manual_seed(0)
    tokens = torch.randint(0, 6561, (1, 25))
    wav, _ = loaded.s3gen.inference(speech_tokens=tokens, ref_dict=dict(loaded.conds.gen))
    assert S3GEN_SR == 24_000
    assert wav.shape == (1, 25 * S3GEN_SR // 25)  # 25 tokens/s: 25 tokens are one second
    assert torch.isfinite(wav).all() and wav.abs().max() <= 1.0 and wav.std() > 0


def test_voice_encoder_embeds_a_wav(loaded):
    wav = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    embeds = loaded.ve.embeds_from_wavs([wav], sample_rate=16_000)
    assert embeds.shape == (1, 256) and np.isfinite(embeds).all()
    assert np.linalg.norm(embeds[0]) == pytest.approx(1.0, abs=1e-4)


def test_upstream_conditionals_pipeline_matches_the_built_in_voice(loaded, tmp_path):
    """``ChatterboxTTS.prepare_conditionals`` (S3Gen.embed_ref, S3 tokenizer, VoiceEncoder) runs on
    the tiny modules and yields the same keys, dtypes and ranks as ``conds.pt``."""
    import soundfile

    wav = np.random.default_rng(1).standard_normal(24_000 * 7).astype(np.float32) * 0.1
    soundfile.write(tmp_path / "ref.wav", wav, 24_000)
    tts = loaded.to_tts()
    tts.prepare_conditionals(str(tmp_path / "ref.wav"))
    built, stored = tts.conds, loaded.conds
    for ours, theirs in ((vars(built.t3), vars(stored.t3)), (built.gen, stored.gen)):
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            if value is None:
                assert ours[key] is None, key
            else:
                assert value.dtype == ours[key].dtype and value.dim() == ours[key].dim(), key
    prompt = stored.t3.cond_prompt_speech_tokens
    assert built.t3.cond_prompt_speech_tokens.shape == prompt.shape == (1, 150)
    assert built.t3.speaker_emb.shape == stored.t3.speaker_emb.shape == (1, 256)
    assert built.gen["embedding"].shape == stored.gen["embedding"].shape == (1, 192)
    tokens, feats = stored.gen["prompt_token"], stored.gen["prompt_feat"]
    assert feats.shape == (1, 2 * tokens.shape[1], 80)
    assert stored.gen["prompt_token_len"].tolist() == [tokens.shape[1]]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", REQUIRED_FILES)
def test_missing_file_is_named(tiny_dir, tmp_path, missing):
    folder = _link_copy(tiny_dir, tmp_path / "ckpt", skip=missing)
    expected = rf"has no {missing}: .* must contain ve\.safetensors"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(folder)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; it must contain"):
        load_checkpoint(tmp_path / "nowhere")


def test_without_conds_the_voice_is_none(tiny_dir, tmp_path):
    assert load_checkpoint(_link_copy(tiny_dir, tmp_path / "ckpt", skip=CONDS_FILE)).conds is None


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_safetensors_is_named(tiny_dir, tmp_path, damage):
    folder = _link_copy(tiny_dir, tmp_path / "ckpt", skip=S3GEN_FILE)
    data = (tiny_dir / S3GEN_FILE).read_bytes()
    damaged = b"\x00garbage" * 100 if damage == "garbage" else data[: len(data) // 2]
    (folder / S3GEN_FILE).write_bytes(damaged)
    with pytest.raises(CheckpointError, match=r"s3gen\.safetensors is not a readable safetensors"):
        load_checkpoint(folder)


def test_wrong_shapes_are_named(tiny_dir, tmp_path):
    folder = _link_copy(tiny_dir, tmp_path / "ckpt", skip=T3_FILE)
    state = load_file(tiny_dir / T3_FILE)
    state["tfmr.layers.3.mlp.up_proj.weight"] = torch.zeros(7, 3)
    save_file(state, folder / T3_FILE)
    with pytest.raises(CheckpointError, match=r"t3_cfg\.safetensors does not match"):
        load_checkpoint(folder)


def test_foreign_weights_are_named(tiny_dir, tmp_path):
    folder = _link_copy(tiny_dir, tmp_path / "ckpt", skip=S3GEN_FILE)
    shutil.copyfile(tiny_dir / T3_FILE, folder / S3GEN_FILE)  # T3 weights under S3Gen's name
    with pytest.raises(CheckpointError, match=r"s3gen\.safetensors does not hold the expected"):
        load_checkpoint(folder)


def test_corrupt_conds_is_named(tiny_dir, tmp_path):
    folder = _link_copy(tiny_dir, tmp_path / "ckpt", skip=CONDS_FILE)
    (folder / CONDS_FILE).write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"conds\.pt is not a readable"):
        load_checkpoint(folder)


# ---------------------------------------------------------------------------------------------
# Full size (slow)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SEQOPT_SLOW"), reason="writes ~3.2 GB; set SEQOPT_SLOW=1")
def test_full_checkpoint_loads_with_upstreams_from_local(tmp_path, tokenizer_path):
    from chatterbox.tts import ChatterboxTTS

    info = write_random_checkpoint(
        tmp_path / "full", scale="full", seed=0, tokenizer=tokenizer_path
    )
    assert info.arch == RELEASED_ARCH
    assert info.parameters["t3"] > 500_000_000
    tts = ChatterboxTTS.from_local(info.path, "cpu")  # upstream's loader, unchanged
    assert tts.conds is not None and len(tts.t3.tfmr.layers) == 30
    reference = {
        k: v.clone() for k, v in tts.t3.state_dict().items() if k.startswith("tfmr.layers.29.")
    }
    del tts
    loaded = load_checkpoint(info.path)
    assert loaded.arch == RELEASED_ARCH and loaded.scale_hint == "full"
    for key, value in reference.items():
        assert torch.equal(loaded.t3.state_dict()[key], value), key
