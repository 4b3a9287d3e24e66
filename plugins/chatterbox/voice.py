"""The reference WAV given as the voice: checked before the model loads, with clear errors.

:func:`check_voice_file` says exactly what is wrong with a file (missing, a
folder, empty, a WAV cut short, not audio, too short) as a :class:`VoiceError`,
and warns (:class:`VoiceWarning`) when the voice is usable but short. The engine
and ``seqopt speak`` (through the engine record's ``preflight``) call it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqopt_core import SeqoptError

#: Voices shorter than this get a :class:`VoiceWarning`: upstream's
#: ``ChatterboxTTS.ENC_COND_LEN`` (6 s), the most of the voice T3's speech
#: prompt is made from; S3Gen's reference takes up to ``DEC_COND_LEN`` (10 s).
MIN_VOICE_SECONDS = 6.0
#: How long a voice S3Gen's reference takes at most (upstream's ``DEC_COND_LEN``).
FULL_VOICE_SECONDS = 10.0
#: Shorter voices are refused: one speech token (25 per second). Upstream's own
#: preparation fails below about 0.03 s (S3Gen's mel padding is longer than the audio).
MIN_USABLE_VOICE_SECONDS = 0.04


class VoiceError(SeqoptError):
    """The reference WAV given as the voice (``--voice``, ``engine.options.voice``) cannot be used."""


class VoiceWarning(UserWarning):
    """The voice can be used, but probably not well (too short to match the speaker)."""


# -- the voice file ----------------------------------------------------------------------

#: Audio formats libsndfile (soundfile, what librosa reads with first) knows, for messages.
_KNOWN_FORMATS = "FLAC, OGG/Vorbis, MP3, AIFF"
#: RIFF and ``data`` sizes from this up mean "unknown length": streaming writers that
#: cannot seek put (nearly) 0xFFFFFFFF there (``seqopt speak -o -``: 0xFFFFFFFF and
#: 0xFFFFFFDB), others 0x7FFFF000 and the like; 0 means the same.
_STREAMED_WAV_SIZE = 0x7FFFF000
_TEXT_BYTES = b"\t\n\r\x0c" + bytes(range(0x20, 0x7f))


@dataclass(frozen=True)
class VoiceFile:
    """A reference WAV that passed :func:`check_voice_file`."""

    path: Path
    seconds: float
    sample_rate: int
    channels: int
    format: str  # soundfile's format and subtype, "WAV PCM_16"; "" when only librosa read it

    def describe(self) -> str:
        kind = f"{self.format}, " if self.format else ""
        return f"{kind}{self.seconds:.2f} s at {self.sample_rate} Hz, {self.channels} channel(s)"


def check_voice_file(wav_path: str | Path) -> VoiceFile:
    """What ``wav_path`` holds, or a :class:`VoiceError` saying exactly what is wrong
    with it: missing, a folder, not a regular or readable file, empty, a WAV cut
    short (its header promises more audio than the file holds), not an audio
    format this install reads, or no audio at all. A voice shorter than
    :data:`MIN_VOICE_SECONDS` is usable but gets a :class:`VoiceWarning`
    (``warnings.warn``; the CLI shows it as a note)."""
    path = Path(wav_path).expanduser()
    shown = str(wav_path)
    hint = f"give a WAV file of the speaker ({MIN_VOICE_SECONDS:.0f}-{FULL_VOICE_SECONDS:.0f} s of clear speech)"
    if not path.exists():
        where = path.parent if str(path.parent) not in ("", ".") else Path.cwd()
        extra = "" if where.is_dir() else f" (not even its folder {str(where)!r} exists)"
        raise VoiceError(f"voice file {shown!r} does not exist{extra}; {hint}")
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir()
                        if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"))
        listed = (f"; it holds {len(inside)} audio file(s), e.g. {inside[0]!r}: give one of them"
                  if inside else "")
        raise VoiceError(f"voice {shown!r} is a folder, not an audio file{listed}; {hint}")
    if not path.is_file():
        raise VoiceError(f"voice {shown!r} is not a regular file (a device, pipe or socket?); {hint}")
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        size = path.stat().st_size
    except OSError as exc:
        raise VoiceError(f"cannot read voice file {shown!r}: {exc.strerror or exc}") from None
    if size == 0:
        raise VoiceError(f"voice file {shown!r} is empty (0 bytes); {hint}")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        problem = _wav_truncation(path, size)
        if problem:
            raise VoiceError(f"voice file {shown!r} is a truncated WAV: {problem}; copy or export it again")
    info = _read_audio_info(path, shown, head)
    if info.seconds <= 0:
        after = _bytes_after_empty_data_chunk(path, size) if head[:4] == b"RIFF" else 0
        note = (f"; its header says 0 bytes of audio although {after:,} bytes follow it (a WAV "
                "whose writer never filled in its size?): save it again" if after else f"; {hint}")
        raise VoiceError(f"voice file {shown!r} holds no audio ({info.describe()}){note}")
    if info.seconds < MIN_USABLE_VOICE_SECONDS:
        raise VoiceError(f"voice file {shown!r} is too short to use ({info.describe()}; at least "
                         f"{MIN_USABLE_VOICE_SECONDS} s, one speech token); {hint}")
    if info.seconds < MIN_VOICE_SECONDS:
        warnings.warn(
            f"voice file {shown!r} is only {info.seconds:.2f} s long: Chatterbox builds T3's speech "
            f"prompt from up to {MIN_VOICE_SECONDS:.0f} s of the voice and S3Gen's reference from up "
            f"to {FULL_VOICE_SECONDS:.0f} s, so a voice this short matches the speaker poorly; "
            f"{MIN_VOICE_SECONDS:.0f}-{FULL_VOICE_SECONDS:.0f} s of clear speech is best",
            VoiceWarning, stacklevel=2)
    return info


def _read_audio_info(path: Path, shown: str, head: bytes) -> VoiceFile:
    """Duration and format through soundfile (libsndfile); for formats only librosa's
    fallback (audioread, e.g. ffmpeg) reads, by decoding the file."""
    import soundfile

    try:
        info = soundfile.info(str(path))
        return VoiceFile(path, float(info.frames) / info.samplerate if info.samplerate else 0.0,
                         int(info.samplerate), int(info.channels), f"{info.format} {info.subtype}")
    except Exception as exc:  # noqa: BLE001 - soundfile.LibsndfileError, RuntimeError, ...
        reason = str(exc).replace(f"Error opening '{path}': ", "").replace(str(path), "it")
    try:  # what librosa.load does next: audioread, which may have an ffmpeg backend
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's "PySoundFile failed" FutureWarning
            audio, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception:  # noqa: BLE001 - audioread.NoBackendError, EOFError, ...
        raise VoiceError(f"voice file {shown!r} {_not_audio(head)} (libsndfile: {reason}); give a "
                         f"WAV (or {_KNOWN_FORMATS}) file of the speaker") from None
    frames = audio.shape[-1] if audio.ndim else 0
    return VoiceFile(path, frames / rate if rate else 0.0, int(rate),
                     1 if audio.ndim < 2 else int(audio.shape[0]), "")


def _not_audio(head: bytes) -> str:
    """What a file that no audio reader accepted looks like, from its first bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        tag = _wav_format_tag(head)
        return ("is a WAV file in an encoding this install cannot decode"
                + (f" (format tag {tag:#06x})" if tag is not None else ""))
    if head[:4] == b"RIFF":
        return f"is a RIFF file of type {head[8:12].decode('latin-1')!r}, not a WAV"
    if not head.translate(None, _TEXT_BYTES):
        return "is a text file, not audio"
    return f"is not a WAV file or another audio format this install reads (it starts with {head[:8]!r})"


def _wav_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(id, declared size, offset of its body)`` of each RIFF chunk whose header is in ``data``."""
    offset = 12
    while offset + 8 <= len(data):
        ident, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        yield ident, size, offset + 8
        if ident == b"data":
            return
        offset += 8 + size + (size & 1)


def _wav_format_tag(head: bytes) -> int | None:
    for ident, _size, body in _wav_chunks(head):
        if ident == b"fmt " and body + 2 <= len(head):
            return int.from_bytes(head[body:body + 2], "little")
    return None


def _wav_truncation(path: Path, size: int) -> str:
    """Why the RIFF/WAVE file at ``path`` (``size`` bytes) is cut short, or ``""``.

    Its ``data`` chunk must start inside the file and hold the bytes its header
    declares; sizes of 0 or near 0xFFFFFFFF (a WAV streamed by a writer that could
    not seek back, e.g. saved from ``seqopt speak -o -``) mean "until the end" and
    are accepted.
    """
    with path.open("rb") as handle:
        data = handle.read(min(size, 1 << 20))  # headers end well before 1 MiB
    riff_size = int.from_bytes(data[4:8], "little")
    for ident, declared, body in _wav_chunks(data):
        if ident != b"data":
            continue
        if any(v == 0 or v >= _STREAMED_WAV_SIZE for v in (riff_size, declared)):
            return ""  # unknown length; a 0-byte ``data`` is reported when nothing is read
        present = size - body
        if present < declared:
            rate = _wav_byte_rate(data)
            seconds = f" ({present / rate:.2f} s of {declared / rate:.2f} s)" if rate else ""
            return (f"its header promises {declared:,} bytes of audio but the file holds only "
                    f"{max(present, 0):,}{seconds}")
        return ""
    if len(data) < size:  # a header chunk over 1 MiB: leave the verdict to the decoder
        return ""
    return f"it ends after {size:,} bytes, before its audio ('data' chunk) begins"


def _bytes_after_empty_data_chunk(path: Path, size: int) -> int:
    """Bytes after a ``data`` chunk that declares 0 bytes (0 if it declares more, or is absent)."""
    with path.open("rb") as handle:
        data = handle.read(min(size, 1 << 20))
    for ident, declared, body in _wav_chunks(data):
        if ident == b"data":
            return max(size - body, 0) if declared == 0 else 0
    return 0


def _wav_byte_rate(data: bytes) -> int:
    for ident, _size, body in _wav_chunks(data):
        if ident == b"fmt " and body + 12 <= len(data):
            return int.from_bytes(data[body + 8:body + 12], "little")
    return 0
