"""The streaming audio encoders of ``seqopt serve`` (seqopt_core/server/audio_formats.py).

Every format's stream is decoded again (soundfile/libsndfile, and Python's wave for WAV)
and compared with the signal: exactly for pcm, wav and flac, loosely for the lossy mp3
and opus. A test that needs an optional encoder library skips when it is not installed
(the ``serve`` extra brings them); a library that is installed must work.
"""

from __future__ import annotations

import doctest
import io
import struct
import sys
import wave

import numpy as np
import pytest

from seqopt_core.server import audio_formats as af
from seqopt_core.server.audio_formats import (
    FORMAT_NAMES,
    UnsupportedFormat,
    audio_formats,
    open_encoder,
    pcm16,
    wav_stream_header,
)

RATE = 24000
LOSSLESS = ("pcm", "wav", "flac")
ENCODED = ("mp3", "opus", "flac", "wav", "pcm")
#: The library each format needs, for the skip when it is not installed.
LIBRARY = {"mp3": "lameenc", "opus": "soundfile", "flac": "soundfile"}


def _needs(name: str) -> None:
    if name in LIBRARY:
        pytest.importorskip(LIBRARY[name], reason=f"{name} needs {LIBRARY[name]} (the serve extra)")


@pytest.fixture
def fresh_probe():
    """Forget the probed formats before and after a test that changes what is importable."""
    af._probed.cache_clear()
    yield
    af._probed.cache_clear()


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise that reaches past [-1, 1] (clipping) and holds exact-tie values (rounding)."""
    rng = np.random.default_rng(seed)
    signal = rng.uniform(-1.2, 1.2, int(seconds * RATE)).astype(np.float32)
    signal[:4] = [0.5 / 32767, 1.5 / 32767, -2.5 / 32767, np.float32(0.5)]
    return signal


def _speechlike(seconds: float) -> np.ndarray:
    """A smooth, band-limited test signal (a chirp with a slow envelope) for the lossy codecs."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.35 + 0.15 * np.sin(2 * np.pi * 1.3 * t)
    return (envelope * np.sin(2 * np.pi * (180 + 120 * t) * t)).astype(np.float32)


def _uneven_chunks(signal: np.ndarray, count: int = 37, seed: int = 1) -> list[np.ndarray]:
    """``count`` chunks of very different sizes (one sample, empty, long) covering ``signal``."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(2, len(signal) - 2), count - 4, replace=False))
    cuts = np.concatenate([[1, 1], cuts])  # a one-sample chunk, then an empty one
    chunks = np.split(signal, cuts)
    chunks.append(signal[:0])  # an empty chunk at the end, too
    assert len(chunks) == count and sum(len(c) for c in chunks) == len(signal)
    return chunks


def _stream(name: str, chunks: list[np.ndarray]) -> tuple[bytes, list[bytes]]:
    encoder = open_encoder(name, RATE)
    parts = [encoder.encode(chunk) for chunk in chunks]
    parts.append(encoder.finish())
    return b"".join(parts), parts


def _read_libsndfile(path, dtype: str) -> np.ndarray:
    """Every sample of an audio file, as libsndfile reads it.

    A streamed FLAC says its length is unknown (0 in STREAMINFO), which libsndfile
    reports as the largest frame count: soundfile's ``read()`` then tries to allocate
    that, and its block reads seek past the end after the last block. So such a file
    is read with libsndfile's own read call, which stops at the end.
    """
    import soundfile

    with soundfile.SoundFile(str(path)) as sound:
        assert sound.samplerate == RATE and sound.channels == 1
        if sound.frames < 2 ** 40:
            return sound.read(dtype=dtype)
        from soundfile import _ffi, _snd

        assert dtype == "int16"
        parts = []
        while True:
            block = np.empty(8192, dtype=np.int16)
            got = _snd.sf_readf_short(sound._file, _ffi.cast("short *", block.ctypes.data), len(block))
            if got <= 0:
                return np.concatenate(parts) if parts else block[:0]
            parts.append(block[:got].copy())


def _decode(name: str, data: bytes, tmp_path, dtype: str = "int16") -> np.ndarray:
    if name == "pcm":
        samples = np.frombuffer(data, dtype="<i2")
        return samples if dtype == "int16" else samples.astype(np.float32) / 32767
    path = tmp_path / f"stream{af.audio_formats()[name].file_suffix}"
    path.write_bytes(data)
    return _read_libsndfile(path, dtype)


def _best_lag(decoded: np.ndarray, signal: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The delay of ``signal`` in ``decoded`` (up to ``max_lag`` samples) and the
    correlation of the aligned pair."""
    best = (0, -1.0)
    probe = signal[: RATE // 2]
    for lag in range(max_lag + 1):
        window = decoded[lag:lag + len(probe)]
        if len(window) < len(probe):
            break
        corr = float(np.dot(window, probe) / (np.linalg.norm(window) * np.linalg.norm(probe) + 1e-12))
        if corr > best[1]:
            best = (lag, corr)
    lag = best[0]
    aligned = decoded[lag:lag + len(signal)]
    whole = float(np.corrcoef(aligned, signal[:len(aligned)])[0, 1])
    return lag, whole


# --- the records -------------------------------------------------------------------------

def test_every_openai_format_has_a_record():
    formats = audio_formats()
    assert tuple(formats) == FORMAT_NAMES == ("mp3", "opus", "aac", "flac", "wav", "pcm")
    assert formats["wav"].media_type == "audio/wav" and formats["mp3"].media_type == "audio/mpeg"
    assert formats["flac"].file_suffix == ".flac" and formats["opus"].file_suffix == ".opus"
    for name in ("wav", "pcm"):
        assert formats[name].available and formats[name].reason is None and formats[name].requires is None
    assert formats["mp3"].requires == "pip install lameenc"
    assert formats["flac"].requires == formats["opus"].requires == "pip install soundfile"
    for record in formats.values():
        assert record.available == (record.reason is None)


def test_aac_is_unavailable_and_says_what_works():
    aac = audio_formats()["aac"]
    working = [name for name, record in audio_formats().items() if record.available]
    assert not aac.available and "AAC" in aac.reason
    assert ", ".join(working) in aac.reason
    with pytest.raises(UnsupportedFormat) as raised:
        open_encoder("aac", RATE)
    message = str(raised.value)
    assert "'aac'" in message and "no AAC encoder" in message and "wav" in message and "pcm" in message
    assert message.count("formats that work here") == 1
    assert raised.value.format == "aac" and tuple(working) == raised.value.working


@pytest.mark.parametrize("name", ["ogg", "MP3", "", "wav ", "../wav"])
def test_an_unknown_format_is_a_value_error_naming_it_and_the_working_ones(name):
    with pytest.raises(UnsupportedFormat) as raised:
        open_encoder(name, RATE)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert repr(name) in message and "mp3, opus, aac, flac, wav, pcm" in message
    assert "Formats that work here: " in message and "wav" in message.split("work here: ")[1]


def test_a_sample_rate_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="sample_rate"):
        open_encoder("wav", 0)
    with pytest.raises(ValueError, match="sample_rate"):
        open_encoder("pcm", 24000.0)  # type: ignore[arg-type]


def test_opus_refuses_a_rate_its_writer_does_not_take():
    _needs("opus")
    with pytest.raises(UnsupportedFormat, match="Ogg Opus takes 8, 12, 16, 24, 48 kHz, not 44100 Hz"):
        open_encoder("opus", 44100)


def test_a_missing_library_makes_its_formats_unavailable_with_the_install_line(monkeypatch, fresh_probe):
    monkeypatch.setitem(sys.modules, "lameenc", None)     # import lameenc raises ImportError
    monkeypatch.setitem(sys.modules, "soundfile", None)
    formats = audio_formats()
    assert not formats["mp3"].available and "lameenc" in formats["mp3"].reason
    for name in ("flac", "opus"):
        assert not formats[name].available and "soundfile" in formats[name].reason
    assert formats["wav"].available and formats["pcm"].available
    assert formats["aac"].reason.endswith("the formats that work here are wav, pcm")
    with pytest.raises(UnsupportedFormat) as raised:
        open_encoder("mp3", RATE)
    assert str(raised.value) == ("response_format 'mp3' cannot be used: the lameenc package is not "
                                 "installed (pip install lameenc). Formats that work here: wav, pcm")


def test_availability_comes_from_a_test_encode_not_from_the_format_list(monkeypatch, fresh_probe):
    """A library that lists the format but fails to encode it marks it unavailable."""
    soundfile = pytest.importorskip("soundfile")

    class BrokenSoundFile:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("encoder exploded")

    monkeypatch.setattr(soundfile, "SoundFile", BrokenSoundFile)
    formats = audio_formats()
    assert not formats["flac"].available and not formats["opus"].available
    assert "a test encode failed (RuntimeError: encoder exploded)" == formats["flac"].reason
    with pytest.raises(UnsupportedFormat, match="'flac'.*encoder exploded"):
        open_encoder("flac", RATE)


@pytest.mark.parametrize("name", ["mp3", "flac", "opus"])
def test_an_installed_library_gives_its_format(name):
    _needs(name)
    record = audio_formats()[name]
    assert record.available, record.reason


def test_the_module_doc_examples_run():
    result = doctest.testmod(af)
    assert result.attempted > 0 and result.failed == 0


# --- pcm and wav, exactly ----------------------------------------------------------------

def test_pcm16_clips_and_rounds_half_to_even():
    samples = np.array([0.0, 0.5 / 32767, 1.5 / 32767, 2.5 / 32767, -0.5 / 32767, 1.0, 1.01, -1.5,
                        np.nan, 0.25], dtype=np.float64)
    expected = [0, 0, 2, 2, 0, 32767, 32767, -32767, 0, round(0.25 * 32767)]
    assert pcm16(samples).tolist() == expected
    assert pcm16(samples).dtype == np.dtype("<i2")


def test_pcm_is_raw_s16le_of_the_samples():
    signal = _noise(0.5)
    encoder = open_encoder("pcm", RATE)
    assert encoder.media_type == "audio/pcm"
    data = encoder.encode(signal) + encoder.finish()
    assert data == pcm16(signal).tobytes()
    assert data[:2] == struct.pack("<h", 0) and len(data) == 2 * len(signal)


def test_wav_header_says_the_length_is_unknown():
    header = wav_stream_header(RATE)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", header[4:8])[0] == 0xFFFFFFFF
    assert header[36:40] == b"data" and struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF
    fmt = struct.unpack("<IHHIIHH", header[16:36])
    assert fmt == (16, 1, 1, RATE, 2 * RATE, 2, 16)


def test_wav_stream_reads_back_with_wave_and_soundfile(tmp_path):
    signal = _noise(1.5)
    data, parts = _stream("wav", _uneven_chunks(signal))
    assert parts[0].startswith(wav_stream_header(RATE)) and data.count(b"RIFF") == 1
    path = tmp_path / "stream.wav"
    path.write_bytes(data)
    expected = pcm16(signal)

    with wave.open(str(path)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, RATE)
        assert reader.getnframes() == 0xFFFFFFFF // 2   # the header's size, not the real one
        frames = reader.readframes(10 ** 9)              # stops at the end of the file
    assert np.array_equal(np.frombuffer(frames, dtype="<i2"), expected)

    soundfile = pytest.importorskip("soundfile")
    assert soundfile.info(str(path)).frames == len(signal)  # libsndfile trusts the file length
    assert np.array_equal(soundfile.read(str(path), dtype="int16")[0], expected)


def test_an_empty_wav_stream_is_a_header():
    encoder = open_encoder("wav", RATE)
    assert encoder.finish() == wav_stream_header(RATE)


# --- every format: streaming properties --------------------------------------------------

@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_stream_decodes_to_the_samples_however_it_is_chunked(name, tmp_path):
    _needs(name)
    signal = _noise(3.0)
    whole, _ = _stream(name, [signal])
    pieces, parts = _stream(name, _uneven_chunks(signal))
    expected = pcm16(signal)
    assert np.array_equal(_decode(name, whole, tmp_path), expected)
    assert np.array_equal(_decode(name, pieces, tmp_path), expected)
    assert sum(1 for part in parts if part) > 10, "the bytes must leave as the chunks arrive"


@pytest.mark.parametrize("name", ["pcm", "wav"])
def test_pcm_and_wav_bytes_do_not_depend_on_the_chunking(name):
    signal = _noise(1.0)
    assert _stream(name, [signal])[0] == _stream(name, _uneven_chunks(signal))[0]


@pytest.mark.parametrize("name", ENCODED)
def test_the_first_encode_of_a_long_stream_already_gives_bytes(name):
    _needs(name)
    signal = _speechlike(10.0)
    encoder = open_encoder(name, RATE)
    first = encoder.encode(signal[: RATE // 2])
    assert len(first) > 100
    rest = encoder.encode(signal[RATE // 2:]) + encoder.finish()
    assert len(rest) > len(first)


@pytest.mark.parametrize(("name", "held_back"), [("pcm", 0), ("wav", 0), ("flac", 4096)])
def test_what_a_lossless_stream_holds_back(name, held_back, tmp_path):
    """After each chunk the bytes sent decode to all but at most ``held_back`` of its samples."""
    _needs(name)
    signal = _noise(4.0)
    encoder = open_encoder(name, RATE)
    sent = b""
    fed = 0
    for chunk in np.split(signal, [RATE // 2, RATE, 2 * RATE + 123]):
        sent += encoder.encode(chunk)
        fed += len(chunk)
        decoded = _decode(name, sent, tmp_path)
        assert fed - held_back <= len(decoded) <= fed
        assert np.array_equal(decoded, pcm16(signal)[: len(decoded)])
    sent += encoder.finish()
    assert np.array_equal(_decode(name, sent, tmp_path), pcm16(signal))


def test_a_streamed_flac_header_says_the_length_is_unknown(tmp_path):
    _needs("flac")
    data, parts = _stream("flac", [_noise(1.0)] * 3)
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    streaminfo = data[8:8 + 34]
    total_samples = int.from_bytes(streaminfo[13:18], "big") & ((1 << 36) - 1)
    assert total_samples == 0 and streaminfo[18:34] == bytes(16)  # unknown length, MD5 unset
    assert len(_decode("flac", data, tmp_path)) == 3 * RATE


def test_opus_round_trip_is_close_and_as_long(tmp_path):
    _needs("opus")
    signal = _speechlike(3.0)
    for chunks in ([signal], _uneven_chunks(signal)):
        data, parts = _stream("opus", chunks)
        assert data[:4] == b"OggS" and b"OpusHead" in data[:64]
        decoded = _decode("opus", data, tmp_path, dtype="float32")
        assert abs(len(decoded) - len(signal)) <= 480  # one 20 ms Opus frame at 24 kHz
        lag, corr = _best_lag(decoded, signal, max_lag=480)
        assert corr > 0.95, (lag, corr)
        n = min(len(decoded) - lag, len(signal))
        rms_error = float(np.sqrt(np.mean((decoded[lag:lag + n] - signal[:n]) ** 2)))
        assert rms_error < 0.3 * float(np.sqrt(np.mean(signal ** 2)))


def test_opus_sends_pages_as_the_audio_comes(tmp_path):
    """Pages every 100 ms: after 2 s of audio in 0.25 s chunks, the bytes sent decode to
    most of it."""
    _needs("opus")
    signal = _speechlike(2.0)
    encoder = open_encoder("opus", RATE)
    sent = [encoder.encode(chunk) for chunk in np.split(signal, 8)]
    assert all(sent), [len(part) for part in sent]
    decoded = _decode("opus", b"".join(sent), tmp_path, dtype="float32")
    assert len(decoded) >= len(signal) - int(0.15 * RATE)
    encoder.close()


def test_mp3_round_trip_is_close_after_the_encoder_delay(tmp_path):
    _needs("mp3")
    signal = _speechlike(3.0)
    for chunks in ([signal], _uneven_chunks(signal)):
        data, _ = _stream("mp3", chunks)
        # The first frame header: sync, MPEG-2 Layer III, 64 kbit/s, 24 kHz, mono.
        header = int.from_bytes(data[:4], "big")
        assert header >> 21 == 0x7FF and (header >> 19) & 3 == 0b10 and (header >> 17) & 3 == 0b01
        assert (header >> 12) & 0xF == 8 and (header >> 10) & 3 == 1 and (header >> 6) & 3 == 3
        decoded = _decode("mp3", data, tmp_path, dtype="float32")
        assert len(signal) <= len(decoded) <= len(signal) + 1105 + 3 * 576
        lag, corr = _best_lag(decoded, signal, max_lag=3000)
        assert 576 <= lag <= 1105 + 576 and corr > 0.95, (lag, corr)


@pytest.mark.parametrize("name", ENCODED)
def test_an_empty_stream_is_a_wav_header_or_nothing(name):
    _needs(name)
    encoder = open_encoder(name, RATE)
    data = encoder.encode(np.zeros(0, dtype=np.float32)) + encoder.finish()
    assert data == (wav_stream_header(RATE) if name == "wav" else b"")
    assert encoder.samples_in == 0


# --- misuse ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ENCODED)
def test_encode_after_finish_and_close_are_refused(name):
    _needs(name)
    encoder = open_encoder(name, RATE)
    encoder.encode(_speechlike(0.1))
    encoder.finish()
    with pytest.raises(ValueError, match="already finished"):
        encoder.encode(_speechlike(0.1))
    with pytest.raises(ValueError, match="already finished"):
        encoder.finish()
    encoder.close()  # harmless after finish
    abandoned = open_encoder(name, RATE)
    abandoned.encode(_speechlike(0.1))
    abandoned.close()
    assert abandoned.finished
    with pytest.raises(ValueError, match="already finished"):
        abandoned.encode(_speechlike(0.1))


def test_samples_must_be_mono():
    encoder = open_encoder("pcm", RATE)
    assert encoder.encode(np.full((3, 1), 0.5)) == pcm16([0.5, 0.5, 0.5]).tobytes()
    assert encoder.encode([[0.5, -0.5]]) == pcm16([0.5, -0.5]).tobytes()
    with pytest.raises(ValueError, match=r"mono samples.*shape \(2, 3\)"):
        encoder.encode(np.zeros((2, 3)))


def test_the_server_package_imports_no_codec_at_import_time():
    import subprocess

    code = ("import sys, seqopt_core.server.audio_formats\n"
            "print(sorted(m for m in ('lameenc', 'soundfile', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_drained_buffer_keeps_only_unsent_bytes_and_drops_late_rewrites():
    buffer = af._DrainedBuffer()
    buffer.write(b"header--")
    buffer.write(b"data")
    assert buffer.drain() == b"header--data" and buffer.tell() == 12
    buffer.write(b"more")
    buffer.seek(2)
    buffer.write(b"HE")               # falls on sent bytes: dropped
    buffer.seek(0, io.SEEK_END)
    assert buffer.tell() == 16
    buffer.seek(13)
    buffer.write(b"OR")               # falls on held bytes: applied
    assert buffer.drain() == b"mORe" and buffer.lost_rewrites == 1
    buffer.seek(10)
    buffer.write(b"xxxxxxYY")         # straddles: the unsent tail lands
    assert buffer.drain() == b"YY" and buffer.lost_rewrites == 2
