"""Reading the text to speak or plan: the CLI's reader, for apps too.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "latin1.txt"
    >>> _ = path.write_bytes("Caf\\xe9 au lait.".encode("latin-1"))
    >>> read_text(path)
    Traceback (most recent call last):
    ...
    seqopt_core.errors.TextDecodeError: ... is not valid UTF-8: byte 0xe9 at offset 3 (line 1). ...
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from .errors import InputFileError
from .text import decode_utf8


def read_text(path: str | os.PathLike[str]) -> str:
    """The UTF-8 text of the file at ``path`` (a byte-order mark is dropped).

    Raises :class:`~seqopt_core.errors.InputFileError` (also an ``OSError``)
    when the file is missing, a directory or unreadable, and
    :class:`~seqopt_core.errors.TextDecodeError` (also a ``ValueError``) naming
    the byte offset and line of the first invalid UTF-8 byte and how to convert
    the file. Both are :class:`~seqopt_core.errors.SeqoptError`; nothing is
    decoded with replacement characters, so no text is lost silently.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputFileError(f"file {name!r} does not exist") from None
    except IsADirectoryError:
        raise InputFileError(f"{name!r} is a directory; give a text file") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {name!r}: {exc.strerror or exc}") from None
    return decode_utf8(data, name)


def read_stream(stream: BinaryIO | None = None, name: str = "standard input") -> str:
    """The UTF-8 text of a binary stream (default: standard input), read to its end."""
    stream = stream if stream is not None else sys.stdin.buffer
    return decode_utf8(stream.read(), name)
