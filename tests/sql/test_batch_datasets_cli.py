"""``entail batch --dataset``: the program's ``%@dataset`` bindings read from local
dataset versions — by selector through the local store (real Redis, real files) or
from a version directory — and recorded in the manifest."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import duckdb
import pytest

from entail.cli import main
from entail.datasets.local_store import LocalDatasetStore
from entail.datasets.port import UploadPart
from entail.settings import Settings
from entail.state.client import connect
from entail.state.embedded import EmbeddedRedis

from .dataset_fixtures import content_hash

PROGRAM = """\
%@dataset orgchart: manages(manager: const, employee: const), limit(person: const, amount: int).

above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""
V1 = ['["manages", "alice", "bob"]', '["limit", "alice", 10000]', '["limit", "bob", 1000]']
V2 = [*V1, '["manages", "bob", "carol"]', '["manages", "carol", "dave"]', '["limit", "carol", 50]']


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _push(settings: Settings, tenant: str, lines: list[str], tag: str | None = None) -> int:
    async def go() -> int:
        redis = connect(settings)
        try:
            store = LocalDatasetStore(redis, settings.data_dir / "datasets")
            parts = [UploadPart("ndjson", _chunks(("\n".join(lines) + "\n").encode()))]
            version, _ = await store.ingest(tenant, "orgchart", parts, created_by="test")
            if tag:
                await store.tag(tenant, "orgchart", tag, version.version, by="test")
            return version.version
        finally:
            await redis.aclose()

    return asyncio.run(go())


def _files(tmp_path: Path) -> tuple[Path, Path]:
    program = tmp_path / "expenses.lp"
    program.write_text(PROGRAM)
    expenses = tmp_path / "expenses.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES ('\"e1\"', 'dave', '40'), ('\"e2\"', 'dave', '5000'), "
        f"('\"e3\"', 'bob', '900')) t(id, employee, amount)) TO '{expenses}' (FORMAT parquet)"
    )
    return program, expenses


def _batch(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["batch", *args, "--quiet"], out, err)
    return code, out.getvalue(), err.getvalue()


def test_selectors_resolve_in_the_local_store_and_the_manifest_records_them(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTAIL_REDIS_URL", redis_url)
    monkeypatch.setenv("ENTAIL_DATA_DIR", str(tmp_path / "data"))
    settings = Settings(redis_url=redis_url, data_dir=tmp_path / "data")
    tenant = f"t{tmp_path.name[-8:].replace('_', '')}"
    assert _push(settings, tenant, V1, tag="prod") == 1
    assert _push(settings, tenant, V2) == 2
    program, expenses = _files(tmp_path)
    common = [str(program), "--input", f"expense={expenses}:clingo", "--tenant", tenant]

    # a tag: version 1 (alice manages bob only)
    code, out, err = _batch(*common, "--dataset", "orgchart=orgchart@prod")
    assert code == 0, err
    manifest = json.loads(out)
    (used,) = manifest["datasets"]
    assert (used["binding"], used["name"], used["version"]) == ("orgchart", "orgchart", 1)
    assert used["hash"] == content_hash(
        {"manages": [["alice", "bob"]], "limit": [["alice", 10000], ["bob", 1000]]},
        {"manages": 2, "limit": 2},
    )
    assert {o["predicate"]: o["rows"] for o in manifest["outputs"]} == {"above/2": 1, "may_approve/2": 1}

    # unnamed: the binding reads orgchart@latest, version 2 (the chain down to dave)
    code, out, err = _batch(*common)
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["datasets"][0]["version"] == 2
    assert manifest["datasets"][0]["predicates"]["manages/2"]["rows"] == 3
    # e1 (40, dave): carol (50), bob (1000), alice; e2 (5000, dave): alice; e3 (900, bob): alice
    assert {o["predicate"]: o["rows"] for o in manifest["outputs"]} == {"above/2": 6, "may_approve/2": 5}

    # a selector that resolves to nothing, a name the program does not declare
    code, _, err = _batch(*common, "--dataset", "orgchart=orgchart@9")
    assert code == 1 and "error[dataset-not-found]" in err and "'orgchart@9'" in err
    code, _, err = _batch(*common, "--dataset", "rates=rates@1")
    assert code == 1 and "error[dataset-not-declared]" in err and "orgchart" in err


def test_a_version_directory_is_read_without_the_store(tmp_path: Path, redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, data_dir=tmp_path / "data")
    _push(settings, "acme", V2)
    directory = tmp_path / "data" / "datasets" / "acme" / "orgchart" / "1"
    program, expenses = _files(tmp_path)
    # a plain CSV: %@input makes the employee column constants, which join the dataset's
    declared = tmp_path / "declared.lp"
    declared.write_text("%@input expense(id: string, employee: const, amount: int).\n" + PROGRAM)
    csv = tmp_path / "expenses.csv"
    csv.write_text("id,employee,amount\ne1,dave,40\ne2,dave,5000\ne3,bob,900\n")
    code, out, err = _batch(str(declared), "--input", f"expense={csv}", "--dataset", f"orgchart={directory}")
    assert code == 0, err
    manifest = json.loads(out)
    (used,) = manifest["datasets"]
    assert (used["name"], used["version"]) == ("orgchart", 1)
    # V2's facts (this store's version 1): alice > bob > carol > dave; e1: carol, bob, alice; e2, e3: alice
    assert {o["predicate"]: o["rows"] for o in manifest["outputs"]} == {"above/2": 6, "may_approve/2": 5}

    # the hash computed from the files is the store's
    async def stored_hash() -> str:
        redis = connect(settings)
        try:
            version = await LocalDatasetStore(redis, settings.data_dir / "datasets").resolve(
                "acme", "orgchart@1"
            )
            assert version is not None
            return version.hash
        finally:
            await redis.aclose()

    assert used["hash"] == asyncio.run(stored_hash())
    # a store selector without a tenant is refused before any work
    code, _, err = _batch(
        str(program), "--input", f"expense={expenses}:clingo", "--dataset", "orgchart=orgchart@1"
    )
    assert code == 1 and "--tenant" in err
