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


class CompileClock:
    """Started when compiling starts; :meth:`tick` raises once the limit is passed."""

    __slots__ = ("deadline", "limit_ms", "start")

    def __init__(self, limit_ms: int) -> None:
        self.limit_ms = limit_ms
        self.start = time.thread_time()
        self.deadline = self.start + limit_ms / 1000.0

    def tick(self) -> None:
        """Called once per unit of work (a rule, a planned literal, a generated variant);
        reading the thread's CPU clock costs far less than any of those units."""
        now = time.thread_time()
        if now > self.deadline:
            raise CompileTimeLimitExceeded(self.limit_ms, int((now - self.start) * 1000))
