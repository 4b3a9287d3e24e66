"""Peak memory of a block of work, comparable between configurations in one process.

On CUDA the allocator's own peak (``torch.cuda.max_memory_allocated``) is
exact. On the CPU the resident set size is not: it only grows (``ru_maxrss``)
and glibc keeps freed memory, so whichever configuration runs first would look
cheaper. :class:`PeakHeap` instead samples the bytes malloc has handed out
(heap in use plus mmapped chunks, glibc's ``mallinfo2``) from a thread and
reports the peak above the level at the start of the block. No torch here.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from pathlib import Path


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc's ``mallinfo2`` (2.33+), or None where it is not available."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    return fn


def rss_bytes() -> int | None:
    """The process's current resident set size (Linux), or None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakHeap:
    """Peak of malloc'd bytes while the block runs, above the level at its start.

    Sampled every ``interval`` seconds by a daemon thread. Where ``mallinfo2`` is
    missing (not glibc) it falls back to the resident set size and says so in
    :attr:`method`.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.base = 0
        self.peak = 0
        self._mallinfo = _mallinfo2()
        self.method = ("malloc'd bytes above the start (mallinfo2, sampled)" if self._mallinfo
                       else "resident set size above the start (sampled)")

    def in_use(self) -> int:
        if self._mallinfo is not None:
            info = self._mallinfo()
            return int(info.uordblks + info.hblkhd)
        return rss_bytes() or 0

    def __enter__(self) -> PeakHeap:
        self.base = self.in_use()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="seqopt-peak-heap", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.in_use())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.in_use())

    @property
    def used(self) -> int:
        """Peak bytes above the start of the block."""
        return self.peak - self.base
