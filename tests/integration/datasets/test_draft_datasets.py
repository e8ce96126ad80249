"""The playground's draft route reads datasets (issue 16, the web app's "run against a
dataset version"), through the real local stack: ``POST /v1/rulesets/evaluate`` with
``datasets: {binding: selector}`` evaluates over that version and names the versions
it read; an unbound name reads ``NAME@latest``; the answer and its result hash equal
a decision's over the same version; selectors that name nothing, or a binding the
program does not declare, are 422s naming the binding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..services.stack import LocalStack, decide
from .test_bindings import CASE, EXPENSES, NDJSON, ORG_V1, ORG_V2, QUERY, approvers, problem


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    return shared_stack.with_own_tenants("drafts")


@pytest.fixture(scope="module")
def acme(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client("acme") as c:
        yield c


def draft(acme: httpx.Client, source: str = EXPENSES, **extra: Any) -> httpx.Response:
    return acme.post("/v1/rulesets/evaluate", json={"source": source, "facts": CASE, "query": QUERY, **extra})


def test_a_draft_runs_against_the_chosen_dataset_version(acme: httpx.Client) -> None:
    versions = []
    for content in (ORG_V1, ORG_V2):
        made = acme.post("/v1/datasets/orgchart", content=content, headers=NDJSON)
        assert made.status_code == 201, made.text
        versions.append(made.json())
    v1, v2 = versions

    first = draft(acme, datasets={"orgchart": "orgchart@1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert approvers({"status": "succeeded", **body}) == {"alice", "bob"}
    assert body["datasets"] == [{"binding": "orgchart", "name": "orgchart", "version": 1, "hash": v1["hash"]}]

    # bob's limit drops in v2; an unbound name reads the latest version
    for extra in ({"datasets": {"orgchart": "orgchart@2"}}, {}):
        second = draft(acme, **extra)
        assert second.status_code == 200, second.text
        assert approvers({"status": "succeeded", **second.json()}) == {"alice"}
        assert second.json()["datasets"][0]["hash"] == v2["hash"]

    # the same answer and result hash as a decision of a version bound to v1
    published = acme.post(
        "/v1/rulesets", json={"name": "exp_draft", "source": EXPENSES, "datasets": {"orgchart": "orgchart@1"}}
    )
    assert published.status_code == 201, published.text
    decided = decide(acme, ruleset="exp_draft", facts=CASE, query=QUERY, wait_ms=20000)
    assert decided.status_code in (200, 201), decided.text
    assert decided.json()["result_hash"] == body["result_hash"]


def test_a_drafts_dataset_selectors_are_checked(acme: httpx.Client) -> None:
    acme.post("/v1/datasets/orgchart", content=ORG_V1, headers=NDJSON)
    missing = draft(acme, datasets={"orgchart": "orgchart@99"})
    assert problem(missing, 422, "dataset-not-found")["binding"] == "orgchart"
    assert "/datasets/orgchart" in missing.json()["detail"]
    undeclared = draft(acme, datasets={"orgchart": "orgchart@1", "rates": "rates@1"})
    assert problem(undeclared, 422, "dataset-not-declared")["binding"] == "rates"
    # a program without %@dataset reads none: a binding for it is not declared
    plain = draft(acme, source="p(1).", query=["p(X)"], datasets={"orgchart": "orgchart@1"})
    problem(plain, 422, "dataset-not-declared")
    # the declaration's text in a comment only: an ordinary draft
    commented = draft(acme, source="% no %@dataset here\np(1).", query=["p(X)"])
    assert commented.status_code == 200, commented.text
    assert commented.json().get("datasets") is None
    # a program that does not compile is its diagnostics, as without datasets
    broken = draft(acme, source=EXPENSES + "\nq(X) :- .")
    assert broken.status_code == 422, broken.text
