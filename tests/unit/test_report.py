"""The decision report (entail.report, entail.report_html): deterministic bytes,
everything escaped, masked values shown masked, large proofs cut with a note,
and the hash row recorded once per distinct report (DuckDB store)."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from entail import report
from entail.audit.duckdb_store import DuckDBAuditStore
from entail.compute.tasks import evaluate
from entail.models import DecisionError, DecisionRecord, RulesetRef

LOAN = Path(report.__file__).parent / "examples" / "loan"
HOSTILE = '<script>alert("x")</script>'
MASKED = "hmac-sha256:" + "ab" * 32


def loan_record(facts: dict[str, Any] | None = None, **extra: Any) -> DecisionRecord:
    """A succeeded, explained decision on the loan example, computed by the engine."""
    facts = facts or json.loads((LOAN / "ann.json").read_text())
    query = ["decision(A, D)", "reason(A, R)"]
    out = evaluate((LOAN / "program.lp").read_text(), "program.lp", facts, query, True, {})
    return DecisionRecord(
        decision_id="dec_report_1",
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="loan", version=3, hash="a" * 64),
        request_hash="b" * 64,
        status="succeeded",
        facts=facts,
        query=query,
        explain=True,
        answers=out["answers"],
        result_hash=out["result_hash"],
        submitted_at="2026-12-01T10:00:00.000Z",
        started_at="2026-12-01T10:00:00.100Z",
        completed_at="2026-12-01T10:00:00.200Z",
        **extra,
    )


def declined_facts(applicant: str = "eve") -> dict[str, Any]:
    return {
        "applicant": [[applicant]],
        "income": [[applicant, 100000, "salary"]],
        "debt": [[applicant, 90000, "car"]],
        "requested": [[applicant, 1000000]],
        "credit_event": [[applicant, "default", 2024]],
        "employment": [[applicant, 60]],
    }


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [name for name, _ in attrs]


def parse(html: bytes) -> Tags:
    tags = Tags()
    tags.feed(html.decode())
    return tags


def test_the_same_record_gives_the_same_bytes_and_the_hash_is_of_those_bytes() -> None:
    record = loan_record(declined_facts())
    one = report.build(record, "audit")
    # the same record as the audit store returns it: JSON round trip, keys re-sorted
    resorted = json.loads(json.dumps(record.model_dump(mode="json"), sort_keys=True))
    stored = DecisionRecord.model_validate(resorted)
    two = report.build(stored, "audit")
    assert one.html == two.html
    assert one.sha256 == two.sha256 == hashlib.sha256(one.html).hexdigest()
    assert one.html.startswith(b"<!DOCTYPE html>")
    # another record, another hash; the live rendering is marked and hashes apart
    assert report.build(loan_record(), "audit").sha256 != one.sha256
    live = report.build(record, "live")
    assert live.sha256 != one.sha256 and b"not yet in the audit trail" in live.html


def _line_of(start: str) -> int:
    """The loan program's line that starts with ``start`` (the example changes; the test should not)."""
    lines = (LOAN / "program.lp").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(start))


def test_the_report_shows_versions_answers_reasons_and_the_proof_with_line_numbers() -> None:
    html = report.build(loan_record(declined_facts()), "audit").html.decode()
    assert "loan version 3" in html and "a" * 64 in html
    assert report.build(loan_record(), "audit").content["decision"]["engine_version"] in html
    assert "decision(&quot;eve&quot;,declined)" in html
    # principal reasons, highest weight first, once each
    principal = html[html.index('id="reasons"') : html.index('id="answers"')]
    codes = re.findall(r'<span class="code">(L\d\d)</span>', principal)
    assert codes == ["L03", "L02", "L04"]
    assert "A loan default was recorded in 2024" in principal
    # the proof: nested lists naming each rule with its line
    declined_line = _line_of("decision(A, declined) :- declined(A).")
    assert f"by the rule at line {declined_line}" in html and "decision(A, declined) :- declined(A)." in html
    assert '<ul class="proof">' in html
    # timestamps and ids, never a generation time
    assert "2026-12-01T10:00:00.200Z" in html and "dec_report_1" in html


@pytest.mark.parametrize("where", ["fact", "atom"])
def test_hostile_strings_are_escaped_everywhere(where: str) -> None:
    facts = declined_facts(HOSTILE)
    record = loan_record(facts)
    if where == "atom":  # a record whose stored answers carry markup (a forged row)
        answers = json.loads(json.dumps(record.answers).replace("declined", HOSTILE.replace('"', "'")))
        record = record.model_copy(update={"answers": answers})
    rep = report.build(record, "audit")
    tags = parse(rep.html)
    assert "script" not in tags.tags
    assert not [a for a in tags.attrs if a.startswith("on")]
    assert b"<script" not in rep.html.lower()
    assert b"&lt;script&gt;" in rep.html


def test_masked_values_stay_masked() -> None:
    facts = declined_facts(MASKED)
    record = loan_record(facts, masked_predicates=["applicant/1"])
    html = report.build(record, "audit").html.decode()
    assert f'<span class="masked">&quot;{MASKED}&quot;</span>' in html
    assert "<code>applicant/1</code>" in html and "the clear values were never stored" in html


def test_a_large_proof_is_cut_with_a_note_and_the_report_stays_bounded() -> None:
    record = loan_record(declined_facts())
    full = report.build(record, "audit")
    assert not full.content["truncated"] and "not shown" not in full.html.decode()
    small = report.build(record, "audit", bounds=report.Bounds(proof_steps=3, proof_depth=64, rows=1000))
    text = small.html.decode()
    assert small.content["truncated"]
    assert "more proof step(s) not shown" in text and "ENTAIL_REPORT_MAX_PROOF_STEPS" in text
    assert len(small.html) < len(full.html)
    shallow = report.build(record, "audit", bounds=report.Bounds(proof_steps=1000, proof_depth=1, rows=1000))
    assert "deeper than 1 levels" in shallow.html.decode()


def test_a_deep_proof_does_not_overflow_the_stack() -> None:
    # a chain 5,000 steps deep, as a stored record may hold it
    node: dict[str, Any] = {"fact": "p(0)", "kind": "input"}
    for i in range(1, 5000):
        rule = {"line": 1, "text": "p(X) :- p(Y)."}
        node = {"fact": f"p({i})", "kind": "rule", "rule": rule, "body": [node]}
    record = loan_record().model_copy(
        update={"answers": [{"query": "p(X)", "answers": [{"atom": "p(4999)", "proof": node}]}]}
    )
    rep = report.build(record, "audit")
    assert rep.content["truncated"] and b"deeper than 64 levels" in rep.html


def test_facts_and_answers_beyond_the_row_bound_are_counted_not_shown() -> None:
    facts = declined_facts()
    facts["income"] = [["eve", i, f"s{i}"] for i in range(50)]
    bounds = report.Bounds(proof_steps=2000, proof_depth=64, rows=10)
    rep = report.build(loan_record(facts), "audit", bounds=bounds)
    assert rep.content["inputs"]["omitted_rows"] == 50 + 5 - 10
    assert b"more fact row(s) not shown" in rep.html


def test_the_why_nots_asked_for_are_shown_with_the_failed_literal_and_its_reasons() -> None:
    facts = declined_facts()
    query = ["decision(A, D)"]
    asked = ['decision("eve",approved)', 'decision("eve",declined)']
    source = (LOAN / "program.lp").read_text()
    out = evaluate(source, "program.lp", facts, query, False, {}, explain_absent=asked)
    record = loan_record(facts).model_copy(update={"why_not": out["why_not"]})
    rep = report.build(record, "audit")
    html = rep.html.decode()
    section = html[html.index('id="why-not"') : html.index('id="trail"')]
    assert "decision(&quot;eve&quot;,approved)</code> does not hold" in section
    assert f"rule at line {_line_of('decision(A, approved) :-')}" in section
    assert "<code>not declined(A)</code> fails" in section
    assert "declined(&quot;eve&quot;)</code> holds" in section
    assert "A loan default was recorded in 2024" in section  # the witness's reasons
    assert "decision(&quot;eve&quot;,declined)</code> holds." in section
    assert [w["atom"] for w in rep.content["why_not"]] == asked


def test_why_not_and_failed_decisions_render_when_present() -> None:
    record = loan_record(declined_facts())
    why = {
        "atom": 'decision("eve",approved)',
        "rules": [
            {
                "rule": {"index": 14, "line": 36, "text": "decision(A, approved) :- not declined(A)."},
                "failures": [{"literal": "not declined(A)", "kind": "negation", "atom": 'declined("eve")'}],
            }
        ],
    }
    answers = [dict(record.answers[0], why_not=why), *record.answers[1:]]  # type: ignore[index]
    html = report.build(record.model_copy(update={"answers": answers}), "audit").html.decode()
    assert "Why not" in html and "rule at line 36" in html and "not declined(A)" in html
    failed = record.model_copy(
        update={
            "status": "failed",
            "answers": None,
            "error": DecisionError(code="limit", message="<b>too big</b>"),
        }
    )
    text = report.build(DecisionRecord.model_validate(failed.model_dump()), "audit").html.decode()
    assert 'id="error"' in text and "&lt;b&gt;too big&lt;/b&gt;" in text


def test_the_hash_row_is_recorded_once_per_distinct_report(tmp_path: Path) -> None:
    rep = report.build(loan_record(), "audit")
    with DuckDBAuditStore(tmp_path / "audit.duckdb") as store:
        assert store.put_decision_report(report.hash_row(rep, "2026-12-01T11:00:00.000Z"))
        assert not store.put_decision_report(report.hash_row(rep, "2026-12-01T12:00:00.000Z"))
        other = report.build(loan_record(declined_facts()), "audit")
        assert store.put_decision_report(report.hash_row(other))
        rows = store.fetch("SELECT decision_id, report_sha256, generated_at FROM decision_reports ORDER BY 3")
    assert [(r[0], r[1]) for r in rows] == [("dec_report_1", rep.sha256), ("dec_report_1", other.sha256)]
    assert rows[0][2].isoformat().startswith("2026-12-01T11:00:00")
