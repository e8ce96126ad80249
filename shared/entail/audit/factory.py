"""Opens the audit store the settings ask for."""

from __future__ import annotations

from ..settings import Settings
from .duckdb_store import DuckDBAuditStore
from .port import AuditStore


def open_audit_store(settings: Settings, *, steady_writer: bool = False) -> AuditStore:
    """``steady_writer``: the audit sink, which writes all the time under load and
    so keeps the local file open while decisions flow (see DuckDBAuditStore)."""
    path = settings.audit_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # shared: the audit sink and the backend are separate processes on one file
    return DuckDBAuditStore(path, shared=True, linger_ms=200 if steady_writer else 0)
