"""Peak memory of a block of work, comparable between configurations in one process.

On CUDA the allocator's own peak (``torch.cuda.max_memory_allocated``) is
exact. On the CPU the peak resident set size is not: it only grows
(``ru_maxrss``) and glibc keeps freed memory, so whichever configuration runs
first would look cheaper. :class:`PeakResident` first hands freed memory back to
the system (``malloc_trim``, glibc only), then samples the resident set
(:func:`seqopt_core.system.resident_bytes`, psutil: one system call that takes
no lock, on Linux, macOS and Windows), and reports the peak above the
level at the start of the block. (Sampling glibc's ``mallinfo2`` instead is
exact about malloc'd bytes, but every call walks the heap under malloc's locks
and slowed whole synthesis runs about 3x; it is not used.)

No torch here.
"""

from __future__ import annotations

import ctypes
import threading

from ..system import resident_bytes


def _malloc_trim() -> bool:
    """Return freed heap memory to the system (glibc); False where unavailable (macOS,
    musl, Windows: there the peak includes memory earlier work freed but kept)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


class PeakResident:
    """Peak resident set while the block runs, above the level at its start, after
    ``malloc_trim`` returned the memory earlier work had freed (so what ran before
    does not hide this block's growth). Sampled every ``interval`` seconds."""

    method = "resident set above the start after malloc_trim (sampled every 20 ms)"

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.base = 0
        self.peak = 0

    def __enter__(self) -> PeakResident:
        _malloc_trim()
        self.base = resident_bytes() or 0
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="seqopt-peak-rss", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, resident_bytes() or 0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes() or 0)

    @property
    def used(self) -> int:
        """Peak bytes above the start of the block."""
        return self.peak - self.base
