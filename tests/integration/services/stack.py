"""A real local stack for service tests: embedded Redis, backend, worker and relay
as processes on free 127.0.0.1 ports, with keys for two tenants.

Starting a stack costs 15-20 s on a loaded 2-core machine, so the modules that need
only the default settings share one per xdist worker (``shared_stack`` in
tests/integration/conftest.py) and each takes tenants of its own from it
(:meth:`LocalStack.with_own_tenants`): their rulesets, decisions, result cache,
idempotency keys and rate-limit buckets are theirs alone, as with a stack of their own."""

from __future__ import annotations

import json
import os
import time
import uuid
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

#: who -> (API key, key id, tenant, scopes)
Keys = dict[str, tuple[str, str, str, list[str]]]

KEYS: Keys = {
    # tenant acme: an author+decider, an audit-only key, a key of its own for the rate-limit test
    "acme": ("ent_acme_author_key", "acme-author", "acme", ["author", "decide"]),
    "acme_audit": ("ent_acme_audit_key", "acme-audit", "acme", ["audit"]),
    "acme_rate": ("ent_acme_rate_key", "acme-rate", "acme", ["decide", "author"]),
    "globex": ("ent_globex_admin_key", "globex-admin", "globex", ["admin"]),
}


class LocalStack:
    def __init__(self, stack: Stack, log: Path, keys: Keys = KEYS) -> None:
        self.stack = stack
        self.log = log
        self.url = stack.backend_url
        self.redis_url = stack.env["ENTAIL_REDIS_URL"]
        self.keys = keys

    def client(self, who: str = "acme", url: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key(who)}"} if who else {}
        return httpx.Client(base_url=url or self.url, headers=headers, timeout=30)

    def key(self, who: str) -> str:
        return self.keys[who][0]

    def key_id(self, who: str) -> str:
        return self.keys[who][1]

    def tenant(self, who: str) -> str:
        return self.keys[who][2]

    def with_own_tenants(self, label: str) -> LocalStack:
        """This stack seen by one test module: the keys of :data:`KEYS` again, for
        tenants (``acme-<label>-<random>``, ...) and key ids no other module uses,
        added to the keys file the backends follow (ENTAIL_API_KEYS_RELOAD_S), with
        the example rulesets published for the new acme as :func:`local_stack` does."""
        suffix = f"{label}-{uuid.uuid4().hex[:6]}"
        keys: Keys = {
            who: (f"{key}_{suffix.replace('-', '_')}", f"{key_id}-{suffix}", f"{tenant}-{suffix}", scopes)
            for who, (key, key_id, tenant, scopes) in KEYS.items()
        }
        keys_file = Path(self.stack.env["ENTAIL_API_KEYS_FILE"])
        entries = json.loads(keys_file.read_text())
        entries += [key_entry(key, key_id, tenant, scopes) for key, key_id, tenant, scopes in keys.values()]
        staged = keys_file.with_suffix(".staged")
        staged.write_text(json.dumps(entries, indent=2))
        staged.chmod(0o600)
        os.replace(staged, keys_file)  # whole or not at all: a backend never reads half a file
        view = LocalStack(self.stack, self.log, keys)
        deadline = time.monotonic() + 30
        with view.client("acme") as acme:
            while acme.get("/v1/rulesets").status_code == 401:
                assert time.monotonic() < deadline, f"the backend never took the keys of {suffix}"
                time.sleep(0.05)
        self.stack.publish_examples(view.key("acme"))
        return view


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
