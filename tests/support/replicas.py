"""A primary and one replica of the embedded server, linked and in sync: the
smallest setup where durable writes WAIT for an acknowledgement."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from entail.state.embedded import EmbeddedRedis

LINK_TIMEOUT_S = 15.0


@contextlib.contextmanager
def primary_and_replica(root: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    """Both servers under ``root``, yielded once the replica reports its link up
    (blocking: the link takes a fraction of a second), stopped on exit."""
    with EmbeddedRedis(root / "primary") as primary:
        replica = EmbeddedRedis(
            root / "replica",
            extra_args=["--replicaof", "127.0.0.1", str(primary.port), "--repl-diskless-sync-delay", "0"],
        )
        with replica:
            deadline = time.monotonic() + LINK_TIMEOUT_S
            with redis.Redis(port=replica.port) as r:
                while r.info("replication").get("master_link_status") != "up":
                    assert time.monotonic() < deadline, "the replica did not link up"
                    time.sleep(0.05)
            yield primary, replica
