"""functions/batch_reason over datasets, against bqemulator: the versions are loaded by the
cloud store's own loader (``DatasetTables``), the request binds each ``%@dataset`` to an
exact version, the run reads the per-predicate tables filtered on it, and the answer and
the one ``batch_runs`` row record the versions read."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from functions_framework import create_app

from entail.audit.bigquery_store import BigQueryAuditStore
from entail.datasets.bigquery_tables import DatasetTables
from entail.datasets.port import DatasetVersion, PredicateStats
from entail.models import RulesetRecord, utcnow
from entail.reasoning import compile

from .dataset_fixtures import content_hash, write_parquet_version

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "batch_reason" / "main.py"
PROGRAM = """\
%@dataset orgchart: manages(const, const), limit(const, int), frozen(const).

above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L, not frozen(M).
#show may_approve/2.
#show above/2.
"""
ORG = {
    "manages": [["alice", "bob"], ["bob", "carol"]],
    "limit": [["alice", 10000], ["bob", 1000]],
    "frozen": [],  # no rows: the cloud store makes no table for it
}
ARITIES = {"manages": 2, "limit": 2, "frozen": 1}


@pytest.fixture(scope="module")
def world(
    bq_emulator: BigQueryEmulator, bq_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    audit, inputs, datasets = f"audit_{tag}", f"wh_{tag}", f"ds_{tag}"
    store = BigQueryAuditStore(bq_emulator.client(), dataset=audit, retry=None)
    store.ensure_tables()
    rs = compile(PROGRAM)
    store.put_ruleset(
        RulesetRecord(
            tenant="acme",
            name="expenses",
            version=1,
            hash=rs.hash,
            source=PROGRAM,
            published_at=utcnow(),
            published_by="test",
        )
    )
    tables = DatasetTables(bq_client, datasets, retries=False)
    tables.ensure_dataset()
    digest = content_hash(ORG, ARITIES)
    for number, facts in (
        (1, {"manages": [["carol", "bob"]], "limit": [["carol", 1]], "frozen": []}),
        (2, ORG),
    ):
        directory = tmp_path_factory.mktemp(f"v{number}")
        write_parquet_version(directory, facts, ARITIES)
        version = DatasetVersion(
            tenant="acme",
            name="orgchart",
            version=number,
            hash=content_hash(facts, ARITIES),
            predicates=tuple(PredicateStats(p, ARITIES[p], len(rows)) for p, rows in facts.items()),
            facts=sum(len(rows) for rows in facts.values()),
            bytes=0,
            created_at=utcnow(),
            created_by="test",
        )
        tables.load(version, directory)
    bq_client.create_dataset(inputs, retry=None)
    for sql in (
        f"CREATE TABLE {inputs}.expenses (id STRING, employee STRING, amount STRING)",
        f"INSERT INTO {inputs}.expenses VALUES ('\"e1\"', 'carol', '500'), ('\"e2\"', 'carol', '5000')",
    ):
        bq_client.query(sql, retry=None).result(retry=None)
    yield {
        "audit": audit,
        "inputs": inputs,
        "datasets": datasets,
        "hash": digest,
        "project": bq_emulator.project,
    }
    for ds in (audit, inputs, datasets):
        bq_client.delete_dataset(ds, delete_contents=True, not_found_ok=True, retry=None)
    store.close()


@pytest.fixture
def client(
    world: dict[str, Any], bq_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    for key, value in bq_emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ENTAIL_BIGQUERY_DATASET", world["audit"])
    monkeypatch.setenv("ENTAIL_DATASET_BQ_DATASET", world["datasets"])
    monkeypatch.setenv("ENTAIL_BATCH_WORK_DATASET", f"work_{uuid.uuid4().hex[:8]}")
    app = create_app(target="batch_reason", source=str(SOURCE))
    yield app.test_client()
    main = sys.modules.get("main")
    if main is not None and hasattr(main, "reset"):
        main.reset()


def _body(world: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tenant": "acme",
        "ruleset": "expenses@1",
        "inputs": {"expense": {"table": f"{world['inputs']}.expenses", "encoding": "clingo"}},
        "destination": f"dest_{uuid.uuid4().hex[:8]}",
        "datasets": {"orgchart": {"name": "orgchart", "version": 2, "hash": world["hash"]}},
    }
    out.update(changes)
    return out


@pytest.mark.slow
def test_the_run_reads_the_bound_version_and_records_it(
    client: Any, world: dict[str, Any], bq_client: Any
) -> None:
    answer = client.post("/", json=_body(world))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    result = answer.get_json()
    assert result["datasets"] == [
        {"binding": "orgchart", "name": "orgchart", "version": 2, "hash": world["hash"]}
    ]
    rows = {o["predicate"]: o["rows"] for o in result["outputs"]}
    # version 2: alice > bob > carol; e1 (500): bob, alice; e2 (5000): alice (version 1 would give none)
    assert rows == {"above/2": 3, "may_approve/2": 3}
    read = result["manifest"]["datasets"][0]["predicates"]
    assert read["manages/2"]["rows"] == 2 and read["frozen/1"]["rows"] == 0
    sql = (
        f"SELECT inputs FROM `{world['project']}.{world['audit']}.batch_runs`"
        f" WHERE completed_at >= TIMESTAMP '2020-01-01' AND batch_run_id = '{result['batch_run_id']}'"
    )
    (row,) = [dict(r.items()) for r in bq_client.query(sql, retry=None).result(retry=None)]
    inputs = json.loads(row["inputs"]) if isinstance(row["inputs"], str) else row["inputs"]
    assert inputs["manages"]["dataset"] == {
        "binding": "orgchart",
        "name": "orgchart",
        "version": 2,
        "hash": world["hash"],
    }
    assert inputs["manages"]["rows"] == 2 and "version = 2" in inputs["manages"]["source"]


@pytest.mark.slow
def test_bindings_must_match_the_program(client: Any, world: dict[str, Any]) -> None:
    answer = client.post("/", json=_body(world, datasets={}))
    assert answer.status_code == 422
    problem = answer.get_json()
    assert problem["type"].endswith("dataset-not-bound") and "'orgchart'" in problem["detail"]
    answer = client.post("/", json=_body(world, datasets={"orgchart": "orgchart@2", "rates": "rates@1"}))
    assert answer.status_code == 422 and answer.get_json()["type"].endswith("dataset-not-declared")
    answer = client.post("/", json=_body(world, datasets={"orgchart": "orgchart@prod"}))
    assert answer.status_code == 422 and "exact version" in answer.get_json()["detail"]
