"""One decision, one trace, across every process: the real local stack runs with
a trace file per process (ENTAIL_TRACE_FILE with {service}); one uncached
decision and then a cache hit of it are made with a client's ``traceparent``;
once both are audited, the spans the backend, relay, worker and sink wrote must
share the client's trace id and link into one tree in the order of the
decision's path. The stack runs in production mode, so the backend's log line
of the request (Cloud Logging JSON) is checked to carry the same trace and the
request's span."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from support.waiting import wait_for

from entail.tracing import read_spans

from .stack import local_stack

PROJECT = "entail-trace-test"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
SOURCE = "adult(P) :- age(P, A), A >= 18. senior(P) :- adult(P), age(P, A), A >= 65. #defined age/2."

# the path of an uncached decision, root first: each span is an ancestor of the next
UNCACHED_PATH = [
    ("entail-backend", "POST /v1/decisions"),
    ("entail-backend", "decision.submit"),
    ("entail-backend", "bus.publish"),
    ("entail-relay", "relay.push"),
    ("entail-worker", "job.handle"),
    ("entail-worker", "job.complete"),
    ("entail-worker", "decision.publish"),
    ("entail-relay", "relay.push"),
    ("entail-sink", "sink.store"),
    ("entail-sink", "audit.insert"),
]
# a cache hit: served by the backend, published and audited as a decision of its own
CACHED_PATH = [
    ("entail-backend", "POST /v1/decisions"),
    ("entail-backend", "decision.submit"),
    ("entail-backend", "decision.publish"),
    ("entail-relay", "relay.push"),
    ("entail-sink", "sink.store"),
    ("entail-sink", "audit.insert"),
]


def _spans(tmp: Path) -> list[dict[str, Any]]:
    return [s for path in sorted(tmp.glob("spans-*.jsonl")) for s in read_spans(path)]


def _chain(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``span`` and its ancestors, root first; fails on a parent that is not there."""
    chain = [span]
    while chain[-1]["parent_span_id"] is not None:
        parent = chain[-1]["parent_span_id"]
        if parent == CALLER_SPAN:  # the client's span: outside the stack
            break
        assert parent in by_id, f"span {chain[-1]['name']} has a parent no process wrote: {parent}"
        chain.append(by_id[parent])
    return chain[::-1]


def _follows(chain: Iterable[dict[str, Any]], path: list[tuple[str, str]]) -> bool:
    """The chain passes through ``path``'s spans in order (other spans may lie between)."""
    steps = iter((s["service"], s["name"]) for s in chain)
    return all(step in steps for step in path)


def _audited(tmp: Path, *decision_ids: str) -> list[dict[str, Any]] | None:
    """Every span, once each decision's audit.insert and all its ancestors are written.
    A parent span ends after its child (the relay's push ends when the sink has
    answered), so the sink's spans can be in their file before the relay's."""
    spans = _spans(tmp)
    by_id = {s["span_id"]: s for s in spans}
    for decision_id in decision_ids:
        insert = next(
            (
                s
                for s in spans
                if s["name"] == "audit.insert" and s["attributes"].get("decision_id") == decision_id
            ),
            None,
        )
        if insert is None:
            return None
        span: dict[str, Any] | None = insert
        while span is not None and span["parent_span_id"] not in (None, CALLER_SPAN):
            span = by_id.get(span["parent_span_id"])
        if span is None:
            return None
    return spans


def _decide(acme: Any, facts: dict[str, Any], span: str) -> dict[str, Any]:
    response = acme.post(
        "/v1/decisions",
        json={"ruleset": "traced", "facts": facts, "query": ["senior(P)"], "wait_ms": 15_000},
        headers={"traceparent": f"00-{TRACE_ID}-{span}-01", "X-Request-Id": f"trace-{span}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "succeeded", body
    return body


def test_one_decision_is_one_trace_across_backend_relay_worker_and_sink(tmp_path: Path) -> None:
    env = {
        "ENTAIL_TRACE_FILE": str(tmp_path / "spans-{service}.jsonl"),
        "ENTAIL_ENV": "production",
        "ENTAIL_MASK_SECRET": secrets.token_urlsafe(24),
        "ENTAIL_GCP_PROJECT": PROJECT,
        "ENTAIL_TRACE_REDIS": "true",
    }
    with local_stack(tmp_path, **env) as stack, stack.client("acme") as acme:
        published = acme.post("/v1/rulesets", json={"name": "traced", "source": SOURCE})
        assert published.status_code == 201, published.text
        facts = {"age": [["ada", 70], ["bob", 12], [secrets.token_hex(4), 66]]}  # never decided before
        first = _decide(acme, facts, CALLER_SPAN)
        assert not first.get("cached"), first
        second = _decide(acme, facts, CALLER_SPAN)
        assert second.get("cached"), second
        spans = wait_for(
            lambda: _audited(tmp_path, first["decision_id"], second["decision_id"]),
            what="the sink's spans of both decisions",
            explain=lambda: stack.log.read_text()[-3000:],
        )
        log_text = stack.log.read_text()

    # every process wrote its spans to a file of its own
    assert {p.name for p in tmp_path.glob("spans-*.jsonl")} >= {
        f"spans-{s}.jsonl" for s in ("backend", "worker", "relay", "sink")
    }
    ours = [s for s in spans if s["trace_id"] == TRACE_ID]
    by_id = {s["span_id"]: s for s in ours}
    for decision, path in ((first, UNCACHED_PATH), (second, CACHED_PATH)):
        insert = next(
            s
            for s in ours
            if s["name"] == "audit.insert" and s["attributes"].get("decision_id") == decision["decision_id"]
        )
        chain = _chain(insert, by_id)
        assert _follows(chain, path), [(s["service"], s["name"]) for s in chain]
        # one tree: the request's server span is the root, below the caller's span
        assert chain[0]["name"] == "POST /v1/decisions" and chain[0]["parent_span_id"] == CALLER_SPAN
        # each process's span hangs below another process's span: one trace id throughout
        assert {s["service"] for s in chain} >= {"entail-backend", "entail-relay", "entail-sink"}
    assert all(s["trace_id"] == TRACE_ID for s in _chain(insert, by_id))

    # the engine's stages are children of the worker's job.handle, with the engine's stats
    handle = next(s for s in ours if s["name"] == "job.handle")
    assert handle["attributes"]["decision_id"] == first["decision_id"]
    assert handle["attributes"]["outcome"] == "succeeded"
    stages = {s["name"]: s for s in ours if s["name"].startswith("engine.")}
    assert set(stages) == {"engine.compile", "engine.evaluate", "engine.prove"}
    assert all(s["parent_span_id"] == handle["span_id"] for s in stages.values())
    evaluate = stages["engine.evaluate"]["attributes"]
    assert evaluate["entail.rounds"] >= 1 and evaluate["entail.input_facts"] == 3
    assert evaluate["entail.derived_facts"] >= 2 and evaluate["entail.cpu_ms"] >= 0
    assert stages["engine.prove"]["attributes"]["entail.answers"] == 2
    assert stages["engine.compile"]["start_ns"] <= stages["engine.evaluate"]["start_ns"]
    assert stages["engine.evaluate"]["end_ns"] <= stages["engine.prove"]["end_ns"]

    # with ENTAIL_TRACE_REDIS, the Redis commands of the decision are spans of its trace
    redis_services = {s["service"] for s in ours if s["attributes"].get("db.system") == "redis"}
    assert redis_services >= {"entail-backend", "entail-worker"}, redis_services

    # the backend's access line of the request carries the trace and the server span (logs.py)
    server = next(
        s
        for s in ours
        if s["name"] == "POST /v1/decisions" and s["service"] == "entail-backend" and s["kind"] == "SERVER"
    )
    lines = [json.loads(raw.partition("|")[2]) for raw in log_text.splitlines() if raw.startswith("backend")]
    access = [
        e
        for e in lines
        if "httpRequest" in e
        and e["logging.googleapis.com/labels"].get("request_id") == f"trace-{CALLER_SPAN}"
    ]
    assert access, "no access line of the traced request"
    assert all(e["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}" for e in access)
    assert server["span_id"] in {e["logging.googleapis.com/spanId"] for e in access}
