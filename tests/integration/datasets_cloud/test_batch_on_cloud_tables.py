"""The SQL batch path reads what the cloud store loaded: a version uploaded through
:class:`CloudDatasetStore` is found by ``bigquery_dataset`` (same table name, same
columns) and the batch's model is the online engine's over the same facts. The
tenant and dataset names need escaping in BigQuery, and an older version of the
same predicates is in the same tables: only the bound version is read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from sql.harness import atoms, read_outputs

from entail import reasoning
from entail.datasets.cloud_store import CloudDatasetStore
from entail.datasets.port import UploadPart
from entail.reasoning.sql import run_batch
from entail.reasoning.sql.bigquery_backend import BigQueryBackend
from entail.reasoning.sql.datasets import bigquery_dataset

PROGRAM = """\
above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
rich(P) :- limit(P, L), L > 500.
"""
OLD = [["manages", "alice", "zed"], ["limit", "zed", 9000]]
NEW = [
    ["manages", "alice", "bob"],
    ["manages", "bob", "carol"],
    ["manages", "carol", "dave"],
    ["limit", "alice", 10000],
    ["limit", "bob", 1000],
    ["limit", "carol", 50],
]
NEW_TEXT = (
    "manages(alice,bob). manages(bob,carol). manages(carol,dave). "
    "limit(alice,10000). limit(bob,1000). limit(carol,50).\n"
)


def ndjson(lines: list[list[Any]]) -> UploadPart:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"".join(orjson.dumps(line) + b"\n" for line in lines)

    return UploadPart(format="ndjson", chunks=chunks())


@pytest.mark.slow  # a batch run's queries on bqemulator take seconds
async def test_the_batch_path_reads_the_bound_version_the_store_loaded(
    store: CloudDatasetStore, emulator: BigQueryEmulator, bq_dataset: str
) -> None:
    tenant = f"t_{uuid.uuid4().hex[:6]}"  # '_' and '.' are escaped in the table name
    await store.ingest(tenant, "org.chart", [ndjson(OLD)], created_by="k1")
    version, created = await store.ingest(tenant, "org.chart", [ndjson(NEW)], created_by="k1")
    assert created and version.version == 2
    client = emulator.client()
    tag = uuid.uuid4().hex[:10]
    try:
        dataset = bigquery_dataset(
            "orgchart",
            [(("manages", 2), ("const", "const")), (("limit", 2), ("const", "int"))],
            project=client.project,
            dataset=bq_dataset,
            tenant=tenant,
            name="org.chart",
            version=version.version,
            hash=version.hash,
        )
        rs = reasoning.compile(PROGRAM)
        backend = BigQueryBackend(client, work_dataset=f"work_{tag}", dest_dataset=f"out_{tag}", retry=None)
        manifest = run_batch(rs, backend, {}, outputs=[("above", 2), ("rich", 1)], datasets=[dataset])
        expected = reasoning.compile(PROGRAM + NEW_TEXT).evaluate({}).model_atoms()
        assert atoms(read_outputs(backend, manifest)) == sorted(
            a for a in expected if a.startswith(("above(", "rich("))
        )
        assert "above(alice,dave)" in expected and "above(alice,zed)" not in expected
        (used,) = manifest.to_json()["datasets"]
        assert (used["version"], used["hash"]) == (2, version.hash)
        assert used["predicates"]["manages/2"]["rows"] == 3
    finally:
        for name in (f"work_{tag}", f"out_{tag}"):
            client.delete_dataset(name, delete_contents=True, not_found_ok=True, retry=None)
        client.close()
