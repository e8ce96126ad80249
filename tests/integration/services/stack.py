"""A real local stack for service tests: embedded Redis, backend, worker and relay
as processes on free 127.0.0.1 ports, with keys for two tenants."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from entail_dev.stack import Stack

from entail.auth import key_entry
from entail.net import free_port
from entail.settings import Settings

T = TypeVar("T")

KEYS = {
    # tenant acme: an author+decider, an audit-only key, a key of its own for the rate-limit test
    "acme": ("ent_acme_author_key", "acme-author", "acme", ["author", "decide"]),
    "acme_audit": ("ent_acme_audit_key", "acme-audit", "acme", ["audit"]),
    "acme_rate": ("ent_acme_rate_key", "acme-rate", "acme", ["decide", "author"]),
    "globex": ("ent_globex_admin_key", "globex-admin", "globex", ["admin"]),
}


class LocalStack:
    def __init__(self, stack: Stack, log: Path) -> None:
        self.stack = stack
        self.log = log
        self.url = stack.backend_url
        self.redis_url = stack.env["ENTAIL_REDIS_URL"]

    def client(self, who: str = "acme", url: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {KEYS[who][0]}"} if who else {}
        return httpx.Client(base_url=url or self.url, headers=headers, timeout=30)


@contextmanager
def local_stack(tmp: Path, **env: str) -> Iterator[LocalStack]:
    settings = Settings(
        data_dir=tmp, backend_port=free_port(), worker_port=free_port(), audit_sink_port=free_port()
    )
    extra_env = {
        "ENTAIL_DATA_DIR": str(tmp),
        "ENTAIL_RATE_LIMIT_PER_S": "50",
        "ENTAIL_RATE_LIMIT_BURST": "200",
        "ENTAIL_MAX_BODY_BYTES": "200000",
        "ENTAIL_BATCH_MAX_CASES": "20",
        "ENTAIL_CLAIM_LEASE_MS": "1500",
        "ENTAIL_RELAY_BACKOFF_INITIAL_MS": "100",
        "ENTAIL_RELAY_BACKOFF_MAX_MS": "800",
        "ENTAIL_RELAY_ACK_DEADLINE_MS": "20000",
        # the default (CPUs - 1) runs one tenant's decisions one at a time on a
        # 2-core machine; these stacks test behaviour, not fairness (the fairness
        # and waiter tests set their own)
        "ENTAIL_TENANT_MAX_RUNNING": "4",
        **env,
    }
    keys = [key_entry(key, key_id, tenant, scopes) for key, key_id, tenant, scopes in KEYS.values()]
    log = tmp / "stack.log"
    with log.open("w") as out:
        stack = Stack(settings, out=out, colour=False, extra_env=extra_env, extra_keys=keys)
        try:
            stack.start(publish_examples=True)
            stack.publish_examples(KEYS["acme"][0])
            yield LocalStack(stack, log)
        except BaseException:
            out.flush()
            print(log.read_text()[-5000:])
            raise
        finally:
            stack.stop()


def decide(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1/decisions", json=body)


def events(client: httpx.Client, decision_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Read the SSE stream of a decision to its end."""
    out: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/v1/decisions/{decision_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out
