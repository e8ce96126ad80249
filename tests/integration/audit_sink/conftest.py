"""Fixtures of the audit sink tests. Redis (``redis``, ``settings``) comes from
tests/integration/conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
from entail_dev.stack import SINK_SOURCE

from .helpers import SOURCE, SinkProcess

# the two adapters of entail.audit_sink.AuditSink to functions-framework: the
# Cloud Function, and the local stack's target shipped in the entail-dev package
SOURCES = {"function": SOURCE, "entail_dev": SINK_SOURCE}


@cache
def _load_sink(which: str) -> ModuleType:
    """The sink's target file as a module of its own name (the framework loads it
    as ``main`` when it creates an app)."""
    spec = importlib.util.spec_from_file_location(f"entail_audit_sink_{which}", SOURCES[which])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def audit_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of an in-process sink: its audit file under tmp_path."""
    path = tmp_path / "audit" / "audit.duckdb"
    monkeypatch.setenv("ENTAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENTAIL_AUDIT_DUCKDB_PATH", str(path))
    return path


@pytest.fixture(params=sorted(SOURCES))
def sink(audit_path: Path, request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The sink module (each adapter), its cached store reset around the test."""
    module = _load_sink(request.param)
    module.sink.reset()
    try:
        yield module
    finally:
        module.sink.reset()


@pytest.fixture
def sink_process(tmp_path: Path) -> Iterator[SinkProcess]:
    """The sink served by a real ``functions-framework`` process on a free port."""
    process = SinkProcess(tmp_path / "sink" / "audit.duckdb", tmp_path / "sink.log")
    process.audit_path.parent.mkdir(parents=True)
    process.start()
    try:
        yield process
    finally:
        process.stop()
