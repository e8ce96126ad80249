"""A BigQuery endpoint that accepts connections and never answers: every store
call gives up within its timeout instead of hanging (which, in the sink's group
commit, would hold every decision queued behind it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from google.api_core.exceptions import RetryError
from support.records import END, START
from support.records import audited as record

from entail.audit.bigquery_store import BigQueryAuditStore
from entail.settings import Settings


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A real listening socket on 127.0.0.1 that reads requests and never replies."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _store(endpoint: str, timeout_s: float) -> BigQueryAuditStore:
    settings = Settings(
        audit_store="bigquery",
        bigquery_project="entail-test",
        bigquery_endpoint=endpoint,
        bigquery_timeout_s=timeout_s,
    )
    return BigQueryAuditStore.from_settings(settings)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.insert_decisions([record(1)]), id="insert"),
        pytest.param(lambda s: s.get_decision("acme", "dec_000001"), id="read"),
        pytest.param(lambda s: s.search_decisions("acme", START, END), id="search"),
        pytest.param(lambda s: s.ensure_tables(), id="ensure_tables"),
    ],
)
def test_a_call_to_an_endpoint_that_never_answers_fails_within_its_timeout(
    silent_endpoint: str, call: Callable[[BigQueryAuditStore], object]
) -> None:
    store = _store(silent_endpoint, timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(RetryError, match=r"Timeout of 1\.0s exceeded.*[Rr]ead timed out"):
        call(store)
    elapsed = time.monotonic() - started
    store.close()
    assert elapsed < 8.0, f"gave up only after {elapsed:.1f} s"


def test_the_timeout_comes_from_the_settings() -> None:
    assert Settings().bigquery_timeout_s == 30.0
    store = _store("http://127.0.0.1:9", timeout_s=4.5)
    assert store.timeout_s == 4.5
    assert store._retry.timeout == 4.5  # the default retry policy, bounded by it
    store.close()
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(bigquery_timeout_s=0)
