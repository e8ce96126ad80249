"""Typed inputs (issue 17 §1): ``%@input`` declarations, their diagnostics, the
declared kinds in type inference, the case-fact check, the const mapping and the
JSON Schema of a decision request."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from entail import reasoning
from entail.reasoning.declarations import arity_schema, collect, request_schema

ORG = """%@input employee(name: const).
%@input person(name: const, age: int).
%@input note(string, any).
reports(bob, ann).
manager(E, M) :- employee(E), reports(E, M).
adult(P) :- person(P, A), A >= 18.
said(T) :- note(T, _).
"""


def errors(source: str) -> list[tuple[str, str, int, int]]:
    return [(d.code, d.severity, d.line, d.column) for d in reasoning.check(source)]


def test_a_declaration_parses_with_names_and_types() -> None:
    found, problems = collect(ORG)
    assert problems == [] and found is not None
    person = found.by_name["person"]
    assert (person.types, person.names, person.line, person.column) == (
        ("const", "int"),
        ("name", "age"),
        2,
        9,
    )
    assert found.by_name["note"].text() == "note(string, any)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%@input p(float).\nq(X) :- p(X).", [("input-unknown-type", "error", 1, 11)]),
        ("%@input p(int, int).\nq(X) :- p(X).", [("input-arity-mismatch", "error", 1, 9)]),
        ("%@input p(int).\n%@input p(int).\nq(X) :- p(X).", [("input-duplicate", "error", 2, 9)]),
        ("%@input p(int).\n%@input p(string).\nq(X) :- p(X).", [("input-conflict", "error", 2, 9)]),
        ("%@input p(int)\nq(X) :- p(X).", [("input-syntax", "error", 1, 15)]),
        ("%@input p(int;).\nq(X) :- p(X).", [("input-syntax", "error", 1, 14)]),
        ("%@input (int).\nq(X) :- p(X).", [("input-syntax", "error", 1, 8)]),
        ("%@inputs p(int).\nq(X) :- p(X).", [("input-syntax", "error", 1, 1)]),
    ],
)
def test_a_bad_declaration_is_an_error_at_its_line_and_column(
    source: str, expected: list[tuple[str, str, int, int]]
) -> None:
    assert [e for e in errors(source) if e[0] != "undefined-predicate"] == expected
    with pytest.raises(reasoning.ProgramError):
        reasoning.compile(source)


def test_declarations_inside_block_comments_or_strings_are_not_declarations() -> None:
    source = '%* %@input p(float). *%\nq(X) :- p(X), X != "%@input p(bad).".'
    assert reasoning.compile(source).declarations is None


def test_a_declared_type_makes_a_clash_an_error_and_undeclared_it_stays_a_warning() -> None:
    body = "reports(bob, ann).\nmanager(E, M) :- employee(E), reports(E, M).\n"
    # undeclared: the program alone decides nothing (employee is open)
    assert [(d.code, d.severity) for d in reasoning.check(body)] == [("undefined-predicate", "warning")]
    declared = "%@input employee(string).\n" + body
    assert errors(declared) == [("type-clash", "error", 3, 39)]
    with pytest.raises(reasoning.ProgramError) as caught:
        reasoning.compile(declared)
    assert "only strings" in caught.value.diagnostics[0].message
    # a comparison with a declared column
    assert errors('%@input e(int).\nm(E) :- e(E), E = "x".') == [("type-clash", "error", 2, 15)]
    # a program fact clash with no declared predicate in it still stays a warning
    plain = 'a(x). b("x").\nc(X) :- a(X), b(X).'
    assert [(d.code, d.severity) for d in reasoning.check(plain)] == [("type-clash", "warning")]


def test_const_columns_map_json_strings_to_constants() -> None:
    rs = reasoning.compile(ORG)
    result = rs.evaluate(
        {"employee": [["bob"]], "person": [["ann", 30], ["cy", 12]], "note": [["hi", 1], ["yo", "x"]]},
        ["manager(E, M)", "adult(P)", "said(T)"],
    )
    assert [[a.atom for a in q.answers] for q in result.answers] == [
        ["manager(bob,ann)"],
        ["adult(ann)"],
        ['said("hi")', 'said("yo")'],
    ]
    # the same program without declarations: "bob" is a string and nothing joins
    plain = reasoning.compile(ORG.replace("%@input", "% input"))
    assert plain.evaluate({"employee": [["bob"]]}, ["manager(E, M)"]).answers[0].answers == []


def test_the_engine_refuses_a_wrong_type_with_the_pointer() -> None:
    rs = reasoning.compile(ORG)
    with pytest.raises(reasoning.FactsError) as caught:
        rs.evaluate({"person": [["ann", 30], ["bo", "31"]]})
    assert caught.value.path == "/person/1/1"
    assert "argument 2 (age) of 'person' is declared int, got the string \"31\"" in str(caught.value)


def test_problems_lists_every_problem_with_json_pointers() -> None:
    found, _ = collect(ORG)
    assert found is not None
    facts: dict[str, Any] = {
        "person": [["ann", "31"], ["Bob", 2], ["cy"]],
        "employee": [[7]],
        "visitor": [["x"]],
        "note": [[1, 2]],
    }
    problems = [(p.pointer, p.detail) for p in found.problems(facts)]
    assert [p for p, _ in problems] == [
        "/person/0/1",
        "/person/1/0",
        "/person/2",
        "/employee/0/0",
        "/visitor",
        "/note/0/0",
    ]
    assert "not a constant name" in problems[1][1]
    assert "declared with 2 argument(s)" in problems[2][1]
    assert "not a declared input" in problems[4][1]
    # not strict: an undeclared predicate passes (a dataset may bring it)
    assert "/visitor" not in [p.pointer for p in found.problems(facts, strict=False)]
    assert found.problems({"person": [["ann", 31]], "note": [["a", "b"], ["c", 3]]}) == []


def test_the_schema_accepts_exactly_what_the_declarations_accept() -> None:
    found, _ = collect(ORG)
    assert found is not None
    schema = request_schema(found.facts_schema(), "org", ["adult(P)"])
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {"facts": {"person": [["ann", 31]], "employee": [["bob"]], "note": [["a", 1], ["b", "c"]]}}
    assert list(validator.iter_errors(good)) == []
    for bad in (
        {"facts": {"person": [["ann", "31"]]}},
        {"facts": {"person": [["Ann", 31]]}},
        {"facts": {"person": [["ann"]]}},
        {"facts": {"visitor": [["x"]]}},
        {"facts": {"note": [[1, 2]]}},
        {"query": ["adult(P)"]},
    ):
        assert list(validator.iter_errors(bad)), bad
        if "facts" in bad:
            assert found.problems(bad["facts"]), bad  # the service refuses the same
    prefix = schema["properties"]["facts"]["properties"]["person"]["items"]["prefixItems"]
    assert prefix[0] == {"type": "string", "pattern": "^_*[a-z][A-Za-z0-9_']*$", "title": "name"}


def test_without_declarations_the_schema_is_permissive_by_arity() -> None:
    schema = request_schema(arity_schema({"edge": 2}), "graph")
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors({"facts": {"edge": [[1, "a"]], "other": [[1, 2, 3]]}})) == []
    assert list(validator.iter_errors({"facts": {"edge": [[1]]}}))


def test_the_loan_example_declares_its_case_facts() -> None:
    import json
    from pathlib import Path

    loan = Path(reasoning.__file__).resolve().parents[1] / "examples/loan"
    rs = reasoning.compile((loan / "program.lp").read_text())
    assert rs.declarations is not None
    assert sorted(rs.declarations.by_name) == [
        "applicant",
        "credit_event",
        "debt",
        "employment",
        "income",
        "requested",
    ]
    ann = json.loads((loan / "ann.json").read_text())
    assert rs.declarations.problems(ann) == []
    ann["income"][1][1] = "300000"
    assert [p.pointer for p in rs.declarations.problems(ann)] == ["/income/1/1"]
