"""The dev stack's Redis transport. By default (``entail up``, the shared test
stack, the benches) the services reach the embedded Redis over loopback TCP; with
``Stack(redis_unix_socket=True)`` over a Unix socket in its 0700 data directory
(bench/stack_redis_transport.py compares the two). A data directory too deep for a
socket path keeps TCP, and says so."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import httpx
import redis
from entail_dev.examples import example_case
from entail_dev.stack import SOCKET_NAME, Stack

from entail.net import free_port
from entail.settings import MAX_UNIX_SOCKET_PATH, Settings

from .stack import LocalStack


def _addresses(url: str) -> list[str]:
    with redis.Redis.from_url(url) as client:
        return [c["addr"] for c in client.client_list()]


def test_the_shared_stack_uses_tcp(shared_stack: LocalStack) -> None:
    assert shared_stack.redis_url.startswith("redis://:") and "@127.0.0.1:" in shared_stack.redis_url
    addresses = _addresses(shared_stack.redis_url)
    assert len(addresses) >= 4 and all(a.startswith("127.0.0.1:") for a in addresses), addresses


def test_a_stack_over_the_unix_socket_decides(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        backend_port=free_port(),
        worker_port=free_port(),
        audit_sink_port=free_port(),
        audit_sink_enabled=False,
    )
    out = io.StringIO()
    stack = Stack(settings, out=out, colour=False, extra_env={"ENTAIL_DATA_DIR": str(tmp_path)},
                  redis_unix_socket=True)  # fmt: skip
    try:
        stack.start()
        sock = tmp_path.resolve() / "redis" / SOCKET_NAME
        url = stack.env["ENTAIL_REDIS_URL"]
        assert url.startswith("unix://:") and url.endswith(f"@{sock}?db=0")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        assert f"embedded valkey-server on unix://{sock}?db=0 with a password" in out.getvalue()
        assert stack.redis.password not in out.getvalue()
        body = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "wait_ms": 20_000}
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        decided = httpx.post(f"{stack.backend_url}/v1/decisions", json=body, headers=headers, timeout=30)
        assert decided.status_code == 200 and decided.json()["status"] == "succeeded", decided.text
        # the backend, the worker and the relay, all over the socket (a Unix client's
        # addr is "[<socket path>:0]:0", a TCP one's 127.0.0.1:port)
        addresses = _addresses(url)
        assert len(addresses) >= 4 and all(f"[{sock}:0]" in a for a in addresses), addresses
    finally:
        stack.stop()


def test_a_data_dir_too_deep_for_a_socket_keeps_tcp(tmp_path: Path) -> None:
    out = io.StringIO()
    stack = Stack(Settings(data_dir=tmp_path), out=out, colour=False, redis_unix_socket=True)
    deep = tmp_path / ("d" * (MAX_UNIX_SOCKET_PATH - len(str(tmp_path)))) / "redis"
    server = stack._embedded_redis(deep)
    assert server.unix_socket is None and server.url.startswith("redis://:")
    said = out.getvalue()
    assert "the limit is 107: choose a shorter directory; the services connect over TCP instead" in said
    fits = stack._embedded_redis(tmp_path / "redis")
    assert fits.unix_socket == tmp_path / "redis" / SOCKET_NAME and fits.url.startswith("unix://:")
    default = Stack(Settings(data_dir=tmp_path), out=out)._embedded_redis(tmp_path / "r")
    assert default.unix_socket is None
