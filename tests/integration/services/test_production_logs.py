"""Production logs, read as Cloud Logging reads them: the real local stack runs
with ENTAIL_ENV=production; requests carry API keys, a trace header, a request id
and masked facts; then every line the backend, worker, relay and sink wrote must
be one JSON object with Cloud Logging's fields, and none may hold a key, a
secret or a masked value."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from support.waiting import wait_for

from .stack import KEYS, local_stack

PROJECT = "entail-log-test"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
SOURCE = "adult(P) :- age(P, A), A >= 18, ssn(P, _). #defined age/2. #defined ssn/2."
SSN = "987-65-4329"
NAME = "zelda-quux"
SERVICES = ("backend", "worker", "relay", "sink")


def _lines(log: Path) -> dict[str, list[dict[str, Any]]]:
    """Each service's lines, parsed; a line that is not one JSON object fails."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVICES}
    for raw in log.read_text().splitlines():
        name, bar, text = raw.partition("|")
        if not bar or name.strip() not in SERVICES:
            continue  # the stack's own lines (redis, up)
        entry = json.loads(text.strip())  # raises on a line that is not JSON
        assert isinstance(entry, dict), raw
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, raw
        assert entry["message"] and entry["time"].endswith("+00:00"), raw
        assert entry["logging.googleapis.com/labels"]["service"], raw
        out[name.strip()].append(entry)
    return out


def test_production_lines_are_cloud_logging_json_without_secrets(tmp_path: Path) -> None:
    mask_secret = secrets.token_urlsafe(24)
    env = {"ENTAIL_ENV": "production", "ENTAIL_MASK_SECRET": mask_secret, "ENTAIL_GCP_PROJECT": PROJECT}
    with local_stack(tmp_path, **env) as stack:
        push_secret = stack.stack.env["ENTAIL_PUSH_SECRET"]
        redis_url = stack.redis_url
        with stack.client("acme") as acme:
            published = acme.post(
                "/v1/rulesets", json={"name": "masked", "source": SOURCE, "masked_predicates": ["ssn/2"]}
            )
            assert published.status_code == 201, published.text
            facts = {"age": [[NAME, 30]], "ssn": [[NAME, SSN]]}
            decided = acme.post(
                "/v1/decisions",
                json={"ruleset": "masked", "facts": facts, "query": ["adult(P)"], "wait_ms": 15_000},
                headers={
                    "X-Request-Id": "req-logs-1",
                    "traceparent": TRACEPARENT,
                    "User-Agent": "log-test/1",
                },
            )
            assert decided.status_code == 200, decided.text
            assert decided.headers["X-Request-Id"] == "req-logs-1"
            decision_id = decided.json()["decision_id"]
            # errors carry the id too, in the header and the problem
            missing = acme.get("/v1/decisions/nope", headers={"X-Request-Id": "bad id with spaces"})
            assert missing.status_code == 404
            fresh = missing.headers["X-Request-Id"]
            assert fresh != "bad id with spaces" and missing.json()["request_id"] == fresh
        # a refused key (the guard's 401) and a key in the query string
        with stack.client("") as anon:
            refused = anon.get(
                f"/v1/rulesets?api_key={KEYS['acme'][0]}",
                headers={"Authorization": "Bearer ent_not_a_real_key_1"},
            )
            assert (
                refused.status_code == 401 and refused.json()["request_id"] == refused.headers["X-Request-Id"]
            )
        with stack.client("acme_audit") as audit:
            wait_for(
                lambda: audit.get(f"/v1/audit/decisions/{decision_id}").status_code == 200,
                what="the audit row",
            )
        # the worker's and the sink's lines about this decision have been written by now
        lines = wait_for(
            lambda: (
                (found := _lines(stack.log))
                and all(
                    any(
                        e["logging.googleapis.com/labels"].get("decision_id") == decision_id
                        for e in found[name]
                    )
                    for name in ("worker", "sink")
                )
                and found
            ),
            what="the worker's and the sink's lines of the decision",
        )

    # every service wrote structured lines
    for name in ("backend", "worker", "relay"):
        assert lines[name], f"no lines from {name}"
    access = [e for e in lines["backend"] if "httpRequest" in e]
    mine = [e for e in access if e["logging.googleapis.com/labels"].get("request_id") == "req-logs-1"]
    assert len(mine) == 1, access
    entry = mine[0]
    http = entry["httpRequest"]
    assert http["requestMethod"] == "POST" and http["requestUrl"] == "/v1/decisions"
    assert http["status"] == 200 and http["userAgent"] == "log-test/1" and http["remoteIp"] == "127.0.0.1"
    assert http["latency"].endswith("s") and int(http["responseSize"]) > 0
    assert entry["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert entry["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    labels = entry["logging.googleapis.com/labels"]
    assert labels["tenant"] == "acme" and labels["ruleset"] == "masked" and labels["version"] == "1"
    assert labels["decision_id"] == decision_id and labels["service"] == "backend"
    # the worker's access line of the job names the decision it evaluated
    pushes = [
        e["logging.googleapis.com/labels"]
        for e in lines["worker"]
        if "httpRequest" in e and e["logging.googleapis.com/labels"].get("decision_id") == decision_id
    ]
    assert pushes and pushes[0]["tenant"] == "acme" and pushes[0]["ruleset"] == "masked", pushes
    assert pushes[0]["version"] == "1" and pushes[0]["service"] == "worker"
    # the sink's line of the stored row: the two latencies the SLOs' log metrics read
    stored = [
        e for e in lines["sink"] if e["logging.googleapis.com/labels"].get("decision_id") == decision_id
    ]
    assert stored, lines["sink"]
    assert stored[0]["decision_ms"] >= 0 and stored[0]["audit_lag_ms"] >= 0, stored[0]
    assert stored[0]["logging.googleapis.com/labels"]["ruleset"] == "masked"
    # the query string is never logged
    assert all("?" not in e["httpRequest"]["requestUrl"] for e in access)

    # nothing secret, anywhere in the log (prefixes and the stack's own lines included)
    text = stack.log.read_text()
    password = redis_url.split("://:", 1)[1].split("@", 1)[0] if "://:" in redis_url else None
    forbidden = [*(k[0] for k in KEYS.values()), "ent_not_a_real_key_1", push_secret, mask_secret, SSN, NAME]
    if password:
        forbidden.append(password)
    leaked = [value for value in forbidden if value in text]
    assert leaked == [], f"secrets in the logs: {leaked}"
