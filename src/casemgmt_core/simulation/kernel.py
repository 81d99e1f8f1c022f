"""The event loop: a binary heap of timed callbacks, and a pool of caseworkers with a queue.

Both are deliberately small: a scheduled event is a tuple on a ``heapq`` and a step is one
function call, so the loop costs little beside the model it drives.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Any

__all__ = ["EventLoop", "Pool"]


class EventLoop:
    """Calls ``fn(arg)`` at each scheduled time, in time order (ties: in the order scheduled)."""

    __slots__ = ("_heap", "_seq", "now")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[Any], object], Any]] = []
        self._seq = count()
        self.now = 0.0

    def at(self, time: float, fn: Callable[[Any], object], arg: Any = None) -> None:
        """Schedule ``fn(arg)`` at absolute ``time`` (not before now)."""
        heapq.heappush(self._heap, (max(time, self.now), next(self._seq), fn, arg))

    def after(self, delay: float, fn: Callable[[Any], object], arg: Any = None) -> None:
        heapq.heappush(self._heap, (self.now + delay, next(self._seq), fn, arg))

    def run(self, until: float) -> int:
        """Run the events up to ``until`` (inclusive); return how many ran. Later ones stay queued."""
        heap, pop, steps = self._heap, heapq.heappop, 0
        while heap and heap[0][0] <= until:
            time, _, fn, arg = pop(heap)
            self.now = time
            fn(arg)
            steps += 1
        self.now = max(self.now, until)
        return steps

    def __len__(self) -> int:
        return len(self._heap)


class Pool:
    """``servers`` caseworkers holding at most ``cap`` cases each; requests beyond wait in a queue.

    ``on_change(now, held, queued)`` is called after every change, for the caseload over time.
    A granted request calls ``grant(item, server)``; the least loaded caseworker is chosen.
    """

    __slots__ = ("_grant", "_load", "_loop", "_on_change", "cap", "held", "queue", "servers", "urgent")

    def __init__(
        self,
        loop: EventLoop,
        servers: int,
        cap: int,
        grant: Callable[[Any, int], object],
        on_change: Callable[[float, int, int], object] | None = None,
    ) -> None:
        self._loop = loop
        self.servers = servers
        self.cap = cap
        self._load = [0] * servers
        self._grant = grant
        self._on_change = on_change
        self.held = 0
        self.queue: deque[Any] = deque()
        self.urgent: deque[Any] = deque()
        """Requests served before ``queue``, first come first served among themselves."""

    def request(self, item: Any, *, urgent: bool = False) -> None:
        if self.held < self.servers * self.cap:
            self._assign(item)
        elif urgent:
            self.urgent.append(item)
        else:
            self.queue.append(item)
        if self._on_change is not None:
            self._on_change(self._loop.now, self.held, self.waiting)

    def release(self, server: int) -> None:
        self._load[server] -= 1
        self.held -= 1
        if self.urgent:
            self._assign(self.urgent.popleft())
        elif self.queue:
            self._assign(self.queue.popleft())
        if self._on_change is not None:
            self._on_change(self._loop.now, self.held, self.waiting)

    @property
    def waiting(self) -> int:
        return len(self.queue) + len(self.urgent)

    def _assign(self, item: Any) -> None:
        load = self._load
        server = load.index(min(load)) if self.cap > 1 else load.index(0)
        load[server] += 1
        self.held += 1
        self._grant(item, server)
