"""The voices a server offers: ``default`` and the reference recordings in one folder.

A request's ``voice`` is a name, never a path: ``default`` (the checkpoint's built-in
voice, or the config's ``engine.options.voice``) or the file name without its extension
of a ``.wav``, ``.flac`` or ``.mp3`` file directly inside the folder (``--voices DIR``).
A name can never reach a file outside the folder:

* it must match :data:`VOICE_NAME` (letters, digits, ``_``, ``.``, ``-``; no ``/``, no
  ``\\``, at most 64 characters, not starting with a dot) and contain no ``..``;
* the file found must be a regular file whose real path (symlinks resolved) lies inside
  the folder's real path: a symlink that points out of the folder is not a voice.

The folder is read at each listing and lookup, so voices added while the server runs
appear at once; the engine prepares each file once (``Pipeline.voice_engine``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .protocol import DEFAULT_VOICE, ApiError

#: What a voice name may look like.
VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: File name endings of reference recordings, in the order one is chosen when several share a name.
VOICE_SUFFIXES = (".wav", ".flac", ".mp3")


def valid_voice_name(name: str) -> bool:
    """Whether ``name`` may name a voice file (see the module doc).

    >>> [valid_voice_name(n) for n in ("alice", "bob_2.v1", "../x", "a..b", "/etc/passwd", ".hidden", "")]
    [True, True, False, False, False, False, False]
    """
    return bool(VOICE_NAME.fullmatch(name)) and ".." not in name


class VoiceLibrary:
    """The voices of one folder (or only ``default`` without one)."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        self.folder = None if folder is None else Path(folder)
        if self.folder is not None and not self.folder.is_dir():
            from ..errors import ConfigError

            raise ConfigError(f"the voices folder {str(self.folder)!r} does not exist or is not a folder: "
                              "give a folder of reference recordings (.wav, .flac, .mp3)")

    def _root(self) -> Path | None:
        return None if self.folder is None else Path(os.path.realpath(self.folder))

    def _inside(self, path: Path, root: Path) -> Path | None:
        """``path``'s real path if it is a regular file inside ``root``, else ``None``."""
        real = Path(os.path.realpath(path))
        if real.parent != root and root not in real.parents:
            return None
        return real if real.is_file() else None

    def names(self) -> list[str]:
        """``default``, then every voice in the folder, sorted."""
        root = self._root()
        found: set[str] = set()
        if root is not None:
            try:
                entries = list(os.scandir(root))
            except OSError:
                entries = []
            for entry in entries:
                stem, suffix = os.path.splitext(entry.name)
                if (suffix.lower() in VOICE_SUFFIXES and valid_voice_name(stem) and stem != DEFAULT_VOICE
                        and self._inside(Path(entry.path), root) is not None):
                    found.add(stem)
        return [DEFAULT_VOICE, *sorted(found)]

    def resolve(self, name: str) -> Path | None:
        """The file of voice ``name`` (``None`` for ``default``), or a 400 :class:`ApiError`
        that lists the voices."""
        if name == DEFAULT_VOICE:
            return None
        root = self._root()
        if root is not None and valid_voice_name(name):
            for suffix in VOICE_SUFFIXES:
                for spelled in (suffix, suffix.upper()):
                    path = self._inside(root / f"{name}{spelled}", root)
                    if path is not None:
                        return path
        listed = ", ".join(self.names())
        where = "" if self.folder is not None else " (start the server with --voices DIR to add some)"
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise ApiError(400, f"unknown voice {shown!r}; the voices are {listed}{where}. A voice is a file "
                            "name without its extension, not a path (OpenAI's voice names such as 'alloy' "
                            "are not voices here)", param="voice")


__all__ = ["VOICE_NAME", "VOICE_SUFFIXES", "VoiceLibrary", "valid_voice_name"]
