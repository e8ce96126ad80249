"""The gate every process of ours passes to open the local DuckDB audit file.

DuckDB locks its file against a second writing process, but the hand-over
between two processes that take turns is not safe: an opener gets in while
the closer has not finished with the file. Measured with DuckDB 2.0.1 and
nothing of ours in the way (``bench/duckdb_handover.py --pairs 3 --rows 300
--rounds 3``: two processes each opening the file, inserting one row and
closing, 300 times, three such pairs at once on two cores), 3 of 9 pairs went
wrong: one lost a row its insert had committed, and in two an open read a
half-written file ("Could not read enough bytes"). With this gate, 0 of 9 (and
0 of 18 in a longer run). The audit store's own shared-mode test lost 1 row in
120 in one CI run of five; its loop of 20 x 240 lost a row in 3 runs.

So a process of ours takes an exclusive ``flock`` on ``<file>.lock`` before it
opens the file and gives it back only after the close has returned: the next
opener starts when the last one is done. ``flock`` belongs to the open file
description, so two stores of one process exclude each other as two processes
do, and the kernel drops it when its holder dies. Anything that opens the file
without the gate (a DuckDB shell) is still kept out by DuckDB's own lock, with
the hazard above.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.005  # how often a waiting process tries the gate again


class GateTimeout(TimeoutError):
    """Another process kept the audit file past the wait."""


class FileGate:
    """An exclusive ``flock`` on ``<path>.lock``, taken and given back around
    each open-to-close span of the DuckDB file ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.lock_path = str(path) + ".lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout_s: float, on_wait: Callable[[], None] | None = None) -> None:
        """Take the gate, waiting up to ``timeout_s``; ``on_wait`` runs between
        attempts (to ask the holder to let go)."""
        if self._fd is not None:
            raise RuntimeError("the audit file gate is already held")
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GateTimeout(
                            f"another process kept the audit file {self.lock_path[:-5]!r} "
                            f"for more than {timeout_s:g} s"
                        ) from None
                    if on_wait is not None:
                        on_wait()
                    time.sleep(POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the gate back (closing the descriptor drops the lock); a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextmanager
def gate_held(
    path: str | Path, timeout_s: float, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the gate of the DuckDB file ``path`` for a ``with`` block: for a
    process that opens the file itself (a tool, a test reading what the sink wrote)."""
    gate = FileGate(path)
    gate.acquire(timeout_s, on_wait)
    try:
        yield
    finally:
        gate.release()
