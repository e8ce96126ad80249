"""functions/batch_reason through functions-framework's test client, against bqemulator:
the ruleset comes from the BigQuery audit store's ``rulesets`` table, the program runs as
query jobs, and every run that resolved its ruleset leaves exactly one ``batch_runs`` row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from functions_framework import create_app

from entail.audit.bigquery_store import BigQueryAuditStore
from entail.models import RulesetRecord, utcnow
from entail.reasoning import compile

SOURCE = Path(__file__).resolve().parents[3] / "functions" / "batch_reason" / "main.py"
PROGRAM = """
reach(X, Y) :- edge(X, Y).
reach(X, Z) :- reach(X, Y), edge(Y, Z).
blocked(X) :- person(X, Age), Age < 18.
may_visit(P, X) :- person(P, _), home(P, H), reach(H, X), not blocked(P).
#show reach/2.
#show may_visit/2.
"""


@pytest.fixture(scope="module")
def bq_client(emulator: BigQueryEmulator) -> Iterator[Any]:
    client = emulator.client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def world(emulator: BigQueryEmulator, bq_client: Any) -> Iterator[dict[str, str]]:
    """An audit dataset with the ruleset ``visits@1`` of tenant ``acme``, and input tables."""
    tag = uuid.uuid4().hex[:8]
    audit, inputs = f"audit_{tag}", f"wh_{tag}"
    store = BigQueryAuditStore(emulator.client(), dataset=audit, retry=None)
    store.ensure_tables()
    rs = compile(PROGRAM)
    store.put_ruleset(
        RulesetRecord(
            tenant="acme",
            name="visits",
            version=1,
            hash=rs.hash,
            source=PROGRAM,
            published_at=utcnow(),
            published_by="test",
        )
    )
    bq_client.create_dataset(inputs, retry=None)
    for sql in (
        f"CREATE TABLE {inputs}.edges (src INT64, dst INT64)",
        f"INSERT INTO {inputs}.edges VALUES (1, 2), (2, 3), (3, 4)",
        f"CREATE TABLE {inputs}.people (name STRING, age INT64, home INT64)",
        f"INSERT INTO {inputs}.people VALUES ('ann', 31, 2), ('bob', 12, 1)",
    ):
        bq_client.query(sql, retry=None).result(retry=None)
    yield {"audit": audit, "inputs": inputs, "hash": rs.hash, "project": emulator.project}
    for ds in (audit, inputs):
        bq_client.delete_dataset(ds, delete_contents=True, not_found_ok=True, retry=None)
    store.close()


@pytest.fixture
def client(
    world: dict[str, str], emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ENTAIL_BIGQUERY_DATASET", world["audit"])
    monkeypatch.setenv("ENTAIL_BATCH_WORK_DATASET", f"work_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("ENTAIL_BATCH_MAX_BYTES", "1000000")
    app = create_app(target="batch_reason", source=str(SOURCE))
    yield app.test_client()
    import sys

    main = sys.modules.get("main")
    if main is not None and hasattr(main, "reset"):
        main.reset()


def body(world: dict[str, str], **changes: Any) -> dict[str, Any]:
    inp = world["inputs"]
    out: dict[str, Any] = {
        "tenant": "acme",
        "ruleset": "visits@1",
        "inputs": {
            "edge": f"{inp}.edges",
            "person": {"table": f"{inp}.people", "columns": ["name", "age"]},
            "home": {"table": f"{inp}.people", "columns": ["name", "home"]},
        },
        "destination": f"dest_{uuid.uuid4().hex[:8]}",
    }
    out.update(changes)
    return out


def batch_rows(bq_client: Any, world: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    sql = (
        f"SELECT * FROM `{world['project']}.{world['audit']}.batch_runs`"
        f" WHERE completed_at >= TIMESTAMP '2020-01-01' AND batch_run_id = '{run_id}'"
    )
    return [dict(r.items()) for r in bq_client.query(sql, retry=None).result(retry=None)]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.slow
def test_happy_path_runs_writes_outputs_and_one_audit_row(
    client: Any, world: dict[str, str], bq_client: Any
) -> None:
    request = body(world, outputs=["may_visit/2", "reach/2"])
    resp = client.post("/", json=request)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert doc["status"] == "succeeded"
    assert doc["ruleset"] == {"name": "visits", "version": 1, "hash": world["hash"]}
    rows = {o["predicate"]: o["rows"] for o in doc["outputs"]}
    assert rows == {"may_visit/2": 2, "reach/2": 6}
    jobs = doc["jobs"]
    assert jobs["jobs"] > 10 and jobs["dry_runs"] >= 3
    # bqemulator's dry runs report 0 bytes: the estimate is the inputs' logical size
    assert jobs["estimate_method"] == "logical-size"
    assert jobs["estimated_bytes"] == 6 * 8 + 2 * (8 + 2 + 3) + 2 * (8 + 2 + 3)
    assert doc["manifest"]["schema"] == "entail.batch.manifest.v1"
    table = f"{world['project']}.{request['destination']}.may_visit"
    got = sorted(tuple(r.values()) for r in bq_client.query(f"SELECT * FROM `{table}`", retry=None).result())
    assert got == [("ann", 3), ("ann", 4)]  # bob is blocked; home 2 reaches 3, 4

    (row,) = batch_rows(bq_client, world, doc["batch_run_id"])
    assert (row["tenant"], row["ruleset_name"], row["ruleset_version"]) == ("acme", "visits", 1)
    assert (row["ruleset_hash"], row["status"], row["dialect"]) == (world["hash"], "succeeded", "bigquery")
    assert row["error"] is None
    assert _json(row["outputs"]) == {
        "may_visit/2": {"table": f"`{table}`", "rows": 2},
        "reach/2": {"table": f"`{world['project']}.{request['destination']}.reach`", "rows": 6},
    }
    inputs = _json(row["inputs"])
    edges = bq_client.get_table(f"{world['project']}.{world['inputs']}.edges", retry=None)
    assert inputs["edge"] == {
        "source": f"{world['inputs']}.edges",
        "rows": 3,
        "snapshot_time": edges.modified.isoformat(),
    }
    assert inputs["person"]["rows"] == 2
    assert _json(row["stats"])["jobs"] == jobs["jobs"]
    assert row["completed_at"] >= row["started_at"]
    bq_client.delete_dataset(request["destination"], delete_contents=True, retry=None)


@pytest.mark.slow
def test_over_the_byte_cap_is_refused_before_any_work(
    client: Any, world: dict[str, str], bq_client: Any
) -> None:
    request = body(world, limits={"max_bytes": 50})
    resp = client.post("/", json=request)
    assert resp.status_code == 413
    assert resp.mimetype == "application/problem+json"
    doc = resp.get_json()
    assert doc["type"].endswith("/limit-scanned-bytes")
    assert doc["limit"] == 50 and doc["value"] > 50
    assert "scanned bytes limit exceeded" in doc["detail"]
    (row,) = batch_rows(bq_client, world, doc["batch_run_id"])
    assert row["status"] == "failed"
    assert _json(row["error"])["code"] == "limit-scanned-bytes"
    assert _json(row["outputs"]) == {}
    tables = list(bq_client.list_tables(request["destination"], retry=None))
    assert tables == []  # nothing was evaluated or written
    bq_client.delete_dataset(request["destination"], delete_contents=True, not_found_ok=True, retry=None)


def test_the_configured_cap_bounds_the_request(client: Any, world: dict[str, str]) -> None:
    resp = client.post("/", json=body(world, limits={"max_bytes": 2_000_000}))
    assert resp.status_code == 422
    assert resp.get_json()["detail"] == "limits.max_bytes = 2000000 is above the configured maximum 1000000"


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"tenant": None}, 422, "'tenant' is required"),
        ({"tenant": "a b"}, 422, "'tenant' must be a tenant id"),
        ({"ruleset": "visits"}, 422, "give an exact version, 'name@version'"),
        ({"ruleset": {"name": "visits", "version": 0}}, 422, "must be an integer >= 1"),
        ({"destination": "no-such.dataset"}, 422, "'destination' must be a BigQuery dataset name"),
        ({"inputs": {"Edge": "x.y"}}, 422, "inputs: input 'Edge': not a predicate name"),
        (
            {"inputs": {"edge": {"table": "x.y", "query": "SELECT 1"}}},
            422,
            "give exactly one of 'table' and 'query'",
        ),
        ({"outputs": ["reach"]}, 422, "not a predicate signature"),
        ({"limits": {"max_rows": -1}}, 422, "limits.max_rows must be a non-negative integer"),
        ({"extra": 1}, 422, "unknown field(s): extra"),
        ({"ruleset": "visits@9"}, 404, "ruleset visits@9 of tenant 'acme' does not exist"),
        ({"tenant": "other"}, 404, "of tenant 'other' does not exist"),
    ],
)
def test_bad_requests_are_precise_problems(
    client: Any, world: dict[str, str], change: dict[str, Any], status: int, detail: str
) -> None:
    request = {k: v for k, v in body(world, **change).items() if v is not None}
    resp = client.post("/", json=request)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    assert detail in resp.get_json()["detail"]


def test_transport_errors(client: Any) -> None:
    assert client.get("/").status_code == 405
    resp = client.post("/", data="{not json", content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["detail"].startswith("the body is not JSON")
    assert client.post("/", data="x", content_type="text/plain").status_code == 415
    assert client.post("/", json=[1]).status_code == 422


@pytest.mark.slow
def test_an_input_the_program_cannot_use_fails_with_one_audit_row(
    client: Any, world: dict[str, str], bq_client: Any
) -> None:
    inp = world["inputs"]
    cases = [
        ({"edge": f"{inp}.people"}, "has 3 column(s) but 'edge' has 2 argument(s)"),
        ({"edge": f"{inp}.missing"}, "BigQuery: "),
        ({"unused": f"{inp}.edges"}, "the program never uses this predicate"),
    ]
    for inputs, detail in cases:
        request = body(world, inputs=inputs)
        resp = client.post("/", json=request)
        assert resp.status_code == 422, resp.get_data(as_text=True)
        doc = resp.get_json()
        assert detail in doc["detail"]
        (row,) = batch_rows(bq_client, world, doc["batch_run_id"])
        assert row["status"] == "failed" and _json(row["error"])["code"] == "invalid-batch-input"
        bq_client.delete_dataset(request["destination"], delete_contents=True, not_found_ok=True, retry=None)
