"""Datasets through the real backend over HTTP (the shared local stack, tenants of
this module's own): uploads in every format, problems with part/line/column,
scopes and tenant isolation, paging, diff, tags, progress; the SDK and the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from entail_client import Client, Unprocessable

from entail.cli import main as cli_main
from entail.datasets.ingest import canonical_hash

from ..services.stack import LocalStack

NDJSON = {"Content-Type": "application/x-ndjson"}
ORG = (
    b'{"predicate": "manages", "args": ["alice", "bob"]}\n'
    b'{"predicate": "manages", "args": ["bob", "carol"]}\n'
    b'["limit", "alice", 10000]\n'
    b'["limit", "bob", 1000]\n'
)


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    return shared_stack.with_own_tenants("datasets")


@pytest.fixture(scope="module")
def acme(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client("acme") as c:
        yield c


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    return body


def test_upload_get_versions_and_identical_content(acme: httpx.Client) -> None:
    first = acme.post("/v1/datasets/orgchart?tag=prod&description=org", content=ORG, headers=NDJSON)
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["version"], v1["facts"], v1["created"], v1["tags"]) == (1, 4, True, ["prod"])
    assert v1["hash"] == canonical_hash(
        {
            ("manages", 2): [("alice", "bob"), ("bob", "carol")],
            ("limit", 2): [("alice", 10000), ("bob", 1000)],
        }
    )
    again = acme.post("/v1/datasets/orgchart", content=b"\n".join(reversed(ORG.split(b"\n"))), headers=NDJSON)
    assert again.status_code == 200 and again.json()["version"] == 1 and again.json()["created"] is False
    assert acme.get("/v1/datasets/orgchart@prod").json()["hash"] == v1["hash"]
    assert acme.get(f"/v1/datasets/{v1['hash']}").json()["version"] == 1
    assert [d["name"] for d in acme.get("/v1/datasets").json()["datasets"]] == ["orgchart"]
    assert problem(acme.get("/v1/datasets/orgchart@9"), 404)["type"]


def test_csv_parquet_and_multipart(acme: httpx.Client, tmp_path: Path) -> None:
    csv_body = b'src,dst\n1,2\n2,"x, ""quoted"""\n-2147483648,2147483648\n'
    answer = acme.post(
        "/v1/datasets/graph?predicate=edge&header=true",
        content=csv_body,
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    rows = acme.get("/v1/datasets/graph/facts", params={"predicate": "edge"}).json()["rows"]
    # a decimal in the 32-bit range is an int, anything else a string; ints before strings
    assert rows == [[-2147483648, "2147483648"], [1, 2], [2, 'x, "quoted"']]
    parquet = tmp_path / "w.parquet"
    duckdb.sql(f"COPY (SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(n, s)) TO '{parquet}' (FORMAT parquet)")
    answer = acme.post(
        "/v1/datasets/weights?predicate=w",
        content=parquet.read_bytes(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert answer.status_code == 201, answer.text
    assert acme.get("/v1/datasets/weights/facts?predicate=w").json()["rows"] == [[1, "a"], [2, "b"]]
    files = [
        ("edge", ("edge.csv", io.BytesIO(b"1,2\n3,4\n"), "text/csv")),
        ("w", ("w.parquet", io.BytesIO(parquet.read_bytes()), "application/octet-stream")),
        ("more", ("more.ndjson", io.BytesIO(b'["node", 1]\n'), "application/x-ndjson")),
    ]
    answer = acme.post("/v1/datasets/multi", files=files)
    assert answer.status_code == 201, answer.text
    assert {p["name"]: p["rows"] for p in answer.json()["predicates"]} == {"edge": 2, "w": 2, "node": 1}


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        (b'["p", 1]\n["p", 1, 2]\n', "dataset-arity-mixed", "part body, line 2"),
        (b'["p", 1]\n["p", {"nested": 1}]\n', "dataset-value-type", "part body, line 2, column 1"),
        (b'["p", [1]]\n', "dataset-value-type", "part body, line 1, column 1"),
        (b'["p", 1.5]\n', "dataset-value-type", "part body, line 1, column 1"),
        (b'["p", true]\n', "dataset-value-type", "part body, line 1, column 1"),
        (b'["p", null]\n', "dataset-value-type", "part body, line 1, column 1"),
        (b'["p", 2147483648]\n', "dataset-value-out-of-range", "part body, line 1, column 1"),
        (b'["p", 1]\n["p", "\xff"]\n', "dataset-malformed-line", "part body, line 2"),
        (
            b'["p", 1]\n{"predicate": "p", "args": [1], "x": 2}\n',
            "dataset-malformed-line",
            "part body, line 2",
        ),
        (b'["p", 1]\n["p", 1\n', "dataset-malformed-line", "part body, line 2, column"),
        (b'["P", 1]\n', "dataset-predicate-name", "part body, line 1"),
        (b'["../etc", 1]\n', "dataset-predicate-name", "part body, line 1"),
        (b'"just a string"\n', "dataset-malformed-line", "part body, line 1"),
    ],
)
def test_hostile_ndjson(acme: httpx.Client, body: bytes, code: str, where: str) -> None:
    found = problem(acme.post("/v1/datasets/hostile", content=body, headers=NDJSON), 422)
    assert found["type"].endswith(code)
    assert str(found["where"]).startswith(where), found
    assert where in str(found["detail"])


def test_hostile_csv_parquet_names_and_sizes(acme: httpx.Client) -> None:
    csv = {"Content-Type": "text/csv"}
    found = problem(acme.post("/v1/datasets/h?predicate=e", content=b'1,2\n3,"open\n', headers=csv), 422)
    assert "line 2" in str(found["where"])
    found = problem(acme.post("/v1/datasets/h?predicate=e", content=b"1,2\n3\n", headers=csv), 422)
    assert found["type"].endswith("dataset-arity-mixed") and found["where"] == "part e, line 2"
    found = problem(acme.post("/v1/datasets/h?predicate=e", content=b"1,2\n\xff,1\n", headers=csv), 422)
    assert found["where"] == "part e, line 2"
    notparquet = {"Content-Type": "application/vnd.apache.parquet"}
    found = problem(
        acme.post("/v1/datasets/h?predicate=e", content=b"PAR1 not really", headers=notparquet), 422
    )
    assert found["type"].endswith("dataset-malformed-parquet")
    problem(acme.post("/v1/datasets/h", content=b"1,2\n", headers=csv), 422)  # no predicate
    problem(
        acme.post("/v1/datasets/h?predicate=e", content=b"1,2\n", headers={"Content-Type": "text/plain"}), 415
    )
    for bad in ("..", "a..b%2F..", "%2E%2E", "x" * 65, "0" * 64):
        answer = acme.post(f"/v1/datasets/{bad}", content=ORG, headers=NDJSON)
        assert 400 <= answer.status_code < 500, (bad, answer.status_code)
    huge = b'["p", "' + b"x" * (1 << 20) + b'"]\n'
    found = problem(acme.post("/v1/datasets/h", content=huge, headers=NDJSON), 413)
    assert found["type"].endswith("dataset-line-too-long")
    # an upload larger than the backend's JSON body limit streams past the guard
    big = b"".join(b'["n", %d]\n' % n for n in range(30_000))
    assert len(big) > 200_000
    assert acme.post("/v1/datasets/big", content=big, headers=NDJSON).json()["facts"] == 30_000


def test_scopes_and_tenants(stack: LocalStack, acme: httpx.Client) -> None:
    acme.post("/v1/datasets/private", content=ORG, headers=NDJSON).raise_for_status()
    with stack.client("acme_audit") as audit:
        problem(audit.post("/v1/datasets/private", content=ORG, headers=NDJSON), 403)
    with stack.client("globex") as globex:
        problem(globex.get("/v1/datasets/private"), 404)
        assert globex.get("/v1/datasets").json()["datasets"] == []
        digest = acme.get("/v1/datasets/private").json()["hash"]
        problem(globex.get(f"/v1/datasets/{digest}"), 404)
    with stack.client("") as anonymous:
        problem(anonymous.post("/v1/datasets/private", content=ORG, headers=NDJSON), 401)


def test_paging_diff_tags_and_progress(acme: httpx.Client) -> None:
    lines = b"".join(b'["n", %d]\n' % n for n in range(25))
    acme.post("/v1/datasets/paged", content=lines, headers=NDJSON).raise_for_status()
    seen: list[list[int | str]] = []
    params: dict[str, str | int] = {"predicate": "n", "page_size": 10}
    while True:
        page = acme.get("/v1/datasets/paged@1/facts", params=params).json()
        seen += page["rows"]
        if not page["next_page_token"]:
            break
        params["page_token"] = page["next_page_token"]
    assert seen == [[n] for n in range(25)]
    problem(acme.get("/v1/datasets/paged/facts", params={"predicate": "zz"}), 404)
    problem(acme.get("/v1/datasets/paged/facts", params={"predicate": "n", "page_token": "x"}), 422)
    changed = b"".join(b'["n", %d]\n' % n for n in range(5, 30))
    answer = acme.post(
        "/v1/datasets/paged", content=changed, headers={**NDJSON, "X-Entail-Upload-Id": "up-1"}
    )
    assert answer.status_code == 201
    diff = acme.get("/v1/datasets/paged/diff", params={"from": "1", "to": "2", "sample": 2}).json()
    assert diff["predicates"] == [
        {
            "predicate": "n",
            "arity": 1,
            "added": 5,
            "removed": 5,
            "added_sample": [[25], [26]],
            "removed_sample": [[0], [1]],
        }
    ]
    status = acme.get("/v1/datasets/paged/uploads/up-1").json()
    assert status == {"upload_id": "up-1", "bytes": len(changed), "facts": 25, "done": True}
    problem(acme.get("/v1/datasets/paged/uploads/nope"), 404)
    assert acme.put("/v1/datasets/paged/tags/prod", json={"version": 1}).json()["previous"] is None
    assert acme.put("/v1/datasets/paged/tags/prod", json={"version": 2}).json()["previous"] == 1
    moves = acme.get("/v1/datasets/paged/tags/prod").json()["moves"]
    assert [m["version"] for m in moves] == [2, 1]
    problem(acme.put("/v1/datasets/paged/tags/prod", json={"version": 7}), 404)
    problem(acme.put("/v1/datasets/paged/tags/Bad!", json={"version": 1}), 422)
    assert [v["version"] for v in acme.get("/v1/datasets/paged/versions").json()["versions"]] == [2, 1]


def test_sdk_and_cli(stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "org.ndjson"
    source.write_bytes(ORG)
    calls: list[tuple[int, int]] = []
    with Client(stack.url, api_key=stack.key("acme")) as client:
        version = client.push_dataset(
            "sdk", source, tag="prod", progress=lambda b, f: calls.append((b, f)), upload_id="sdk-up"
        )
        assert version["created"] and version["tags"] == ["prod"]
        assert calls[-1] == (len(ORG), 4)
        assert client.dataset_upload("sdk", "sdk-up") == {
            "upload_id": "sdk-up",
            "bytes": len(ORG),
            "facts": 4,
            "done": True,
        }
        assert list(client.dataset_facts("sdk@prod", "limit", page_size=1)) == [
            ["alice", 10000],
            ["bob", 1000],
        ]
        edges = tmp_path / "edge.csv"
        edges.write_text("1,2\n")
        v2 = client.push_dataset_parts("sdk", {"edge": edges}, base="sdk@1")
        assert {p["name"] for p in v2["predicates"]} == {"edge", "limit", "manages"}
        assert client.dataset_diff("sdk", 1, 2)["predicates"][0]["added"] == 1
        assert client.tag_dataset("sdk", "prod", 2)["previous"] == 1
        assert [v["version"] for v in client.dataset_versions("sdk")["versions"]] == [2, 1]
        bad = tmp_path / "bad.ndjson"
        bad.write_bytes(b'["p", 1]\n["p", {"a": 1}]\n')
        with pytest.raises(Unprocessable) as refused:
            client.push_dataset("sdk", bad)
        assert "line 2" in refused.value.detail
    service = ["--url", stack.url, "--key", stack.key("acme")]
    big = tmp_path / "nodes.ndjson"
    big.write_bytes(b"".join(b'["node", %d]\n' % n for n in range(2000)))
    assert cli_main(["dataset", "push", "cli", str(big), "--tag", "prod", *service]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["facts"] == 2000
    assert "2000 facts" in captured.err and "sent" in captured.err
    assert (
        cli_main(["dataset", "push", "cli", f"edge={tmp_path / 'edge.csv'}", "--base", "cli@1", *service])
        == 0
    )
    capsys.readouterr()
    assert cli_main(["dataset", "list", *service]) == 0
    assert "cli@2" in capsys.readouterr().out
    assert cli_main(["dataset", "diff", "cli", "1", "2", *service]) == 0
    assert "edge/2: +1 -0" in capsys.readouterr().out
    assert cli_main(["dataset", "tag", "cli", "prod", "2", *service]) == 0
    assert "cli@prod -> 2 (was 1)" in capsys.readouterr().out
    assert cli_main(["dataset", "push", "cli", str(tmp_path / "bad.ndjson"), *service]) == 2
    assert "part body, line 2, column 1" in capsys.readouterr().err


def test_an_upload_without_a_body_or_type_is_answered(acme: httpx.Client) -> None:
    # schemathesis once waited 60 s for this answer
    answer = acme.post("/v1/datasets/A?tag=a", headers={"X-Entail-Upload-Id": "0"}, timeout=10)
    assert problem(answer, 415)["type"]
    # an empty body is an empty dataset (an empty sanctions list is a list)
    answer = acme.post("/v1/datasets/A", headers={"Content-Type": "application/x-ndjson"}, timeout=10)
    assert answer.status_code == 201 and answer.json()["facts"] == 0 and answer.json()["predicates"] == []


async def test_the_async_sdk(stack: LocalStack, tmp_path: Path) -> None:
    from entail_client import AsyncClient

    source = tmp_path / "n.csv"
    source.write_text("1\n2\n3\n")
    seen: list[tuple[int, int]] = []
    async with AsyncClient(stack.url, api_key=stack.key("acme")) as client:
        version = await client.push_dataset(
            "async-sdk", source, predicate="n", progress=lambda b, f: seen.append((b, f))
        )
        assert version["facts"] == 3 and seen[-1] == (6, 3)
        rows = [row async for row in client.dataset_facts("async-sdk", "n", page_size=2)]
        assert rows == [[1], [2], [3]]
        assert (await client.dataset("async-sdk@1"))["hash"] == version["hash"]
        assert "async-sdk" in [d["name"] for d in (await client.datasets())["datasets"]]
        assert (await client.tag_dataset("async-sdk", "prod", 1))["version"] == 1
        assert (await client.dataset_tag_history("async-sdk", "prod"))["moves"][0]["version"] == 1
