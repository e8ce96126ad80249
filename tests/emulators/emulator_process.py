"""What the emulators for tests share (``gcs_emulator.py``, ``bigquery_emulator.py``):
one child process in a session of its own, its output in a temporary log file, a
start that waits until a GET of a URL answers 200, and a stop that ends the whole
process group and removes the log.

    process = EmulatorProcess("bqemulator", log_prefix="bqemulator-", ready_timeout_s=60)
    process.start([python, main, "start", ...], ready_url=f"{endpoint}/...", env={"X": "1"})
    ...
    process.stop()

The child gets this process's environment without any ``GOOGLE_*`` setting (no
credentials or project of the developer's leak into an emulator) and with
``NO_PROXY=127.0.0.1``. A start that fails — the process exits, or is not ready in
time — raises RuntimeError with the end of its output; one not ready in time is
stopped first, so no emulator is left running behind a failed test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

# the end of an emulator's output that a failed start quotes
LOG_TAIL_CHARS = 4000


class EmulatorProcess:
    def __init__(self, name: str, *, log_prefix: str, ready_timeout_s: float) -> None:
        self.name = name
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix=".log", delete=False)  # noqa: SIM115

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def log(self) -> str:
        """Its output so far (until stop() removes it)."""
        return self.log_path.read_text(errors="replace")

    def start(self, argv: Sequence[str], *, ready_url: str, env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` and return once a GET of ``ready_url`` answers 200."""
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")},
            "NO_PROXY": "127.0.0.1",
            **(env or {}),
        }
        # a session of its own: stop() signals the group, so whatever the emulator
        # starts (workers, a server it forks) goes with it
        self.proc = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-LOG_TAIL_CHARS:]}"
                )
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                output = self.log()[-LOG_TAIL_CHARS:]
                self.stop()
                raise RuntimeError(f"{self.name} not ready in {self.ready_timeout_s} s:\n{output}")
            time.sleep(0.1)

    def stop(self) -> None:
        """End the process group (SIGTERM, then SIGKILL after 10 s) and remove the log."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        self.log_path.unlink(missing_ok=True)  # read log() before stop() to keep it
