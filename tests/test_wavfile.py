"""WavFileWriter: streamed, atomic, valid at any stop, RF64 past 4 GiB."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest
import soundfile

from seqopt_core.wavfile import HEADER_BYTES, OutputError, WavFileWriter, WavStreamWriter, file_header


def pcm(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(-30000, 30000, n, dtype="<i2").tobytes()


def test_samples_reach_the_target_only_when_finished(tmp_path):
    target = tmp_path / "out.wav"
    target.write_bytes(b"old")
    writer = WavFileWriter(target, 24000)
    writer.write(pcm(1000))
    writer.write(pcm(500, seed=1))
    assert target.read_bytes() == b"old"  # still the previous file
    writer.finish()
    with wave.open(str(target)) as w:
        assert w.getnframes() == 1500 and w.getframerate() == 24000
        assert w.readframes(1500) == pcm(1000) + pcm(500, seed=1)
    assert list(tmp_path.iterdir()) == [target]


def test_abort_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.wav"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), WavFileWriter(target, 24000) as writer:
        writer.write(pcm(10))
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_an_empty_file_is_a_valid_wav(tmp_path):
    target = WavFileWriter(tmp_path / "e.wav", 24000).finish()
    with wave.open(str(target)) as w:
        assert w.getnframes() == 0


def test_rf64_when_the_data_outgrows_32_bits(tmp_path):
    # The switch point is lowered so that the test writes kilobytes, not 4 GiB.
    target = tmp_path / "long.wav"
    writer = WavFileWriter(target, 24000, rf64_above=3000)
    writer.write(pcm(2000))
    writer.finish()
    head = target.read_bytes()[:HEADER_BYTES]
    assert head[:4] == b"RF64" and head[12:16] == b"ds64"
    riff, data, frames = struct.unpack("<QQQ", head[20:44])
    assert (data, frames) == (4000, 2000) and riff == HEADER_BYTES - 8 + 4000
    samples, rate = soundfile.read(str(target), dtype="int16")
    assert rate == 24000 and samples.tobytes() == pcm(2000)


def test_plain_riff_reserves_room_for_ds64():
    head = file_header(24000, 100)
    assert len(head) == HEADER_BYTES and head[:4] == b"RIFF" and head[12:16] == b"JUNK"
    assert file_header(24000, 2**32)[:4] == b"RF64"  # the real limit, without writing 4 GiB


def test_an_unwritable_folder_fails_at_open(tmp_path):
    with pytest.raises(OutputError, match="cannot write"):
        WavFileWriter(tmp_path / "missing" / "x.wav", 24000)


def test_a_device_is_written_as_a_stream(tmp_path):
    writer = WavFileWriter("/dev/null", 24000)
    writer.write(pcm(100))
    assert writer.finish().as_posix() == "/dev/null"


def test_stream_writer_to_a_descriptor(tmp_path):
    path = tmp_path / "s.wav"
    with open(path, "wb") as f:
        writer = WavStreamWriter(f.fileno(), 24000)
        writer.write(pcm(300))
        writer.finish()
    with wave.open(str(path)) as w:  # the unknown-length header still parses
        assert w.getframerate() == 24000 and w.readframes(300) == pcm(300)
    assert writer.seconds == pytest.approx(300 / 24000)
