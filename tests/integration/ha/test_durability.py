"""Durable acknowledgements (WAIT) on a real primary and replica: confirmed when
the replica keeps up, DurabilityNotConfirmed — and 503 from the API — when it
does not (a replica frozen with SIGSTOP: connected, never acknowledging), and no
WAIT at all on a single server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from entail_backend.app import create_app
from starlette.testclient import TestClient
from support.records import open_record as record
from support.replicas import primary_and_replica

from entail.auth import key_entry
from entail.settings import Settings
from entail.state import DecisionStore, Durability, DurabilityNotConfirmed, EmbeddedRedis, connect

AUTHOR = "ent_ha_author_key"
WAIT_MS = 300


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    """A primary and one replica, linked and in sync."""
    with primary_and_replica(tmp_path_factory.mktemp("pair")) as pair:
        yield pair


@pytest.fixture
def frozen(pair: tuple[EmbeddedRedis, EmbeddedRedis]) -> Iterator[None]:
    """The replica stopped (SIGSTOP): still connected, acknowledging nothing."""
    pid = pair[1].pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def settings_for(primary: EmbeddedRedis, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=primary.url,
        redis_wait_timeout_ms=WAIT_MS,
        redis_replica_check_ms=0,
        data_dir=tmp_path,
        api_keys_json=json.dumps([key_entry(AUTHOR, "ha-author", "acme", ["author", "decide"])]),
    )


async def test_a_write_waits_for_the_replica(
    pair: tuple[EmbeddedRedis, EmbeddedRedis], tmp_path: Path
) -> None:
    primary, replica = pair
    client = connect(settings_for(primary, tmp_path))
    try:
        durability = Durability(client, replicas=1, timeout_ms=WAIT_MS)
        assert await durability.connected_replicas() == 1
        pending = record()
        assert await DecisionStore(client, 60, durability=durability).create(pending)
        # confirmed: the replica has it now, not eventually
        with redis.Redis(port=replica.port) as r:
            assert r.exists(f"entail:decision:{pending.decision_id}") == 1
        stats = await client.info("commandstats")
        assert stats["cmdstat_wait"]["calls"] >= 1
    finally:
        await client.aclose()


async def test_no_replica_confirms_raises(
    pair: tuple[EmbeddedRedis, EmbeddedRedis], frozen: None, tmp_path: Path
) -> None:
    client = connect(settings_for(pair[0], tmp_path))
    try:
        store = DecisionStore(client, 60, durability=Durability(client, replicas=1, timeout_ms=WAIT_MS))
        t0 = time.monotonic()
        with pytest.raises(DurabilityNotConfirmed) as caught:
            await store.create(record())
        assert WAIT_MS / 1000 <= time.monotonic() - t0 < 3
        assert (caught.value.required, caught.value.confirmed) == (1, 0)
    finally:
        await client.aclose()


def test_the_api_answers_503_instead_of_an_unconfirmed_ack(
    pair: tuple[EmbeddedRedis, EmbeddedRedis], tmp_path: Path
) -> None:
    settings = settings_for(pair[0], tmp_path)
    headers = {"Authorization": f"Bearer {AUTHOR}"}
    with TestClient(create_app(settings), headers=headers) as api:
        published = api.post("/v1/rulesets", json={"name": "dur", "source": "ok(X) :- a(X). #defined a/1."})
        assert published.status_code in (200, 201), published.text
        pid = pair[1].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            body = {"ruleset": "dur", "facts": {"a": [[1]]}, "query": ["ok(X)"]}
            refused = api.post("/v1/decisions", json=body)
            again = api.post("/v1/rulesets", json={"name": "dur2", "source": "b(1)."})
        finally:
            os.kill(pid, signal.SIGCONT)
        for response in (refused, again):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert problem["type"].endswith("/durability-not-confirmed")
            assert problem["required_replicas"] == 1 and problem["confirmed_replicas"] == 0
        accepted = api.post("/v1/decisions", json=body)  # the replica is back
        assert accepted.status_code in (200, 202), accepted.text


async def test_a_single_server_never_waits(settings: Settings) -> None:
    client = connect(settings)
    try:
        await client.config_resetstat()
        store = DecisionStore(client, 60, durability=Durability.from_settings(client, settings))
        for _ in range(3):
            assert await store.create(record())
        stats = await client.info("commandstats")
        assert "cmdstat_wait" not in stats
        assert stats["cmdstat_info"]["calls"] == 1  # the replica count, then cached
    finally:
        await client.aclose()
