"""Explanations in the web app (issue 17), in a real browser against the real stack
with the bundled loan example: a declined case's decision page shows its principal
reasons (highest weight first) and the why-not it asked for; in the playground a
query with no answers offers "Why not?", which shows the failing rule; the facts are
checked against the named ruleset's generated schema. axe-core
finds no serious or critical violation in those states."""

from __future__ import annotations

import json

from integration.services.stack import LocalStack, decide
from playwright.sync_api import Page, expect
from support.waiting import wait_for

from .conftest import ConsoleLog, screenshot
from .test_round2 import TIMEOUT_MS, axe_violations, dev_client, sign_in

# declined: a recent default (L03, weight 90), a 90% debt-to-income ratio (L02, 70),
# and a request above four times the income (L04, 60)
EVE = {
    "applicant": [["eve"]],
    "income": [["eve", 100000, "salary"]],
    "debt": [["eve", 90000, "car"]],
    "requested": [["eve", 1000000]],
    "credit_event": [["eve", "default", 2024]],
    "employment": [["eve", 60]],
}


def replace_text(page: Page, test_id: str, text: str) -> None:
    editor = page.get_by_test_id(test_id).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_reasons_and_why_not_on_the_loan_example(page: Page, stack: LocalStack, console: ConsoleLog) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    violations: list[str] = []
    with dev_client(stack) as http:
        made = decide(
            http,
            ruleset="loan",
            facts=EVE,
            query=["decision(A, D)"],
            explain_absent=['decision("eve",approved)'],
            wait_ms=5000,
        )
        assert made.status_code in (200, 201, 202), made.text
        decision_id = made.json()["decision_id"]
        wait_for(
            lambda: http.get(f"/v1/audit/decisions/{decision_id}").status_code == 200, what="the audit record"
        )

    # the decision page: principal reasons at the top, each answer's reasons, the why-not
    page.goto(f"{stack.url}/decisions/{decision_id}")
    sign_in(page, stack.stack.api_key)
    principal = page.get_by_role("region", name="Principal reasons")
    items = principal.get_by_role("listitem")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("L03 A loan default was recorded in 2024")
    expect(items.nth(1)).to_contain_text("L02 Debt-to-income ratio is 90%")
    expect(items.nth(2)).to_contain_text("L04")
    chips = page.get_by_role("list", name='Reasons for decision("eve",declined)').locator(".reason-code")
    expect(chips).to_have_text(["L03", "L02", "L04"])
    why = page.get_by_test_id("why-not")
    expect(why).to_contain_text('decision("eve",approved) does not hold')
    expect(why).to_contain_text('declined("eve") holds, so not declined(A) fails')
    violations += axe_violations(page, "decision with reasons and why-not")
    screenshot(page, "decision-reasons", full_page=True)

    # the playground: the loan example over eve's facts; decision(A, approved) has no answers
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    page.get_by_label("Example").select_option("loan")
    expect(page.get_by_test_id("diagnostics")).to_contain_text("No problems.")
    replace_text(page, "facts-editor", json.dumps(EVE))
    page.get_by_label("Query 1", exact=True).fill("decision(A, approved)")
    page.get_by_role("button", name="Run", exact=True).click()
    answers = page.get_by_role("region", name="Answers to decision(A, approved)")
    expect(answers).to_contain_text("No answers")
    answers.get_by_role("button", name="Why not?").click()
    atom = answers.get_by_label("Atom to explain")
    expect(atom).to_have_value("decision(A, approved)")  # not ground: the user writes the values
    atom.fill('decision("eve", approved)')
    answers.get_by_role("button", name="Explain").click()
    explained = answers.get_by_test_id("why-not")
    expect(explained).to_contain_text(
        "decision(A, approved) :- applicant(A), not declined(A), stable_job(A)."
    )
    expect(explained).to_contain_text('declined("eve") holds, so not declined(A) fails')
    expect(explained.locator(".reason-code").first).to_have_text("L03")
    violations += axe_violations(page, "playground why-not")
    screenshot(page, "playground-why-not", full_page=True)

    # facts checked against loan's generated schema (its %@input declarations) once the
    # ruleset is named: a months count sent as a string is flagged with its JSON pointer
    page.get_by_label("Ruleset name", exact=True).fill("loan")
    expect(page.get_by_test_id("facts-schema")).to_contain_text("loan (latest)")
    expect(page.get_by_test_id("facts-schema-problems")).to_have_count(0)
    replace_text(page, "facts-editor", json.dumps({**EVE, "employment": [["eve", "60"]]}))
    problems = page.get_by_test_id("facts-schema-problems")
    expect(problems).to_contain_text('/employment/0/1 must be integer (months), got "60"')
    violations += axe_violations(page, "playground facts schema")

    assert violations == []
    assert console.unexpected() == []
