"""Opens the audit store the settings ask for."""

from __future__ import annotations

from ..settings import Settings
from .duckdb_store import DuckDBAuditStore
from .port import AuditStore


def open_audit_store(settings: Settings, *, steady_writer: bool = False) -> AuditStore:
    """``ENTAIL_AUDIT_STORE``: the local DuckDB file (default) or BigQuery.

    ``steady_writer``: the audit sink, which writes all the time under load and
    so keeps the local file open while decisions flow (see DuckDBAuditStore)."""
    if settings.audit_store == "bigquery":
        from .bigquery_store import BigQueryAuditStore  # the gcp extra: loaded only in cloud mode

        return BigQueryAuditStore.from_settings(settings)
    path = settings.audit_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # shared: the audit sink and the backend are separate processes on one file
    return DuckDBAuditStore(path, shared=True, linger_ms=200 if steady_writer else 0)
