"""The client factory on a real Sentinel topology: the primary client reaches the
primary, the replica client a replica; durable writes ride through a SIGKILLed
primary (retried until the promotion, re-resolved through the Sentinels) and
every acknowledged one is on the new primary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from entail.settings import Settings
from entail.state import Durability, connect_clients, connect_sync
from entail.state.client import FailoverAwareConnection, sentinel_addresses
from entail.state.embedded_ha import EmbeddedHA
from entail.state.retry import DeadlineRetry


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHA]:
    with EmbeddedHA(tmp_path_factory.mktemp("ha-clients")) as topology:
        yield topology


def ha_settings(ha: EmbeddedHA) -> Settings:
    return Settings(redis_sentinels=ha.sentinels_setting, redis_master_name=ha.master_name)


def test_sentinel_setting_is_parsed_strictly() -> None:
    assert sentinel_addresses(" 127.0.0.1:1, 10.0.0.2:26379 ") == [("127.0.0.1", 1), ("10.0.0.2", 26379)]
    for bad in ("", "127.0.0.1", "host:port", ":1"):
        with pytest.raises(ValueError, match="ENTAIL_REDIS_SENTINELS"):
            sentinel_addresses(bad)


def test_settings_refuse_a_socket_timeout_shorter_than_wait() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        Settings(redis_socket_timeout_ms=500, redis_wait_timeout_ms=500)
    assert Settings(redis_sentinels="127.0.0.1:1").redis_retry_window_s == 10.0
    assert Settings().redis_retry_window_s == 1.0
    assert Settings(redis_retry_window_ms=2500).redis_retry_window_s == 2.5


async def test_primary_and_replica_clients(ha: EmbeddedHA) -> None:
    clients = connect_clients(ha_settings(ha))
    try:
        primary_info = await clients.primary.info("replication")
        replica_info = await clients.replica.info("replication")
        assert primary_info["role"] == "master" and primary_info["connected_slaves"] == 2
        assert replica_info["role"] == "slave"
        retry = clients.primary.connection_pool.connection_kwargs["retry"]
        assert isinstance(retry, DeadlineRetry) and retry.window_s == 10.0
        # reconnects inside a retry ask the Sentinels again (see FailoverAwareConnection)
        assert clients.primary.connection_pool.connection_class is FailoverAwareConnection
        await clients.primary.set("entail:test:k", "v")
        assert await Durability(clients.primary).connected_replicas() == 2
    finally:
        await clients.aclose()
    with connect_sync(ha_settings(ha)) as sync:
        assert sync.info("replication")["role"] == "master"


@pytest.mark.slow
async def test_durable_writes_ride_through_a_killed_primary(ha: EmbeddedHA) -> None:
    clients = connect_clients(ha_settings(ha))
    durability = Durability(clients.primary, replicas=1, timeout_ms=1000, retry_window_s=10)
    acknowledged: list[str] = []
    failed: list[BaseException] = []
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            key = f"entail:test:ack:{n}"
            try:
                await durability.write(lambda pipe, key=key: pipe.set(key, "1"))  # type: ignore[misc]
                acknowledged.append(key)
            except Exception as exc:  # recorded, and asserted on below
                failed.append(exc)
            await asyncio.sleep(0.01)

    try:
        task = asyncio.create_task(writer())
        await asyncio.sleep(0.5)
        old = ha.current_primary()
        assert old is not None
        before = len(acknowledged)
        killed_at = time.monotonic()
        await asyncio.to_thread(ha.kill, old)
        while len(acknowledged) <= before + 5 and time.monotonic() - killed_at < 15:
            await asyncio.sleep(0.05)
        stop.set()
        await task
        assert failed == [], [f"{type(e).__name__}: {e}" for e in failed]
        new = ha.current_primary()
        assert new is not None and new is not old
        with redis.Redis(port=new.port) as r:
            present = r.exists(*acknowledged)
        assert present == len(acknowledged)  # nothing acknowledged was lost
    finally:
        await clients.aclose()
