"""The gate around each open-to-close span of the shared DuckDB audit file
(entail.audit.file_gate): DuckDB's own hand-over between processes lost rows."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entail.audit import DuckDBAuditStore
from entail.audit.file_gate import FileGate, GateTimeout, gate_held

HOLDER = """
import sys
from entail.audit.file_gate import FileGate
gate = FileGate(sys.argv[1])
gate.acquire(5.0)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_gate_waits_asks_and_times_out(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    first, second = FileGate(path), FileGate(path)
    first.acquire(1.0)
    asked: list[float] = []
    started = time.monotonic()
    with pytest.raises(GateTimeout, match=r"audit\.duckdb"):
        second.acquire(0.2, lambda: asked.append(time.monotonic()))
    assert 0.2 <= time.monotonic() - started < 2.0
    assert len(asked) >= 5  # asked the holder between attempts
    assert not second.held
    first.release()
    second.acquire(0.2)  # given back: the next one gets in at once
    assert second.held
    second.release()
    second.release()  # a no-op when not held


def test_a_held_gate_cannot_be_taken_twice_by_its_owner(tmp_path: Path) -> None:
    gate = FileGate(tmp_path / "a.duckdb")
    gate.acquire(1.0)
    with pytest.raises(RuntimeError, match="already held"):
        gate.acquire(1.0)
    gate.release()


def test_the_gate_is_free_again_when_its_holder_dies(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(GateTimeout):
            FileGate(path).acquire(0.1)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with gate_held(path, 2.0):  # the kernel dropped the dead process's lock
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_a_shared_store_holds_the_gate_from_open_to_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    lingering = DuckDBAuditStore(path, shared=True, linger_ms=60_000, max_hold_ms=60_000)
    lingering.get_decision("acme", "dec_1")  # opened, and held for the linger
    with pytest.raises(GateTimeout):
        FileGate(path).acquire(0.1)  # no opener gets past the gate while the file is open
    lingering.close()
    with gate_held(path, 0.5):
        pass
    per_operation = DuckDBAuditStore(path, shared=True)  # no linger: the gate goes back with each close
    per_operation.get_decision("acme", "dec_1")
    with gate_held(path, 0.5):
        pass
    per_operation.close()


def test_a_waiting_store_asks_the_lingering_one_to_let_go(tmp_path: Path) -> None:
    """Two stores of one process exclude each other through the gate as two
    processes do, and the ``.wanted`` marker still gets the waiter in within a check."""
    path = tmp_path / "audit.duckdb"
    lingering = DuckDBAuditStore(path, shared=True, linger_ms=60_000, max_hold_ms=60_000)
    lingering.get_decision("acme", "dec_1")
    other = DuckDBAuditStore(path, shared=True)
    started = time.monotonic()
    other.get_decision("acme", "dec_1")
    assert time.monotonic() - started < 2.0
    other.close()
    lingering.close()
