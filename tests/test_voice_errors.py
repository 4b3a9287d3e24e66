"""A reference WAV given as the voice (``--voice``, ``engine.options.voice``): clear errors
for files that cannot be used, a warning for a voice too short to match the speaker,
and no output on standard output while the voice is prepared (``-o -`` streams audio
there). Bad files are made with the stdlib ``wave`` module and raw bytes."""

from __future__ import annotations

import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from seqopt_core import SeqoptError
from seqopt_plugins.chatterbox.checkpoint import load_checkpoint
from seqopt_plugins.chatterbox.engine import ChatterboxEngine
from seqopt_plugins.chatterbox.options import ChatterboxOptions

RATE = 24_000


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


def write_wav(path: Path, seconds: float, *, rate: int = RATE, channels: int = 1) -> Path:
    frames = int(round(seconds * rate))
    signal = np.random.default_rng(0).standard_normal(frames * channels) * 3000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(signal.astype("<i2").tobytes())
    return path


def engine_for(loaded, voice: Path | str, **settings) -> ChatterboxEngine:
    options = ChatterboxOptions(checkpoint=str(loaded.path), voice=str(voice),
                                **{"watermark": False, **settings})
    return ChatterboxEngine(loaded, options)


def voice_error(loaded, voice: Path | str) -> str:
    with pytest.raises(SeqoptError) as err:
        engine_for(loaded, voice)
    message = str(err.value)
    assert str(voice) in message  # always names the file
    return message


def test_missing_file(loaded, tmp_path):
    message = voice_error(loaded, tmp_path / "nobody.wav")
    assert "does not exist" in message


def test_folder_is_not_reported_as_missing(loaded, tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    message = voice_error(loaded, folder)
    assert "is a folder" in message and "does not exist" not in message
    write_wav(folder / "me.wav", 7.0)
    assert "'me.wav'" in voice_error(loaded, folder)  # names what it could have meant


def test_empty_file(loaded, tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    message = voice_error(loaded, path)
    assert "is empty (0 bytes)" in message and "EOFError" not in message


def test_text_file_is_not_audio(loaded, tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 20, encoding="utf-8")
    message = voice_error(loaded, path)
    assert "text file, not audio" in message and "NoBackendError" not in message


def test_other_binary_is_not_a_wav(loaded, tmp_path):
    path = tmp_path / "junk.wav"
    path.write_bytes(bytes(range(256)) * 8)
    message = voice_error(loaded, path)
    assert "is not a WAV file" in message and "NoBackendError" not in message


def test_riff_of_another_kind(loaded, tmp_path):
    path = tmp_path / "movie.wav"
    path.write_bytes(b"RIFF" + (64).to_bytes(4, "little") + b"AVI " + bytes(64))
    assert "RIFF file of type 'AVI ', not a WAV" in voice_error(loaded, path)


def test_wav_cut_inside_its_header(loaded, tmp_path):
    whole = write_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[:30])
    message = voice_error(loaded, path)
    assert "truncated WAV" in message and "before its audio" in message and "EOFError" not in message


def test_wav_cut_inside_its_audio(loaded, tmp_path):
    """Upstream reads the half that is there without a word; the file is damaged."""
    whole = write_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    path = tmp_path / "half.wav"
    path.write_bytes(whole[: len(whole) // 2])
    message = voice_error(loaded, path)
    assert "truncated WAV" in message and "promises 144,000 bytes" in message
    assert "1.50 s of 3.00 s" in message


@pytest.mark.parametrize("riff, data", [(0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF - 36)],
                         ids=["max", "seqopt_speak_stdout"])
def test_streamed_wav_with_unknown_size_is_accepted(loaded, tmp_path, riff, data):
    """Writers that cannot seek (a WAV streamed to a pipe, ``seqopt speak -o - > me.wav``)
    leave the sizes at (nearly) 0xFFFFFFFF or 0; that is not a truncation."""
    raw = bytearray(write_wav(tmp_path / "whole.wav", 7.0).read_bytes())
    at = raw.index(b"data") + 4
    raw[at:at + 4] = data.to_bytes(4, "little")
    raw[4:8] = riff.to_bytes(4, "little")
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(raw))
    engine = engine_for(loaded, path)
    assert engine.voice.seconds == pytest.approx(7.0, abs=0.01)


def test_wav_whose_header_declares_no_audio(loaded, tmp_path):
    raw = bytearray(write_wav(tmp_path / "whole.wav", 2.0).read_bytes())
    at = raw.index(b"data") + 4
    raw[at:at + 4] = bytes(4)
    path = tmp_path / "unsized.wav"
    path.write_bytes(bytes(raw))
    message = voice_error(loaded, path)
    assert "holds no audio" in message and "says 0 bytes of audio although 96,000 bytes follow" in message


def test_a_wav_streamed_by_seqopt_speak_is_a_usable_voice(loaded, tmp_path):
    from seqopt_core.wavfile import stream_header

    signal = (np.random.default_rng(5).standard_normal(7 * RATE) * 3000).astype("<i2")
    path = tmp_path / "spoken.wav"
    path.write_bytes(stream_header(RATE) + signal.tobytes())
    assert engine_for(loaded, path).voice.seconds == pytest.approx(7.0, abs=0.01)


def test_wav_without_samples(loaded, tmp_path):
    message = voice_error(loaded, write_wav(tmp_path / "silent.wav", 0.0))
    assert "holds no audio" in message and "RuntimeError" not in message


def test_wav_too_short_to_prepare(loaded, tmp_path):
    message = voice_error(loaded, write_wav(tmp_path / "click.wav", 0.01))
    assert "too short to use" in message and "Padding size" not in message


def test_short_voice_is_used_with_a_warning(loaded, tmp_path):
    path = write_wav(tmp_path / "short.wav", 0.1)
    with pytest.warns(UserWarning, match=r"only 0\.10 s long") as caught:
        engine = engine_for(loaded, path)
    assert engine.conds.t3.cond_prompt_speech_tokens.shape[1] >= 1
    from seqopt_plugins.chatterbox.voice import MIN_VOICE_SECONDS, VoiceWarning

    assert any(issubclass(w.category, VoiceWarning) for w in caught)
    assert f"{MIN_VOICE_SECONDS:.0f}" in str(caught[0].message) and str(path) in str(caught[0].message)


def test_long_enough_voice_gives_no_warning_and_no_graph(loaded, tmp_path):
    path = write_wav(tmp_path / "me.wav", 7.0, rate=16_000, channels=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        engine = engine_for(loaded, path)
    voice = engine.voice
    assert voice.seconds == pytest.approx(7.0) and voice.sample_rate == 16_000 and voice.channels == 2
    assert "WAV" in voice.describe()
    tensors = [*vars(engine.conds.t3).values(), *engine.conds.gen.values()]
    assert not any(t.requires_grad for t in tensors if isinstance(t, torch.Tensor))  # prepared without autograd


# -- standard output and Perth -------------------------------------------------------------


def test_preparing_a_voice_prints_nothing_on_stdout(loaded, tmp_path, capfd):
    """``--voice`` with ``-o -``: the audio goes to standard output, so nothing else may."""
    path = write_wav(tmp_path / "me.wav", 7.0)
    capfd.readouterr()
    engine = engine_for(loaded, path, watermark=True)
    engine.watermark(np.zeros(RATE, np.float32) + 0.01)
    assert capfd.readouterr().out == ""


def test_engines_share_one_perth_watermarker(loaded, tmp_path, monkeypatch):
    import perth

    made = []
    real_init = perth.PerthImplicitWatermarker.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(perth.PerthImplicitWatermarker, "__init__", counting_init)
    path = write_wav(tmp_path / "me.wav", 7.0)
    first = engine_for(loaded, path, watermark=True)
    second = engine_for(loaded, path, watermark=True, temperature=0.5)  # other settings
    audio = np.random.default_rng(2).standard_normal(RATE).astype(np.float32) * 0.1
    np.testing.assert_array_equal(first.watermark(audio), second.watermark(audio))
    assert len(made) <= 1  # one for the loaded models, none to prepare the voice
    assert loaded.to_tts().watermarker is loaded.watermarker()


def test_the_quiet_watermarker_marks_as_perth_does(loaded, capfd):
    import perth

    audio = np.random.default_rng(3).standard_normal(2 * RATE).astype(np.float32) * 0.1
    with torch.inference_mode():
        ours = loaded.watermarker().apply_watermark(audio, sample_rate=RATE)
        theirs = perth.PerthImplicitWatermarker().apply_watermark(audio, sample_rate=RATE)
    np.testing.assert_array_equal(ours, theirs)
    assert "loaded PerthNet" in capfd.readouterr().out  # Perth's own constructor does print
