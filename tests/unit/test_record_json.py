"""Records to and from JSON at any proof depth the service allows, and that depth
kept under BigQuery's JSON nesting limit (issue 12: a 130-step proof broke
pydantic's encoder and left the decision running)."""

from __future__ import annotations

import json

import pytest
from pydantic_core import PydanticSerializationError

from entail import reasoning
from entail.audit.schema import decision_to_row
from entail.models import DecisionRecord, RulesetRef
from entail.record_json import MAX_JSON_DEPTH, dump_record, json_depth, load_record, record_dict

CHAIN = "r(X,Y) :- e(X,Y).\nr(X,Z) :- r(X,Y), e(Y,Z).\n"


def _record(edges: int, limits: reasoning.Limits) -> DecisionRecord:
    ruleset = reasoning.compile(CHAIN, "chain.lp")
    result = ruleset.evaluate(
        {"e": [[i, i + 1] for i in range(edges)]}, [f"r(0, {edges})"], explain=True, limits=limits
    )
    return DecisionRecord(
        decision_id="dec_0000000000000000000000000000000a",
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="chain", version=1, hash="0" * 64),
        request_hash="0" * 64,
        status="succeeded",
        answers=[q.to_json() for q in result.answers],
        result_hash=result.result_hash,
        submitted_at="2026-01-01T00:00:00.000Z",
        started_at="2026-01-01T00:00:00.001Z",
        completed_at="2026-01-01T00:00:00.002Z",
    )


def test_a_130_step_proof_round_trips_where_pydantic_gives_up() -> None:
    record = _record(130, reasoning.Limits())
    with pytest.raises(PydanticSerializationError):
        record.model_dump_json()  # why record_json exists
    text = dump_record(record)
    assert load_record(text) == record
    assert load_record(text.encode()) == record
    doc = json.loads(text)
    assert doc["schema"] == "entail.decision.v1" and list(doc)[-1] == "answers"
    assert json_depth(doc["answers"]) > 255
    assert record_dict(record, by_alias=False, exclude={"schema_"})["answers"] is record.answers


def test_the_deepest_proof_the_service_allows_fits_bigquery() -> None:
    # the service caps every request's limits by Limits() (proof_depth 200); a chain
    # longer than that gives the deepest proof a decision can carry
    cap = reasoning.Limits()
    asked = reasoning.Limits.from_mapping({"proof_depth": 10_000}).capped_by(cap)
    assert asked.proof_depth == cap.proof_depth
    record = _record(cap.proof_depth + 40, asked)
    proof_text = json.dumps(record.answers)
    assert '"truncated"' in proof_text  # cut at proof_depth
    row = decision_to_row(record)
    depth = json_depth(json.loads(row["answers"]))
    assert 2 * cap.proof_depth <= depth < MAX_JSON_DEPTH, depth
    assert load_record(dump_record(record)) == record


def test_load_record_refuses_what_is_not_a_record() -> None:
    cases = [
        ("[]", "a decision record is a JSON object"),
        ("1", "a decision record is a JSON object"),
        ('{"decision_id": "x"}', "validation error"),
        ("{not json", "Expecting property name"),
    ]
    for text, message in cases:
        with pytest.raises(ValueError, match=message):
            load_record(text)
