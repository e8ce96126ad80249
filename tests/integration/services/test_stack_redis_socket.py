"""``entail up`` (and so every stack the service tests and benches start) gives its
services the embedded Redis's Unix socket: cheaper per round trip than loopback TCP
(bench/redis_client.py --transport). A data directory too deep for a socket path,
or ``redis_unix_socket=False``, keeps TCP."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import redis
from entail_dev.stack import SOCKET_NAME, Stack

from entail.settings import MAX_UNIX_SOCKET_PATH, Settings

from .stack import LocalStack


def test_the_services_talk_to_redis_over_the_socket(shared_stack: LocalStack) -> None:
    data_dir = Path(shared_stack.stack.env["ENTAIL_DATA_DIR"]).resolve()
    sock = data_dir / "redis" / SOCKET_NAME
    assert shared_stack.redis_url.startswith("unix://:")
    assert shared_stack.redis_url.endswith(f"@{sock}?db=0")
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
    assert f"embedded valkey-server on unix://{sock}?db=0 with a password" in shared_stack.log.read_text()
    with redis.Redis.from_url(shared_stack.redis_url) as client:
        clients = client.client_list()
    # the backend, the worker and the relay hold connections, all over the socket
    # (a Unix client's addr is "[<socket path>:0]:0"; a TCP one's 127.0.0.1:port)
    assert len(clients) >= 4
    assert all(f"[{sock}:0]" in c["addr"] for c in clients), [c["addr"] for c in clients]


def test_a_data_dir_too_deep_for_a_socket_keeps_tcp(tmp_path: Path) -> None:
    out = io.StringIO()
    stack = Stack(Settings(data_dir=tmp_path), out=out, colour=False)
    deep = tmp_path / ("d" * (MAX_UNIX_SOCKET_PATH - len(str(tmp_path)))) / "redis"
    server = stack._embedded_redis(deep)
    assert server.unix_socket is None and server.url.startswith("redis://:")
    assert (
        "the limit is 107: choose a shorter directory; the services connect over TCP instead"
        in out.getvalue()
    )
    fits = stack._embedded_redis(tmp_path / "redis")
    assert fits.unix_socket == tmp_path / "redis" / SOCKET_NAME and fits.url.startswith("unix://:")
    tcp = Stack(Settings(data_dir=tmp_path), out=out, redis_unix_socket=False)._embedded_redis(tmp_path / "r")
    assert tcp.unix_socket is None
