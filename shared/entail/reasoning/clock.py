"""The compile-time limit: a deadline that parsing, analysis, planning and code
generation check as they go, so that compiling a hostile program stops with
``limit-compile-time`` instead of holding a worker for minutes.

It counts the compiling thread's CPU time, not wall time: on a starved machine
(a busy 2-core host, a throttled Cloud Run instance) a program that compiles in
milliseconds must not be refused because the CPU was elsewhere. Wall time is
bounded apart: the compute pool's supervisor kills a process at twice its
budget."""

from __future__ import annotations

import time

from .errors import CompileTimeLimitExceeded

_EVERY = 8  # units of work between two reads of the clock


class CompileClock:
    """Started when compiling starts; :meth:`tick` raises once the limit is passed."""

    __slots__ = ("countdown", "deadline", "limit_ms", "start")

    def __init__(self, limit_ms: int) -> None:
        self.limit_ms = limit_ms
        self.start = time.thread_time()
        self.deadline = self.start + limit_ms / 1000.0
        self.countdown = _EVERY

    def tick(self) -> None:
        """Called once per unit of work (a rule, a planned literal, a generated variant).
        The CPU clock is read every few units: a read costs about a microsecond, a
        tenth of the cost of a small rule's planning, and a few units are far below
        the limit's resolution."""
        self.countdown -= 1
        if self.countdown > 0:
            return
        self.check()

    def check(self) -> None:
        """Raise now if the limit is passed (at the end of a stage)."""
        self.countdown = _EVERY
        now = time.thread_time()
        if now > self.deadline:
            raise CompileTimeLimitExceeded(self.limit_ms, int((now - self.start) * 1000))
