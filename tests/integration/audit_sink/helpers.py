"""Helpers of the audit sink tests: decision records, Pub/Sub CloudEvents, the
DuckDB file read back, and the sink as a real ``functions-framework`` process."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from entail.audit.duckdb_store import ask_for_the_file
from entail.audit.file_gate import gate_held
from entail.bus.push import PUSH_SECRET_HEADER
from entail.models import DecisionRecord, RulesetRef, new_decision_id, utcnow
from entail.net import free_port
from entail.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SOURCE = REPO / "functions" / "audit_sink" / "main.py"
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"
EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


def decision(tenant: str = "acme", status: str = "succeeded", **fields: Any) -> DecisionRecord:
    now = utcnow()
    values: dict[str, Any] = {
        "decision_id": new_decision_id(),
        "tenant": tenant,
        "ruleset": RulesetRef(tenant=tenant, name="loan", version=1, hash="a" * 64),
        "request_hash": "b" * 64,
        "status": status,
        "facts": {"applicant": [["ann"]]},
        "query": ["approve(X)"],
        "answers": [{"query": "approve(X)", "answers": [{"atom": "approve(ann)", "args": ["ann"]}]}],
        "result_hash": "c" * 64,
        "submitted_at": now,
        "started_at": now,
        "completed_at": now if status in ("succeeded", "failed") else None,
    }
    values.update(fields)
    return DecisionRecord(**values)


def record_bytes(record: DecisionRecord) -> bytes:
    """What the worker publishes on topic ``decisions``."""
    return record.model_dump_json(by_alias=True).encode()


def event_data(data: bytes | str, message_id: str = "1") -> dict[str, Any]:
    """The MessagePublishedData of a Pub/Sub CloudEvent; ``str`` data is sent as is
    (not base64-encoded), to make undecodable messages."""
    encoded = data if isinstance(data, str) else base64.b64encode(data).decode()
    return {
        "message": {
            "data": encoded,
            "attributes": {},
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": utcnow(),
            "publish_time": utcnow(),
        },
        "subscription": "projects/local/subscriptions/audit-sink",
    }


def ce_headers(message_id: str = "1") -> dict[str, str]:
    """Binary-mode CloudEvent headers as a gen2 function gets them for a Pub/Sub push."""
    return {
        "ce-id": message_id,
        "ce-source": "//pubsub.googleapis.com/projects/local/topics/decisions",
        "ce-type": EVENT_TYPE,
        "ce-specversion": "1.0",
        "ce-time": utcnow(),
        "content-type": "application/json",
        PUSH_SECRET_HEADER: Settings().push_secret,  # as the relay sends it (the local sink requires it)
    }


def stored(path: Path, timeout_s: float = 10.0) -> dict[str, int]:
    """decision_id -> number of rows in the decisions table of the DuckDB file
    (waits while the sink holds the file's lock)."""
    with _connect(path, timeout_s) as conn:
        rows = conn.execute("SELECT decision_id, count(*) FROM decisions GROUP BY decision_id").fetchall()
    return {str(d): int(n) for d, n in rows}


def rejected(path: Path, timeout_s: float = 10.0) -> list[tuple[str | None, str, Any]]:
    """(decision_id, reason, payload) of every rejected row."""
    with _connect(path, timeout_s) as conn:
        rows = conn.execute("SELECT decision_id, reason, payload FROM rejected").fetchall()
    return [(d, str(r), json.loads(p)) for d, r, p in rows]


@contextmanager
def _connect(path: Path, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the file, opened and closed inside the gate the sink passes
    (entail.audit.file_gate): an open racing the sink's close read a half-written file."""
    with gate_held(
        path, timeout_s, on_wait=lambda: ask_for_the_file(path)
    ):  # the sink lets go at its next check
        # not read_only: in-process, a store of the same process may share the
        # database instance, and DuckDB refuses a second one with another config
        conn = duckdb.connect(str(path))
        try:
            yield conn
        finally:
            conn.close()


class SinkProcess:
    """``functions-framework --target audit_sink`` on 127.0.0.1, in its own process
    group (gunicorn forks a worker), writing to ``audit_path``."""

    def __init__(self, audit_path: Path, log_path: Path, port: int | None = None) -> None:
        self.audit_path = audit_path
        self.log_path = log_path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout_s: float = 15.0) -> SinkProcess:
        env = {
            **os.environ,
            "ENTAIL_DATA_DIR": str(self.audit_path.parent),
            "ENTAIL_AUDIT_DUCKDB_PATH": str(self.audit_path),
            "PYTHONUNBUFFERED": "1",
            "THREADS": "8",
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(FUNCTIONS_FRAMEWORK),
                    "--source",
                    str(SOURCE),
                    "--target",
                    "audit_sink",
                    "--signature-type",
                    "cloudevent",
                    "--port",
                    str(self.port),
                    "--host",
                    "127.0.0.1",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the sink exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the sink did not listen within {timeout_s} s:\n{self.log()}"
                    ) from exc
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: a crashed instance."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
