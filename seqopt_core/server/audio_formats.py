"""Streaming audio encoders for ``seqopt serve``: float samples in, bytes of the format
the client asked for out, while the audio is still being generated.

The server hands each stream's float32 mono chunks (values in [-1, 1]) to a
:class:`StreamEncoder` from :func:`open_encoder` and sends whatever
:meth:`StreamEncoder.encode` returns at once; :meth:`StreamEncoder.finish` gives the
last bytes. The formats are OpenAI's ``response_format`` values:

``pcm``
    Raw signed 16-bit little-endian mono samples at the stream's rate (OpenAI's pcm is
    24 kHz s16le); floats are clipped to [-1, 1], scaled by 32767 and rounded to the
    nearest integer, ties to even (:func:`pcm16`). Nothing is held back.
``wav``
    A 44-byte RIFF/WAVE PCM16 header whose RIFF and data sizes are both 0xFFFFFFFF
    (the length is unknown while streaming), then the same samples as ``pcm``. Nothing
    is held back. libsndfile (soundfile) reads such a file whole: it takes the data
    size from the file's length. Python's :mod:`wave` reads it too, but
    ``getnframes()`` reports the header's impossible size (0xFFFFFFFF // 2 frames);
    ``readframes(n)`` stops at the end of the file, so read with a large ``n``.
``mp3``
    MPEG-2 Layer III at 64 kbit/s (for 24 kHz) by ``lameenc`` (LAME), an incremental
    encoder. LAME holds back about a frame (576 samples) plus its look-ahead; the
    decoded audio starts with LAME's encoder delay (576 + 529 samples of near-silence
    at 24 kHz) because a stream has no LAME header to say so.
``flac``
    FLAC, 16-bit, written by libsndfile (soundfile) into a buffer drained after every
    call. Holds back up to one FLAC block (4096 samples, 0.17 s at 24 kHz) until the
    next call. libFLAC rewrites its STREAMINFO header when it closes; those bytes are
    long sent, so the stream keeps the header's first values, which FLAC defines as
    "unknown": total samples 0, frame sizes 0, MD5 unset (what any FLAC written to a
    pipe looks like). ffmpeg and libFLAC decode it; python-soundfile 0.14's
    ``read()`` refuses it (it takes the unknown length for a huge one), while
    libsndfile itself reads every sample.
``opus``
    Ogg Opus by libsndfile (1.2 or later, built with Opus; the soundfile wheels are),
    at 8, 12, 16, 24 or 48 kHz. Ogg pages are flushed every 100 ms of audio
    (libsndfile's ``SFC_SET_OGG_PAGE_LATENCY_MS``; its default is about a second), so
    it holds back at most that, plus Opus's 20 ms frame.
``aac``
    Not available: no encoder for it is among seqopt's dependencies.

Which of them work here is probed once, by encoding a short test signal with each
(:func:`audio_formats`); a format whose library is missing or whose build lacks it is
listed with ``available=False``, the reason, and the ``pip install`` line that brings
it. numpy is the only import at module level.
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass

import numpy as np

#: OpenAI's ``response_format`` values, in the order its documentation lists them.
FORMAT_NAMES = ("mp3", "opus", "aac", "flac", "wav", "pcm")

#: The largest 16-bit sample; floats in [-1, 1] are scaled by this.
PCM16_SCALE = 32767.0

_UNKNOWN_SIZE = 0xFFFFFFFF
#: Sample rates libsndfile's Ogg Opus writer takes.
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
#: Milliseconds of audio per Ogg page (how much the Opus encoder may hold back).
OPUS_PAGE_LATENCY_MS = 100.0
#: libsndfile's command number for SFC_SET_OGG_PAGE_LATENCY_MS (sndfile.h, 1.2.0 on).
_SFC_SET_OGG_PAGE_LATENCY_MS = 0x1302
#: The bit rate of the mp3 stream, kbit/s.
MP3_BIT_RATE = 64
#: The rate the formats are probed at: the model's.
PROBE_SAMPLE_RATE = 24000


_WORKING_PHRASE = "formats that work here"


class UnsupportedFormat(ValueError):
    """A ``response_format`` that is unknown or cannot be encoded here.

    Its message names the format, why it cannot be used and the formats that work;
    the server answers it with a 400.
    """

    def __init__(self, name: str, reason: str, working: tuple[str, ...]) -> None:
        self.format = name
        self.reason = reason
        self.working = working
        listed = ", ".join(working) if working else "none"
        message = f"response_format {name!r} cannot be used: {reason}"
        if _WORKING_PHRASE not in reason:
            message += f". {_WORKING_PHRASE.capitalize()}: {listed}"
        super().__init__(message)


@dataclass(frozen=True)
class AudioFormat:
    """One ``response_format``: what it is sent as, what it needs, whether it works here."""

    #: OpenAI's name for it (``mp3``, ``wav``, ...).
    name: str
    #: The ``Content-Type`` of a response in this format.
    media_type: str
    #: The usual file name ending, with its dot.
    file_suffix: str
    #: The ``pip install`` line that brings its encoder (``None``: numpy does it, or nothing can).
    requires: str | None
    #: Whether :func:`open_encoder` can encode it here (probed, see :func:`audio_formats`).
    available: bool
    #: Why it is not available (``None`` when it is).
    reason: str | None


_MEDIA = {
    "mp3": ("audio/mpeg", ".mp3", "pip install lameenc"),
    "opus": ("audio/ogg", ".opus", "pip install soundfile"),
    "aac": ("audio/aac", ".aac", None),
    "flac": ("audio/flac", ".flac", "pip install soundfile"),
    "wav": ("audio/wav", ".wav", None),
    "pcm": ("audio/pcm", ".pcm", None),
}


def _mono(samples: object) -> np.ndarray:
    """``samples`` as a 1-D float32 array (a ``(n, 1)`` or ``(1, n)`` array is flattened)."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ValueError(f"expected mono samples (a 1-D array), got an array of shape {array.shape}")
    return array


def pcm16(samples: object) -> np.ndarray:
    """Float samples as little-endian int16: clipped to [-1, 1], scaled by 32767, rounded to
    the nearest integer (ties to even). NaN becomes 0.

    >>> pcm16([0.0, 0.5, 1.0, -1.0, 2.0, -7.0, 1e-5]).tolist()
    [0, 16384, 32767, -32767, 32767, -32767, 0]
    """
    array = np.nan_to_num(_mono(samples), nan=0.0)
    return np.rint(np.clip(array, -1.0, 1.0) * PCM16_SCALE).astype("<i2")


def wav_stream_header(sample_rate: int) -> bytes:
    """The 44-byte header of a PCM16 mono WAV of unknown length: RIFF and data sizes 0xFFFFFFFF."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", _UNKNOWN_SIZE) + b"WAVE" + b"fmt " + fmt
            + b"data" + struct.pack("<I", _UNKNOWN_SIZE))


class StreamEncoder:
    """Encodes one stream: :meth:`encode` each chunk and send what it returns (it may be
    ``b""`` while the codec fills a frame), then :meth:`finish` once. Not thread-safe:
    one stream, one encoder. :meth:`close` abandons it (a client that went away)."""

    def __init__(self, audio_format: AudioFormat, sample_rate: int) -> None:
        self.format = audio_format
        self.sample_rate = sample_rate
        #: Whether :meth:`finish` or :meth:`close` was called.
        self.finished = False
        #: Samples encoded so far.
        self.samples_in = 0

    @property
    def media_type(self) -> str:
        return self.format.media_type

    def encode(self, samples: object) -> bytes:
        """Bytes to send now for these float samples (mono, in [-1, 1])."""
        if self.finished:
            raise ValueError(f"this {self.format.name} stream is already finished")
        samples = _mono(samples)
        data = self._encode(samples)
        self.samples_in += samples.size
        return data

    def finish(self) -> bytes:
        """The stream's last bytes; after it, the concatenated output is a whole file.
        A stream without samples is a WAV header for ``wav`` and no bytes for the others."""
        if self.finished:
            raise ValueError(f"this {self.format.name} stream is already finished")
        self.finished = True
        return self._finish()

    def close(self) -> None:
        """Abandon the stream without its ending (frees the codec); harmless after finish."""
        if not self.finished:
            self.finished = True
            self._abandon()

    def _encode(self, samples: np.ndarray) -> bytes:
        raise NotImplementedError

    def _finish(self) -> bytes:
        raise NotImplementedError

    def _abandon(self) -> None:
        pass


class _PcmEncoder(StreamEncoder):
    def _encode(self, samples: np.ndarray) -> bytes:
        return pcm16(samples).tobytes()

    def _finish(self) -> bytes:
        return b""


class _WavEncoder(StreamEncoder):
    def __init__(self, audio_format: AudioFormat, sample_rate: int) -> None:
        super().__init__(audio_format, sample_rate)
        self._header: bytes | None = wav_stream_header(sample_rate)

    def _take_header(self) -> bytes:
        header, self._header = self._header or b"", None
        return header

    def _encode(self, samples: np.ndarray) -> bytes:
        return self._take_header() + pcm16(samples).tobytes()

    def _finish(self) -> bytes:
        return self._take_header()


class _Mp3Encoder(StreamEncoder):
    def __init__(self, audio_format: AudioFormat, sample_rate: int) -> None:
        import lameenc

        super().__init__(audio_format, sample_rate)
        self._lame = lameenc.Encoder()
        self._lame.set_channels(1)
        self._lame.set_in_sample_rate(sample_rate)
        self._lame.set_out_sample_rate(sample_rate)
        self._lame.set_bit_rate(MP3_BIT_RATE)
        self._lame.set_quality(2)

    def _encode(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        return bytes(self._lame.encode(pcm16(samples).tobytes()))

    def _finish(self) -> bytes:
        if not self.samples_in:
            return b""  # LAME refuses to flush what it never started
        return bytes(self._lame.flush())


class _DrainedBuffer:
    """A file object libsndfile writes into and :meth:`drain` empties.

    It keeps only the bytes not yet drained. libsndfile may seek back and rewrite a
    header when it closes; a rewrite of bytes already drained (sent) is dropped and
    counted in :attr:`lost_rewrites`, one of bytes still held is applied.
    """

    def __init__(self) -> None:
        self._sent = 0            # bytes drained so far: the offset of _held[0]
        self._held = bytearray()
        self._position = 0
        #: Writes that fell (partly) on bytes already drained.
        self.lost_rewrites = 0

    def write(self, data: bytes) -> int:
        data = bytes(data)
        written = len(data)
        start = self._position
        self._position += written
        if start < self._sent:  # a rewrite of bytes already sent: keep only what is still held
            self.lost_rewrites += 1
            data = data[self._sent - start:]
            start = self._sent
        if data:
            offset = start - self._sent
            if offset > len(self._held):  # a seek past the end leaves a gap of zeros
                self._held.extend(bytes(offset - len(self._held)))
            self._held[offset:offset + len(data)] = data
        return written

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        end = self._sent + len(self._held)
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: end}[whence]
        if base + offset < 0:
            raise OSError(f"cannot seek to {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        return b""  # libsndfile does not read back what it writes; nothing is kept to read

    def drain(self) -> bytes:
        out = bytes(self._held)
        self._sent += len(out)
        self._held.clear()
        return out


class _LibsndfileEncoder(StreamEncoder):
    """FLAC or Ogg Opus by libsndfile, written into a :class:`_DrainedBuffer`."""

    def __init__(self, audio_format: AudioFormat, sample_rate: int, *, major: str, subtype: str) -> None:
        import soundfile

        super().__init__(audio_format, sample_rate)
        self._integer = subtype.startswith("PCM")
        self._buffer = _DrainedBuffer()
        self._file = soundfile.SoundFile(self._buffer, mode="w", samplerate=sample_rate, channels=1,
                                         format=major, subtype=subtype)
        if major == "OGG":
            self._set_page_latency(OPUS_PAGE_LATENCY_MS)

    def _set_page_latency(self, milliseconds: float) -> None:
        """Ogg pages every ``milliseconds`` of audio. soundfile has no call for it, so this
        goes through its libsndfile handle; if that changes, libsndfile's default stays
        (pages about every second: a later first byte, the same audio)."""
        try:
            from soundfile import _ffi, _snd

            value = _ffi.new("double[1]", [milliseconds])
            _snd.sf_command(self._file._file, _SFC_SET_OGG_PAGE_LATENCY_MS, value, _ffi.sizeof(value))
        except (ImportError, AttributeError, TypeError):
            pass

    def _encode(self, samples: np.ndarray) -> bytes:
        if samples.size:
            if self._integer:
                self._file.write(pcm16(samples))
            else:
                self._file.write(np.clip(np.nan_to_num(samples, nan=0.0), -1.0, 1.0))
        return self._buffer.drain()

    def _finish(self) -> bytes:
        self._file.close()
        ending = self._buffer.drain()
        # Without samples libsndfile writes no FLAC at all and Ogg headers it cannot read back.
        return ending if self.samples_in else b""

    def _abandon(self) -> None:
        self._file.close()


def _encoder_for(audio_format: AudioFormat, sample_rate: int) -> StreamEncoder:
    name = audio_format.name
    if name == "pcm":
        return _PcmEncoder(audio_format, sample_rate)
    if name == "wav":
        return _WavEncoder(audio_format, sample_rate)
    if name == "mp3":
        return _Mp3Encoder(audio_format, sample_rate)
    if name == "flac":
        return _LibsndfileEncoder(audio_format, sample_rate, major="FLAC", subtype="PCM_16")
    if name == "opus":
        return _LibsndfileEncoder(audio_format, sample_rate, major="OGG", subtype="OPUS")
    raise ValueError(f"no encoder for {name!r}")  # audio_formats() never marks one available


def _library_reason(name: str) -> str | None:
    """Why ``name``'s library cannot encode it here, from what is installed (``None``: try it)."""
    if name == "mp3":
        try:
            import lameenc  # noqa: F401
        except ImportError:
            return "the lameenc package is not installed (pip install lameenc)"
        return None
    if name in ("flac", "opus"):
        try:
            import soundfile
        except ImportError:
            return "the soundfile package is not installed (pip install soundfile)"
        except OSError as exc:  # soundfile is there but libsndfile is not
            return f"soundfile cannot load libsndfile ({exc}); pip install --force-reinstall soundfile"
        version = getattr(soundfile, "__libsndfile_version__", "?")
        if name == "flac" and ("FLAC" not in soundfile.available_formats()
                               or "PCM_16" not in soundfile.available_subtypes("FLAC")):
            return f"this libsndfile ({version}) was built without FLAC"
        if name == "opus" and ("OGG" not in soundfile.available_formats()
                               or "OPUS" not in soundfile.available_subtypes("OGG")):
            return (f"this libsndfile ({version}) was built without Ogg Opus; "
                    "the soundfile wheels bring one with it (pip install --upgrade soundfile)")
        return None
    return None


def _probe(name: str) -> str | None:
    """Why ``name`` cannot be encoded here (``None``: a test signal encoded)."""
    reason = _library_reason(name)
    if reason is not None:
        return reason
    media_type, suffix, requires = _MEDIA[name]
    trial = AudioFormat(name, media_type, suffix, requires, True, None)
    tone = 0.1 * np.sin(np.arange(PROBE_SAMPLE_RATE // 10, dtype=np.float32) * 0.1)
    try:
        encoder = _encoder_for(trial, PROBE_SAMPLE_RATE)
        data = encoder.encode(tone) + encoder.finish()
    except Exception as exc:  # noqa: BLE001 - any failure means the format does not work here
        return f"a test encode failed ({type(exc).__name__}: {exc})"
    if not data:
        return "a test encode gave no bytes"
    return None


@functools.lru_cache(maxsize=1)
def _probed() -> tuple[AudioFormat, ...]:
    reasons = {name: _probe(name) for name in FORMAT_NAMES if name != "aac"}
    working = ", ".join(name for name, reason in reasons.items() if reason is None)
    reasons["aac"] = (f"seqopt has no AAC encoder (none of its dependencies provides one); "
                      f"the {_WORKING_PHRASE} are {working}")
    return tuple(AudioFormat(name, *_MEDIA[name], reasons[name] is None, reasons[name])
                 for name in FORMAT_NAMES)


def audio_formats() -> dict[str, AudioFormat]:
    """Every ``response_format`` by name, with whether it works here. Probed on the first
    call (each format's library imported and a short test signal encoded at 24 kHz),
    then remembered for the process."""
    return {audio_format.name: audio_format for audio_format in _probed()}


def _working() -> tuple[str, ...]:
    return tuple(audio_format.name for audio_format in _probed() if audio_format.available)


def available_format_names() -> tuple[str, ...]:
    """The names of the formats that work here, in :data:`FORMAT_NAMES` order."""
    return _working()


def open_encoder(name: str, sample_rate: int) -> StreamEncoder:
    """A :class:`StreamEncoder` for ``name`` at ``sample_rate`` Hz (mono).

    Raises :class:`UnsupportedFormat` (a ``ValueError``) for a name that is not one of
    :data:`FORMAT_NAMES` or a format that does not work here.
    """
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, not {sample_rate!r}")
    formats = audio_formats()
    audio_format = formats.get(name) if isinstance(name, str) else None
    if audio_format is None:
        raise UnsupportedFormat(str(name), f"it is not one of {', '.join(FORMAT_NAMES)}", _working())
    if not audio_format.available:
        raise UnsupportedFormat(name, audio_format.reason or "it does not work here", _working())
    if name == "opus" and sample_rate not in OPUS_SAMPLE_RATES:
        rates = ", ".join(f"{rate // 1000}" for rate in OPUS_SAMPLE_RATES)
        raise UnsupportedFormat(name, f"Ogg Opus takes {rates} kHz, not {sample_rate} Hz", _working())
    return _encoder_for(audio_format, sample_rate)


__all__ = ["FORMAT_NAMES", "AudioFormat", "StreamEncoder", "UnsupportedFormat", "audio_formats",
           "available_format_names", "open_encoder", "pcm16", "wav_stream_header"]
