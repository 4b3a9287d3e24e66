"""Writing 16-bit mono PCM WAV as audio arrives, so that no audio is ever lost.

:class:`WavFileWriter` streams samples to a temporary file beside the target,
then fixes the header and renames it over the target in one step, so:

* the target is either the previous file, untouched, or a complete, valid WAV;
  never a half-written one (an interrupted or killed run leaves the old file);
* :meth:`WavFileWriter.finish` can be called at any moment (Ctrl-C, SIGTERM)
  and gives a valid WAV of the audio written so far;
* a write that fails (a full disk, a file-size limit) keeps what landed as a
  valid WAV beside the target (``<name>.partial.wav``) and leaves the target alone;
* past 4 GiB of samples (about 24.9 hours at 24 kHz) the file becomes RF64
  (EBU Tech 3306: the 64-bit sizes live in a ``ds64`` chunk that the header
  reserves as ``JUNK`` from the start), which soundfile, ffmpeg and sox read.

A target that is not a regular file (``/dev/null``, a pipe) is written to
directly, as a stream of unknown length, like standard output.

No numpy or torch here: callers hand in bytes.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import SeqoptError

#: Bytes of one sample: 16-bit PCM, one channel.
SAMPLE_BYTES = 2
_RIFF_LIMIT = 0xFFFFFFFF
#: The header: RIFF, a JUNK chunk that an RF64 file turns into ds64, fmt, data.
_JUNK_BODY = 28
HEADER_BYTES = 12 + (8 + _JUNK_BODY) + (8 + 16) + 8  # 80


class OutputError(SeqoptError, OSError):
    """The audio output cannot be written (path, permissions, a full disk)."""


def _fmt_chunk(sample_rate: int) -> bytes:
    return b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * SAMPLE_BYTES,
                                 SAMPLE_BYTES, 8 * SAMPLE_BYTES)


def stream_header(sample_rate: int) -> bytes:
    """A 44-byte WAV header for a stream of unknown length (sizes at their maximum),
    as players of piped WAV expect."""
    data = _RIFF_LIMIT - 36
    return (b"RIFF" + struct.pack("<I", _RIFF_LIMIT) + b"WAVE" + _fmt_chunk(sample_rate)
            + b"data" + struct.pack("<I", data))


def file_header(sample_rate: int, data_bytes: int, *, rf64_above: int = _RIFF_LIMIT) -> bytes:
    """The :data:`HEADER_BYTES`-byte header of a file holding ``data_bytes`` of samples:
    plain RIFF while every size fits 32 bits (and ``data_bytes`` is at most
    ``rf64_above``), RF64 beyond."""
    riff_size = HEADER_BYTES - 8 + data_bytes
    fmt = _fmt_chunk(sample_rate)
    if data_bytes <= rf64_above and riff_size <= _RIFF_LIMIT:
        junk = b"JUNK" + struct.pack("<I", _JUNK_BODY) + bytes(_JUNK_BODY)
        return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + junk + fmt
                + b"data" + struct.pack("<I", data_bytes))
    frames = data_bytes // SAMPLE_BYTES
    ds64 = b"ds64" + struct.pack("<IQQQI", _JUNK_BODY, riff_size, data_bytes, frames, 0)
    return (b"RF64" + struct.pack("<I", _RIFF_LIMIT) + b"WAVE" + ds64 + fmt
            + b"data" + struct.pack("<I", _RIFF_LIMIT))


def _write_fully(fd: int, data: bytes) -> tuple[int, OSError | None]:
    """Write all of ``data`` to ``fd`` (``os.write`` may take part of it); the bytes that
    landed, and the error that stopped it early, if any."""
    view = memoryview(data)
    done = 0
    try:
        while done < len(view):
            done += os.write(fd, view[done:])
    except OSError as exc:
        return done, exc
    return done, None


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output_path(path: str | os.PathLike[str], *, what: str = "output",
                      not_same_as: tuple[str | os.PathLike[str], ...] = ()) -> Path:
    """Refuse, before any work, an output path that cannot be written.

    It must not be a directory, its folder must exist, and it must not be one
    of the files in ``not_same_as`` (``-f book.txt -o book.txt`` would destroy the
    input). Permissions and free space are only known when writing starts:
    :class:`WavFileWriter` opens its file before the model loads for that.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{what} {str(target)!r} is a directory; give a file name, "
                          f"e.g. {str(target / 'out.wav')!r}")
    folder = target.parent
    if not folder.exists():
        raise OutputError(f"{what} {str(target)!r}: folder {str(folder)!r} does not exist; "
                          "create it first (mkdir -p)")
    if not folder.is_dir():
        raise OutputError(f"{what} {str(target)!r}: {str(folder)!r} is not a folder")
    for other in not_same_as:
        other_path = Path(other)
        same = (target.exists() and other_path.exists() and os.path.samefile(target, other_path)) \
            or os.path.abspath(target) == os.path.abspath(other_path)
        if same:
            raise OutputError(f"{what} {str(target)!r} is also the input; writing it would destroy "
                              "the text. Choose another output name")
    return target


class WavFileWriter:
    """A WAV file written as samples arrive; see the module docstring.

    Open it before heavy work starts (it creates its temporary file, so a
    read-only folder or a full disk fails at once), :meth:`write` 16-bit
    little-endian mono samples, then :meth:`finish` (or :meth:`abort`).
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, *,
                 rf64_above: int = _RIFF_LIMIT) -> None:
        self.target = Path(path)
        self.sample_rate = sample_rate
        self.rf64_above = rf64_above
        self.data_bytes = 0
        self.finished = False
        self.partial: Path | None = None
        self._direct = self.target.exists() and not stat.S_ISREG(self.target.stat().st_mode)
        try:
            if self._direct:  # /dev/null, a FIFO: no rename, no header to fix
                self._fd = os.open(self.target, os.O_WRONLY)
                self._temp = None
                self._write_all(stream_header(sample_rate))
            else:
                fd, temp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".part",
                                            dir=self.target.parent)
                self._fd, self._temp = fd, Path(temp)
                self._write_all(file_header(sample_rate, 0, rf64_above=rf64_above))
        except OSError as exc:
            self._close_quietly()
            if getattr(self, "_temp", None) is not None:
                self._temp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {str(self.target)!r}: {_describe(exc)}") from None

    @property
    def seconds(self) -> float:
        """Audio written so far."""
        return self.data_bytes / SAMPLE_BYTES / self.sample_rate

    def _write_all(self, data: bytes) -> None:
        _done, error = _write_fully(self._fd, data)
        if error is not None:
            raise error

    def write(self, pcm: bytes) -> None:
        """Append samples. A failed write raises :class:`OutputError`; the samples that
        landed before it are kept (see :meth:`abort`)."""
        if self.finished:
            raise OutputError(f"{str(self.target)!r} is already finished")
        done, exc = _write_fully(self._fd, pcm)
        self.data_bytes += done
        if exc is not None:
            self._salvage()
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                cause = f"{_describe(exc)} after {self.seconds:.1f} s of audio"
            else:
                cause = _describe(exc)
            kept = (f"; the audio made so far is in {str(self.partial)!r} (a valid WAV)"
                    if self.partial else "")
            untouched = "" if self._direct else f"; {str(self.target)!r} was left as it was"
            raise OutputError(f"cannot write {str(self.target)!r}: {cause}{untouched}{kept}") from None

    def _fix_header(self) -> None:
        whole = self.data_bytes - self.data_bytes % SAMPLE_BYTES
        if whole != self.data_bytes:  # half a sample landed before a failure
            os.ftruncate(self._fd, HEADER_BYTES + whole)
            self.data_bytes = whole
        os.pwrite(self._fd, file_header(self.sample_rate, self.data_bytes, rf64_above=self.rf64_above), 0)
        os.fsync(self._fd)

    def finish(self) -> Path:
        """Fix the header and move the file over the target; returns the target."""
        if self.finished:
            return self.target
        self.finished = True
        try:
            if not self._direct:
                self._fix_header()
            os.close(self._fd)
            if self._temp is not None:
                os.replace(self._temp, self.target)
        except OSError as exc:
            self._close_quietly()
            raise OutputError(f"cannot finish {str(self.target)!r}: {_describe(exc)}") from None
        return self.target

    def _salvage(self) -> None:
        """After a failed write: keep what landed as ``<name>.partial.wav``, target untouched."""
        self.finished = True
        if self._direct or self._temp is None:
            self._close_quietly()
            return
        try:
            self._fix_header()
            os.close(self._fd)
            partial = self.target.with_name(self.target.name + ".partial.wav")
            os.replace(self._temp, partial)
            self.partial = partial
        except OSError:
            self._close_quietly()
            self._temp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop the temporary file (the target keeps its previous content)."""
        if self.finished:
            return
        self.finished = True
        self._close_quietly()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)

    def _close_quietly(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass

    def __enter__(self) -> WavFileWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


class WavStreamWriter:
    """WAV (or raw PCM, ``raw=True``) to an already open file descriptor (or binary file),
    such as standard output: a header of unknown length first, then samples as they arrive, each
    write complete before the next (no buffering that a crash could lose)."""

    def __init__(self, out: int | BinaryIO, sample_rate: int, *, raw: bool = False,
                 name: str = "standard output") -> None:
        self.out, self.sample_rate, self.name = out, sample_rate, name
        self.data_bytes = 0
        self.finished = False
        self.target = name
        if not raw:
            self._write(stream_header(sample_rate))

    @property
    def seconds(self) -> float:
        return self.data_bytes / SAMPLE_BYTES / self.sample_rate

    def _write(self, data: bytes) -> int:
        if not isinstance(self.out, int):  # a file object (an in-process test harness, say)
            self.out.write(data)
            self.out.flush()
            return len(data)
        done, error = _write_fully(self.out, data)
        if error is not None:
            raise error
        return done

    def write(self, pcm: bytes) -> None:
        try:
            self.data_bytes += self._write(pcm)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write to {self.name}: {_describe(exc)}") from None

    def finish(self) -> str:
        self.finished = True
        return self.name

    def abort(self) -> None:
        self.finished = True
