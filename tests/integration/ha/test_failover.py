"""The whole stack on 1 primary + 2 replicas + 3 Sentinels: the primary is
SIGKILLed under load, then a replica, then a Sentinel. Every decision that got a
200 or 202 is later readable and in the audit store exactly once; the stack
serves again within 5 s; rate limiting and the result cache keep working.

One test in phases on one stack: each phase starts from what the last left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from entail_dev.stack import Stack
from support.waiting import wait_for

from entail.audit import DuckDBAuditStore
from entail.auth import key_entry
from entail.net import free_port
from entail.settings import Settings
from entail.state.embedded_ha import EmbeddedHA

from .loadgen import LoadGenerator

PROGRAM = "ok(X) :- a(X), X > 0. #defined a/1."
AUTHOR = "ent_ha_author"
RATE = "ent_ha_rate"
LOAD_KEYS = [f"ent_ha_load_{i}" for i in range(3)]
RATE_PER_S, BURST = 20, 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ha")
    settings = Settings(
        data_dir=tmp, backend_port=free_port(), worker_port=free_port(), audit_sink_port=free_port()
    )
    keys = [
        key_entry(AUTHOR, "ha-author", "acme", ["author", "decide"]),
        key_entry(RATE, "ha-rate", "acme", ["decide"]),
        *(key_entry(k, f"ha-load-{i}", "acme", ["decide"]) for i, k in enumerate(LOAD_KEYS)),
    ]
    extra_env = {
        "ENTAIL_DATA_DIR": str(tmp),
        "ENTAIL_RATE_LIMIT_PER_S": str(RATE_PER_S),
        "ENTAIL_RATE_LIMIT_BURST": str(BURST),
        "ENTAIL_CLAIM_LEASE_MS": "1500",
        "ENTAIL_RELAY_BACKOFF_INITIAL_MS": "100",
        "ENTAIL_RELAY_BACKOFF_MAX_MS": "800",
        "ENTAIL_RELAY_ACK_DEADLINE_MS": "5000",
    }
    log = tmp / "stack.log"
    with log.open("w") as out:
        running = Stack(settings, out=out, colour=False, extra_env=extra_env, extra_keys=keys, ha=True)
        try:
            running.start(publish_examples=False)
            yield running
        except BaseException:
            out.flush()
            print(log.read_text()[-6000:])
            raise
        finally:
            running.stop()


def client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.backend_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def audit_counts(path: Path, ids: list[str]) -> dict[str, int]:
    """Rows per decision id in the audit file the sink writes."""
    with DuckDBAuditStore(path, shared=True) as store, store._session() as conn:  # a count: no public query
        rows = conn.execute(
            "SELECT decision_id, count(*) FROM decisions WHERE decision_id IN (SELECT unnest(?)) GROUP BY 1",
            [ids],
        ).fetchall()
    return {str(i): int(n) for i, n in rows}


def not_done(stack: Stack, ids: list[str]) -> dict[str, str]:
    """The decisions not (yet) readable as succeeded, with what they are instead."""
    out: dict[str, str] = {}
    with client(stack, AUTHOR) as api:
        for ident in ids:
            response = api.get(f"/v1/decisions/{ident}")
            while response.status_code == 429:  # our own rate limit: as a client should, wait
                time.sleep(float(response.headers["retry-after"]))
                response = api.get(f"/v1/decisions/{ident}")
            if response.status_code != 200:
                out[ident] = f"HTTP {response.status_code}"
            elif response.json()["status"] != "succeeded":
                out[ident] = response.json()["status"]
    return out


def run_load_through(stack: Stack, ha: EmbeddedHA, kill: Any) -> tuple[float, list[str], list[int]]:
    """Load, ``kill()``, load: the time to the first success started after the kill,
    the acknowledged decision ids, and the statuses of the failed requests."""
    load = LoadGenerator(stack.backend_url, LOAD_KEYS, "ha", interval_s=0.1).start()
    try:
        wait_for(lambda: sum(o.acknowledged for o in load.snapshot()) >= 10, 20, "load before the kill")
        killed_at = time.monotonic()
        kill()
        first = wait_for(lambda: load.first_success_after(killed_at), 20, "a success after the kill")
        time.sleep(1.0)
    finally:
        outcomes = load.stop()
    acknowledged = [o.decision_id for o in outcomes if o.acknowledged and o.decision_id]
    failed = [o.status for o in outcomes if not o.acknowledged]
    return first.ended - killed_at, acknowledged, failed


def assert_kept(stack: Stack, acknowledged: list[str]) -> None:
    assert acknowledged
    deadline = time.monotonic() + 40
    while (missing := not_done(stack, acknowledged)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged decisions not done: {missing}"
    audit = stack.settings.data_dir / "audit.duckdb"
    deadline = time.monotonic() + 40
    while (
        len(counts := audit_counts(audit, acknowledged)) < len(acknowledged) and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert sorted(counts) == sorted(acknowledged), set(acknowledged) - set(counts)
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}


def assert_rate_limit_and_cache_work(stack: Stack) -> None:
    # parallel rounds until the bucket runs dry or a deadline passes: sequential requests
    # slower than the refill (1/20 s, a loaded machine) would never drain it
    statuses: list[int] = []
    deadline = time.monotonic() + 30
    with client(stack, RATE) as rated, ThreadPoolExecutor(8) as pool:
        while 429 not in statuses and time.monotonic() < deadline:
            statuses += pool.map(lambda _: rated.get("/v1/decisions/dec_none").status_code, range(BURST + 20))
        assert 429 in statuses and 404 in statuses, statuses
        limited = rated.get("/v1/decisions/dec_none")
        if limited.status_code == 429:
            assert int(limited.headers["retry-after"]) >= 1
    body = {
        "ruleset": "ha",
        "facts": {"a": [[time.time_ns() % 2_000_000_000]]},
        "query": ["ok(X)"],
        "wait_ms": 10_000,
    }
    with client(stack, AUTHOR) as api:
        first = api.post("/v1/decisions", json=body)
        again = api.post("/v1/decisions", json=body)
    assert first.status_code == 200 and first.json()["status"] == "succeeded", first.text
    assert again.status_code == 200 and again.json()["cached"] is True, again.text


@pytest.mark.slow
def test_losing_a_primary_a_replica_and_a_sentinel(stack: Stack) -> None:
    ha = stack.redis
    assert isinstance(ha, EmbeddedHA)
    with client(stack, AUTHOR) as api:
        assert api.post("/v1/rulesets", json={"name": "ha", "source": PROGRAM}).status_code == 201

    # 1. the primary dies under load: a replica is promoted, nothing acknowledged is lost
    old_primary = ha.current_primary()
    assert old_primary is not None
    served_after_s, acknowledged, failed = run_load_through(stack, ha, lambda: ha.kill(old_primary))
    print(f"primary killed: served again after {served_after_s:.2f} s; failed requests: {failed}")
    assert served_after_s < 5.0
    new_primary = ha.current_primary()
    assert new_primary is not None and new_primary is not old_primary
    assert_kept(stack, acknowledged)
    assert_rate_limit_and_cache_work(stack)

    # 2. the old primary comes back as a replica; then a replica dies
    ha.restart(old_primary)
    ha.wait_ready(30)
    replica = next(n for n in ha.nodes if n is not new_primary and n.process is not None)
    served_after_s, acknowledged, failed = run_load_through(stack, ha, lambda: ha.kill(replica))
    print(f"replica killed: served again after {served_after_s:.2f} s; failed requests: {failed}")
    assert served_after_s < 5.0 and failed == []
    assert_kept(stack, acknowledged)

    # 3. a Sentinel dies: the others still name the primary, the stack keeps serving
    sentinel = ha.sentinels[0]
    served_after_s, acknowledged, failed = run_load_through(stack, ha, lambda: ha.kill(sentinel))
    print(f"Sentinel killed: served again after {served_after_s:.2f} s; failed requests: {failed}")
    assert served_after_s < 5.0 and failed == []
    assert_kept(stack, acknowledged)
    assert_rate_limit_and_cache_work(stack)
