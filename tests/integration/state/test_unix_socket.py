"""The local Redis over a Unix socket: the embedded server listens on one (0700, in
a 0700 directory), its URL is ``unix://``, and every client the services make works
over it (the async pool, the sync client, Pub/Sub, the Redis Streams bus, the
replica client), with the password redacted from log lines; a path past the
kernel's limit fails before anything starts, with the reason."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from entail.bus.redis_streams import RedisStreamsBus, stream_key
from entail.logs import settings_secrets
from entail.relay import _without_password
from entail.settings import MAX_UNIX_SOCKET_PATH, Settings
from entail.state.client import connect_clients, connect_sync
from entail.state.durability import Durability
from entail.state.embedded import EmbeddedRedis, UnixSocketPathTooLong

PASSWORD = "s3cret-unix-pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    root = tmp_path_factory.mktemp("uds")
    # the socket's own directory does not exist yet: the server makes it, 0700
    with EmbeddedRedis(root / "data", password=PASSWORD, unix_socket=root / "run" / "valkey.sock") as s:
        yield s


def test_the_server_listens_on_a_private_socket(server: EmbeddedRedis) -> None:
    sock = server.unix_socket
    assert sock is not None
    assert server.url == f"unix://:{PASSWORD}@{sock}?db=0"
    assert server.address == f"unix://{sock}?db=0"  # for messages: no password
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
    # the TCP port stays (tools, replicas), behind the same password
    with redis.Redis.from_url(server.tcp_url) as tcp, redis.Redis.from_url(server.url) as unix:
        assert tcp.info("server")["process_id"] == unix.info("server")["process_id"] == server.pid
    with redis.Redis(unix_socket_path=str(sock)) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()


async def test_the_services_clients_work_over_it(server: EmbeddedRedis) -> None:
    settings = Settings(redis_url=server.url, redis_read_url=server.url.replace("db=0", "db=1"))
    clients = connect_clients(settings)
    try:
        assert clients.primary is not clients.replica
        assert clients.primary.connection_pool.connection_kwargs["path"] == str(server.unix_socket)
        await clients.primary.set("uds:k", "primary")
        assert await clients.primary.get("uds:k") == b"primary"
        # ?db=1 is a database of its own
        assert await clients.replica.get("uds:k") is None
        # Pub/Sub (the done signal's shared subscription) and scripts
        pubsub = clients.primary.pubsub()
        await pubsub.subscribe("uds:done")
        assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
        assert await clients.primary.publish("uds:done", "d1") == 1
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None and message["data"] == b"d1"
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        assert await clients.primary.eval("return redis.call('INCR', KEYS[1])", 1, "uds:n") == 1
        # the Redis Streams bus (no replicas here: nothing to WAIT for)
        bus = RedisStreamsBus(clients.primary, durability=Durability(clients.primary, replicas=0))
        entry_id = await bus.publish("uds-topic", b"payload", {"k": "v"})
        entries: Any = await clients.primary.xrange(stream_key("uds-topic"))
        assert [e[0].decode() for e in entries] == [entry_id]
    finally:
        await clients.aclose()
    with connect_sync(settings) as sync:
        assert sync.get("uds:k") == b"primary"


def test_the_password_is_redacted_from_log_lines(server: EmbeddedRedis) -> None:
    settings = Settings(redis_url=server.url)
    assert PASSWORD in settings_secrets(settings)
    shown = _without_password(server.url)
    assert PASSWORD not in shown and shown == f"unix://:***@{server.unix_socket}?db=0"


def test_a_socket_path_past_the_limit_is_refused_before_starting(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_UNIX_SOCKET_PATH + 1 - len(str(tmp_path))))
    with pytest.raises(UnixSocketPathTooLong, match=r"is \d+ bytes; the limit is 107: choose a shorter"):
        EmbeddedRedis(tmp_path / "data", unix_socket=deep / "valkey.sock")
    assert not (tmp_path / "data").exists()  # nothing started, nothing made
    # the CLI says so and exits 2 instead of a traceback
    result = subprocess.run(
        [sys.executable, "-m", "entail.state.embedded", "--data-dir", str(tmp_path / "data"),
         "--unix-socket", str(deep / "valkey.sock")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "the limit is 107" in result.stderr and "Traceback" not in result.stderr
