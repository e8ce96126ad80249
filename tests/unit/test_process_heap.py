"""Every long-lived service process freezes its startup heap (entail.process_heap):
full collections then traverse only what was allocated since startup, not the
~100,000 objects of the imports, whose traversal paused a loaded backend for
100-400 ms. Each check runs in a fresh interpreter (a frozen heap stays frozen)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import entail_dev
import pytest

from entail.process_heap import YOUNG_THRESHOLD

SINK_SOURCES = {
    "local": Path(entail_dev.__file__).parent / "sink.py",
    "cloud function": Path(__file__).resolve().parents[2] / "functions" / "audit_sink" / "main.py",
}


def run_python(code: str, tmp_path: Path) -> dict[str, int]:
    """Run ``code`` in a new interpreter; the JSON object it prints last."""
    env = {
        "PATH": "/usr/bin:/bin",
        "ENTAIL_DATA_DIR": str(tmp_path),
        "ENTAIL_AUDIT_DUCKDB_PATH": str(tmp_path / "audit.duckdb"),
        "ENTAIL_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_freezing_takes_the_startup_heap_out_of_every_later_collection(tmp_path: Path) -> None:
    result = run_python(
        """
        import gc, json
        import entail_backend.app  # the backend's imports: what a full collection traversed
        tracked = len(gc.get_objects())
        from entail.process_heap import freeze_startup_heap
        frozen = freeze_startup_heap()
        left, young = len(gc.get_objects()), gc.get_threshold()[0]
        print(json.dumps({"tracked": tracked, "frozen": frozen, "left": left, "young": young}))
        """,
        tmp_path,
    )
    assert result["frozen"] > 30_000
    # what a full collection still traverses: a sliver of what it did
    assert result["left"] < result["tracked"] // 20
    # young collections ~14 times fewer than CPython's default (700)
    assert result["young"] == YOUNG_THRESHOLD


def test_the_backend_and_worker_freeze_before_serving(tmp_path: Path) -> None:
    # uvicorn.run is where serve_http hands over: report the freeze seen there
    result = run_python(
        """
        import gc, json
        import uvicorn
        uvicorn.run = lambda app, **options: print(json.dumps({"frozen": gc.get_freeze_count()}))
        from entail.bootstrap import serve_http
        from entail.settings import Settings
        from entail_worker.app import create_app
        settings = Settings()
        serve_http(create_app(settings), settings, "worker")
        """,
        tmp_path,
    )
    assert result["frozen"] > 30_000


def test_the_relay_freezes_before_serving(tmp_path: Path) -> None:
    result = run_python(
        """
        import gc, json
        import entail.relay
        async def serve(settings):
            print(json.dumps({"frozen": gc.get_freeze_count()}))
        entail.relay.serve = serve
        from entail.settings import Settings
        entail.relay.run_relay(Settings())
        """,
        tmp_path,
    )
    assert result["frozen"] > 10_000


@pytest.mark.parametrize("which", sorted(SINK_SOURCES))
def test_the_audit_sink_freezes_once_loaded(which: str, tmp_path: Path) -> None:
    # functions-framework loads the target's file as a module, as runpy does here
    result = run_python(
        f"""
        import gc, json, runpy
        runpy.run_path({str(SINK_SOURCES[which])!r})
        print(json.dumps({{"frozen": gc.get_freeze_count()}}))
        """,
        tmp_path,
    )
    assert result["frozen"] > 30_000
