"""Earliest deadline first: who gets the model next when several streams want it.

The scheduler runs every piece of model work (a stretch of token steps, a chunk's
decode) through a :class:`DeadlineGate`. A thread asks with its stream's
deadline, the moment that stream's listener runs out of audio; when the gate is
free it goes to the waiting thread with the earliest deadline (ties: the one
that asked first). A stream that has not played anything yet asks with the
moment it arrived, which is earlier than the deadline of any stream that is
already playing, so a new request's first audio is not queued behind another
request's long text; among streams that play, the one closest to a stall goes
first.

Pure Python, no model: the gate only orders threads. It is reentrant (a thread
that holds it passes straight through when it asks again).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class DeadlineGate:
    """A lock whose waiters are served earliest deadline first (see the module doc)."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._waiting: list[tuple[float, int]] = []  # a heap of (deadline, ticket)
        self._tickets = itertools.count()
        self._owner: int | None = None
        self._depth = 0

    @contextmanager
    def hold(self, deadline: float) -> Iterator[None]:
        """Hold the gate for one piece of work; wait while another thread holds it or an
        earlier deadline waits. ``deadline`` is on :func:`time.perf_counter`'s clock
        (any clock works as long as every caller uses the same one)."""
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
            else:
                entry = (float(deadline), next(self._tickets))
                heapq.heappush(self._waiting, entry)
                while self._owner is not None or self._waiting[0] != entry:
                    self._changed.wait()
                heapq.heappop(self._waiting)
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._changed.notify_all()

    @property
    def waiting(self) -> int:
        """Threads waiting for the gate now."""
        with self._changed:
            return len(self._waiting)


__all__ = ["DeadlineGate"]
