"""The web app in a real browser against the real local stack: write a program,
see the error at its line, fix it, run it, read the proof, publish, decide, find
the decision in the audit trail and replay it identically. Saves a screenshot
of each page to docs/screenshots/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from integration.services.stack import LocalStack
from playwright.sync_api import Page, expect

from .conftest import ConsoleLog, screenshot
from .test_round2 import axe_violations

BROKEN = """% who may borrow
eligible(A) :- applicant(A), income(A, I, _), I >= 3000000.
decision(A, approved) :- eligible(A).
decision(A, declined) :- applicant(A), not eligible(B).
#defined applicant/1. #defined income/3.
"""
FIXED = BROKEN.replace("not eligible(B)", "not eligible(A)")
STRICTER = FIXED.replace("I >= 3000000", "I >= 6000000")
TIMEOUT_MS = 20_000


def sign_in(page: Page, stack: LocalStack, key: str) -> None:
    page.goto(stack.url + "/")
    expect(page.get_by_role("heading", name="Sign in to Entail")).to_be_visible()
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()


def replace_program(page: Page, text: str) -> None:
    editor = page.get_by_test_id("program-editor").locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_write_run_prove_publish_audit_replay(page: Page, stack: LocalStack, console: ConsoleLog) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(stack.url + "/")
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    screenshot(page, "signin")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    sign_in(page, stack, stack.stack.api_key)
    identity = page.get_by_test_id("identity")
    expect(identity).to_contain_text("dev")
    expect(identity).to_contain_text("admin")
    expect(page).to_have_url(re.compile(r"/playground$"))

    # a program with an unsafe variable on line 4: the error shows at that line
    replace_program(page, BROKEN)
    diagnostics = page.get_by_test_id("diagnostics")
    expect(diagnostics).to_contain_text("line 4, column 53")
    expect(diagnostics).to_contain_text("unsafe variable 'B'")
    lines = page.get_by_test_id("program-editor").locator(".cm-line")
    expect(lines.nth(3).locator(".cm-lintRange-error")).to_have_count(1)
    expect(page.get_by_role("button", name="Run")).to_be_disabled()

    # fixed: no problems, then run over the loan case with one query
    replace_program(page, FIXED)
    expect(diagnostics).to_contain_text("No problems.")
    page.get_by_role("button", name="Remove query 2").click()
    page.get_by_label("Query 1", exact=True).fill("decision(A, D)")
    page.get_by_role("button", name="Run").click()
    answers = page.get_by_role("region", name="Answers to decision(A, D)")
    expect(answers).to_contain_text('decision("ann",approved)')

    # the proof: the rule on line 3 down to the case facts; a click jumps to the line
    proof = page.get_by_role("region", name='Proof of decision("ann",approved)')
    expect(proof).to_contain_text("line 3: decision(A, approved) :- eligible(A).")
    expect(proof).to_contain_text('income("ann",5200000,"salary")')
    expect(proof).to_contain_text("5200000 >= 3000000")
    # by keyboard: Enter on a rule's line button moves the editor there; Enter folds a node
    proof.get_by_role("button", name=re.compile(r"^line 2:")).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("program-editor").locator(".cm-activeLine")).to_contain_text("eligible(A) :-")
    proof.get_by_role("button", name='Collapse eligible("ann")').focus()
    page.keyboard.press("Enter")
    expect(proof).not_to_contain_text("5200000 >= 3000000")
    proof.get_by_role("button", name="Base facts only").click()
    base = proof.get_by_role("list", name="Base facts")
    expect(base).to_contain_text('applicant("ann")')
    expect(base).not_to_contain_text("eligible")
    proof.get_by_role("button", name="Tree").click()
    proof.get_by_role("button", name="Expand all").click()
    screenshot(page, "playground", full_page=True)

    # publish, then a real decision with the published version (followed over SSE)
    page.get_by_label("Ruleset name", exact=True).fill("journey")
    page.get_by_role("button", name="Publish version").click()
    expect(page.get_by_role("link", name="journey version 1")).to_be_visible()
    page.get_by_role("button", name="Decide with journey@1").click()
    done = page.get_by_test_id("decision-done")
    expect(done).to_contain_text("succeeded")
    decision_id = done.get_by_role("link").inner_text()

    # straight to its page, while the audit sink may still be writing it: it waits,
    # then replays identically
    done.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"Decision {decision_id}")).to_be_visible()
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_test_id("replay-result")).to_contain_text("Identical.")
    expect(page.get_by_role("region", name="Answers to decision(A, D)")).to_contain_text(
        'decision("ann",approved)'
    )
    screenshot(page, "decision", full_page=True)

    # the audit trail lists it, and its row leads back to it
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Decisions").click()
    row_link = page.get_by_test_id("audit-table").get_by_role("link", name=decision_id)
    expect(row_link).to_be_visible()
    # its outcome: the answers, in the row
    row = (
        page.get_by_test_id("audit-table")
        .get_by_role("row")
        .filter(has=page.get_by_role("link", name=decision_id))
    )
    expect(row.get_by_test_id("outcome")).to_have_text('decision("ann",approved)')
    screenshot(page, "decisions")
    row_link.click()
    expect(page.get_by_role("button", name="Replay")).to_be_visible()

    # a stricter second version: the diff between versions, and its impact on the decision
    with stack.client("") as http:
        published = http.post(
            "/v1/rulesets",
            json={"name": "journey", "source": STRICTER},
            headers={"Authorization": f"Bearer {stack.stack.api_key}"},
        )
        assert published.status_code == 201, published.text
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Rulesets").click()
    page.get_by_role("link", name="journey", exact=True).click()
    expect(page.get_by_role("cell", name="v2", exact=True)).to_be_visible()
    page.get_by_label("Compare", exact=True).select_option("1")
    page.get_by_label("with", exact=True).select_option("2")
    page.get_by_role("button", name="Show diff").click()
    diff = page.get_by_role("figure", name="v1 → v2")
    expect(diff).to_contain_text("1 added, 1 removed")
    expect(diff.locator(".diff-added")).to_contain_text("I >= 6000000")
    page.get_by_label("points at", exact=True).select_option("2")
    page.get_by_role("button", name="Move tag").click()
    expect(page.get_by_role("status").filter(has_text="Moved prod")).to_contain_text("prod → v2")
    expect(
        page.get_by_role("row", name=re.compile(r"^v2 ")).get_by_role("cell", name="prod", exact=True)
    ).to_be_visible()
    screenshot(page, "rulesets")

    # "Impact of v2 vs prod" on the version's row fills in the impact form
    page.get_by_role("link", name="Impact of v2 vs prod").click()
    expect(page.get_by_label("Ruleset", exact=True)).to_have_value("journey")
    expect(page.get_by_label("Candidate version", exact=True)).to_have_value("2")
    start = (datetime.now(UTC) - timedelta(hours=1)).astimezone()
    page.get_by_label("From", exact=True).fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Compute impact").click()
    impact = page.get_by_role("region", name="Impact")
    expect(impact).to_contain_text("1 changed")
    expect(impact).to_contain_text('decision("ann",declined)')
    # only the difference, grouped: what was removed and what was added
    group = impact.get_by_role("region", name="Change 1: 1 decision")
    expect(group.locator(".diff-removed")).to_contain_text('decision("ann",approved)')
    expect(group.locator(".diff-added")).to_contain_text('decision("ann",declined)')
    # the old version's proof of what it no longer answers beside the candidate's proof
    group.get_by_text("Proofs side by side").click()
    pairs = group.get_by_role("region", name="Proofs of decision(A, D), old and new")
    old_side, new_side = pairs.locator(".diff-cols > div").first, pairs.locator(".diff-cols > div").last
    expect(old_side.get_by_role("tree", name='Proof tree of decision("ann",approved)')).to_be_visible()
    expect(new_side.get_by_role("tree", name='Proof tree of decision("ann",declined)')).to_be_visible()
    assert axe_violations(page, "impact with proofs") == []
    screenshot(page, "impact")

    # provenance: the decisions that used a base fact and cited a reason code
    # from the decisions page, where someone looking for a case fact starts
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Decisions").click()
    page.get_by_role("main").get_by_role("link", name="Provenance").click()
    expect(page.get_by_role("heading", name="Provenance", exact=True)).to_be_visible()
    page.get_by_label("Ruleset", exact=True).fill("journey")
    page.get_by_label("Base fact", exact=True).fill('income("ann",5200000,"salary")')
    page.get_by_label("Reason code", exact=True).fill("approved")
    page.get_by_role("button", name="Search", exact=True).click()
    found = page.get_by_test_id("provenance-table")
    expect(found.get_by_role("link", name=decision_id)).to_be_visible()
    expect(found.get_by_role("row").filter(has=page.get_by_role("link", name=decision_id))).to_contain_text(
        "approved"
    )
    expect(page.get_by_role("link", name="measure its impact over this window")).to_be_visible()
    assert axe_violations(page, "provenance") == []
    screenshot(page, "provenance")
    page.get_by_label("Reason code", exact=True).fill("no_such_code")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("No decision in this window matches.")).to_be_visible()
    # the fix's impact over the same window: the form comes filled in
    page.get_by_label("Reason code", exact=True).fill("approved")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name="measure its impact over this window").click()
    expect(page.get_by_label("Ruleset", exact=True)).to_have_value("journey")

    # a ruleset's example cases (the bundled loan example's tests.yaml) run again from its page
    page.goto(f"{stack.url}/rulesets/loan")
    cases = page.get_by_test_id("ruleset-tests")
    cases.get_by_role("button", name="Run tests").click()
    expect(cases.get_by_role("status")).to_contain_text(re.compile(r"^[1-9]\d* passed, 0 failed"))
    expect(cases).to_contain_text("✓ passed")
    assert axe_violations(page, "ruleset tests") == []
    screenshot(page, "ruleset-tests", full_page=True)

    assert console.unexpected() == []


def test_sign_in_states_phone_width_and_server_down(
    page: Page, stack: LocalStack, console: ConsoleLog
) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, stack, "ent_not_a_key")
    expect(page.get_by_role("alert")).to_contain_text("This key is not accepted.")
    expect(page.get_by_label("API key", exact=True)).to_have_attribute("aria-invalid", "true")

    # a key revoked while signed in: the next call signs out with a clear message
    page.evaluate("sessionStorage.setItem('entail.apiKey', 'ent_revoked_key')")
    page.goto(stack.url + "/rulesets")
    expect(page.get_by_role("heading", name="Sign in to Entail")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Frulesets$"))

    # a good key returns to where it was going; the app works at phone width
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_label("API key", exact=True).fill(stack.stack.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Rulesets")).to_be_visible()
    expect(page.get_by_role("link", name="loan", exact=True)).to_be_visible()
    page.get_by_role("link", name="Playground").click()
    expect(page.get_by_test_id("diagnostics")).to_contain_text("No problems.")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the playground overflows a phone screen: {width} px"
    screenshot(page, "playground-phone")

    # the API goes away (this module's stack; this is its last test): a clear state with Retry
    page.set_viewport_size({"width": 1280, "height": 900})
    stack.stack.kill("backend")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Rulesets").click()
    down = page.get_by_role("alert")
    expect(down).to_contain_text("The API cannot be reached")
    expect(down.get_by_role("button", name="Retry")).to_be_enabled()
    screenshot(page, "server-down")

    # the wrong keys' 401s and the refused connections are the only console errors
    # (Chromium logs every failed load)
    assert console.unexpected("status of 401", "ERR_CONNECTION_REFUSED") == []
