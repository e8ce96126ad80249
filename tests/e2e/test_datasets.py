"""Datasets in the web app (issue 16), in a real browser against the real stack: an
org chart uploaded through the API in two versions (the second tagged prod), an
expense ruleset bound to orgchart@prod and a decision made with it. The Datasets
page lists it; its page shows both versions with sizes and fact counts, the facts
and the diff; the decision page links the exact version it read; the playground
runs the same program against each version and gets each version's answers; a
share link made with v1 opens the playground with v1 chosen, one naming a version
that does not exist says so, and a damaged one is ignored with a reason.
axe-core finds no serious or critical violation on the way."""

from __future__ import annotations

import base64
import json

import httpx
from integration.services.stack import LocalStack, decide
from playwright.sync_api import Page, expect
from support.waiting import wait_for

from .conftest import ConsoleLog, screenshot
from .test_round2 import TIMEOUT_MS, axe_violations, dev_client, replace_program, sign_in

PROGRAM = """\
%@dataset orgchart: manages(manager: const, employee: const), limit(person: const, amount: int).
%@input expense(id: string, employee: const, amount: int).

above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""

V1 = [
    {"predicate": "manages", "args": ["alice", "bob"]},
    {"predicate": "manages", "args": ["bob", "carol"]},
    {"predicate": "limit", "args": ["alice", 10000]},
    {"predicate": "limit", "args": ["bob", 1000]},
]
# v2: carol gets a report, bob's limit drops below the expense
V2 = [
    *V1[:3],
    {"predicate": "limit", "args": ["bob", 500]},
    {"predicate": "manages", "args": ["carol", "dave"]},
]
CASE = {"expense": [["e1", "carol", 800]]}
QUERY = "may_approve(Id, M)"


def upload(http: httpx.Client, facts: list[dict[str, object]], **params: str) -> dict[str, object]:
    body = "".join(json.dumps(f) + "\n" for f in facts)
    made = http.post(
        "/v1/datasets/orgchart",
        content=body.encode(),
        params=params,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert made.status_code == 201, made.text
    version: dict[str, object] = made.json()
    return version


def test_datasets_pages_decision_and_playground(page: Page, stack: LocalStack, console: ConsoleLog) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    violations: list[str] = []
    with dev_client(stack) as http:
        first = upload(http, V1, description="the org chart")
        second = upload(http, V2, tag="prod")
        assert (first["version"], second["version"]) == (1, 2)
        published = http.post(
            "/v1/rulesets",
            json={"name": "expenses", "source": PROGRAM, "datasets": {"orgchart": "orgchart@prod"}},
        )
        assert published.status_code == 201, published.text
        made = decide(http, ruleset="expenses", facts=CASE, query=[QUERY], explain=True, wait_ms=5000)
        assert made.status_code in (200, 201, 202), made.text
        decision_id = made.json()["decision_id"]
        wait_for(
            lambda: http.get(f"/v1/audit/decisions/{decision_id}").status_code == 200, what="the audit record"
        )

    # the list: the latest version, its size and fact count
    page.goto(f"{stack.url}/datasets")
    sign_in(page, stack.stack.api_key)
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="orgchart"))
    expect(row).to_contain_text("v2")
    expect(row).to_contain_text("prod")
    expect(row.locator("td").nth(2)).to_have_text("5")
    violations += axe_violations(page, "datasets list")

    # one dataset: both versions (newest first), its facts, the diff, who binds it
    row.get_by_role("link", name="orgchart").click()
    versions = page.get_by_test_id("dataset-versions")
    expect(versions.locator("tbody tr")).to_have_count(2)
    expect(versions.locator("tbody tr").nth(0)).to_contain_text("limit/2: 2, manages/2: 3")
    expect(versions.locator("tbody tr").nth(1)).to_contain_text("limit/2: 2, manages/2: 2")
    facts = page.get_by_test_id("dataset-facts")
    expect(facts).to_contain_text("rows 1\u20132 of 2")
    page.get_by_role("button", name="Show diff").click()
    diff = page.get_by_test_id("dataset-diff")
    expect(diff).to_contain_text("Diff v1 → v2")
    expect(diff).to_contain_text('+ manages("carol","dave")')
    expect(diff).to_contain_text('+ limit("bob",500)')
    expect(diff).to_contain_text('\u2212 limit("bob",1000)')
    expect(page.get_by_test_id("dataset-uses")).to_contain_text("orgchart@prod")
    violations += axe_violations(page, "dataset page with diff")
    screenshot(page, "dataset", full_page=True)

    # the decision: the exact version it read, linked to that version's page
    page.goto(f"{stack.url}/decisions/{decision_id}")
    used = page.get_by_test_id("decision-datasets")
    expect(used).to_contain_text("orgchart v2")
    used.get_by_role("link", name="orgchart v2").click()
    expect(page.get_by_role("heading", name="Version 2")).to_be_visible()

    # the ruleset version names its binding
    page.goto(f"{stack.url}/rulesets/expenses")
    expect(page.get_by_test_id("version-datasets")).to_contain_text("orgchart → orgchart@prod")

    # the playground: the same program against v1, then v2
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    replace_program(page, PROGRAM)
    diagnostics = page.get_by_test_id("diagnostics")
    expect(diagnostics).not_to_contain_text("Checking")
    expect(diagnostics).not_to_contain_text(": error")
    editor = page.get_by_test_id("facts-editor").locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps(CASE))
    page.get_by_label("Query 1", exact=True).fill(QUERY)
    extra = page.get_by_role("button", name="Remove query 2")
    while extra.count() > 0:  # the example's other queries
        extra.click()
    binding = page.get_by_label("orgchart", exact=False)
    expect(binding).to_have_value("orgchart@latest")
    binding.select_option("orgchart@1")
    page.get_by_role("button", name="Run", exact=True).click()
    answers = page.get_by_role("region", name=f"Answers to {QUERY}")
    expect(answers).to_contain_text('may_approve("e1",bob)')
    expect(answers).to_contain_text('may_approve("e1",alice)')
    expect(page.get_by_test_id("run-datasets")).to_contain_text("orgchart v1")
    expect(page.get_by_role("tree").first).to_contain_text("dataset fact")
    screenshot(page, "playground-dataset", full_page=True)
    binding.select_option("orgchart@2")
    expect(page.get_by_test_id("stale")).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_test_id("stale")).to_have_count(0)
    expect(answers).to_contain_text('may_approve("e1",alice)')
    expect(answers).not_to_contain_text('may_approve("e1",bob)')
    expect(page.get_by_test_id("run-datasets")).to_contain_text("orgchart v2")
    violations += axe_violations(page, "playground with a dataset")

    # a share link carries the choice: made with v1, opened after the sender moved on to v2
    binding.select_option("orgchart@1")
    page.get_by_role("button", name="Share link").click()
    link = page.get_by_test_id("share-link").input_value()
    assert link.startswith(f"{stack.url}/playground#share=")
    binding.select_option("orgchart@2")
    open_share(page, stack, link.split("#", 1)[1])
    expect(page.get_by_test_id("share-opened")).to_contain_text("orgchart → orgchart@1")
    expect(binding).to_have_value("orgchart@1")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(answers).to_contain_text('may_approve("e1",bob)')
    expect(page.get_by_test_id("run-datasets")).to_contain_text("orgchart v1")
    violations += axe_violations(page, "playground opened from a share link")

    # a link whose version does not exist here: said plainly, the choice kept in view
    open_share(page, stack, share_fragment(PROGRAM, {"orgchart": "orgchart@9"})[1:])
    expect(page.get_by_test_id("dataset-choice-problem")).to_have_text(
        "The share link chose orgchart@9, which does not exist here: no such dataset, version or tag "
        "for this key. Choose another version to run it here."
    )
    expect(binding).to_have_value("orgchart@9")
    violations += axe_violations(page, "share link with a missing dataset version")

    # a damaged link: ignored with a reason, the draft left as it was
    open_share(page, stack, "share=!!")
    expect(page.get_by_test_id("share-ignored")).to_contain_text("The share link was ignored")
    expect(binding).to_have_value("orgchart@9")

    assert violations == []
    # the missing version's lookup is a 404 the browser logs
    assert console.unexpected("the server responded with a status of 404") == []


def share_fragment(source: str, datasets: dict[str, str]) -> str:
    """A version 2 share link's fragment, built as docs/web.md describes it."""
    payload = [2, source, json.dumps(CASE), [QUERY], datasets]
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return "#share=" + base64.urlsafe_b64encode(text).decode().rstrip("=")


def open_share(page: Page, stack: LocalStack, fragment: str) -> None:
    """Open /playground#<fragment> as a fresh page load (from the playground itself a
    fragment-only change is a same-document navigation, which loads no draft)."""
    page.goto(f"{stack.url}/datasets")
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    page.goto(f"{stack.url}/playground#{fragment}")
