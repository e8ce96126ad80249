"""``%@dataset`` declarations (docs/datasets.md, "Declaring what a program reads"):
parsing, ``Ruleset.datasets``, and every diagnostic with its line and column."""

from __future__ import annotations

import pytest

from entail import reasoning

ORG = """%@dataset orgchart: manages(manager: const, employee: const), limit(person: const, amount: int).
%@input expense(id: string, employee: const, amount: int).
above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""


def errors(source: str) -> list[tuple[str, int, int]]:
    with pytest.raises(reasoning.ProgramError) as caught:
        reasoning.compile(source)
    return [(d.code, d.line, d.column) for d in caught.value.diagnostics]


def test_datasets_maps_each_binding_to_its_signatures_and_types_in_order() -> None:
    rs = reasoning.compile(ORG)
    assert rs.datasets == {
        "orgchart": ((("manages", 2), ("const", "const")), (("limit", 2), ("const", "int"))),
    }


def test_a_program_without_declarations_has_no_datasets() -> None:
    assert reasoning.compile("p(1).").datasets == {}


def test_several_lines_add_predicates_to_one_binding_and_bindings_keep_their_order() -> None:
    rs = reasoning.compile(
        "%@dataset rates: rate(const, int).\n%@dataset org: boss(const, const).\n%@dataset rates: cap(int).\n"
        "q(X) :- rate(X, _), boss(X, _), cap(_).\n"
    )
    assert list(rs.datasets) == ["rates", "org"]
    assert [sig for sig, _ in rs.datasets["rates"]] == [("rate", 2), ("cap", 1)]


def test_a_declared_predicate_no_rule_reads_is_still_a_dataset_predicate() -> None:
    rs = reasoning.compile("%@dataset d: unused(int).\np(1).\n")
    assert rs.datasets == {"d": ((("unused", 1), ("int",)),)}


def test_a_declaration_inside_a_block_comment_or_a_string_is_none() -> None:
    rs = reasoning.compile('%* %@dataset d: p(int). *%\nq("%@dataset e: r(int).").\n')
    assert rs.datasets == {}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%@dataset Org: p(int).\np(1).", [("dataset-name", 1, 11)]),
        ("%@dataset org_chart-2: p(int).\n%@dataset 9x: q(int).\np(1).", [("dataset-name", 2, 11)]),
        ("%@dataset " + "a" * 64 + ": p(int).\np(1).", [("dataset-name", 1, 11)]),
        ("%@dataset org p(int).\np(1).", [("dataset-syntax", 1, 15)]),
        ("%@dataset: p(int).\np(1).", [("dataset-syntax", 1, 1)]),
        ("%@dataset : p(int).\np(1).", [("dataset-syntax", 1, 11)]),
        ("%@dataset org: p(float).\np(1).", [("dataset-unknown-type", 1, 18)]),
        ("%@dataset org: p(int) q(int).\np(1).", [("dataset-syntax", 1, 23)]),
        ("%@dataset org: p(int),.\np(1).", [("dataset-syntax", 1, 23)]),
        ("%@datasets org: p(int).\np(1).", [("dataset-syntax", 1, 1)]),
        ("%@dataset org: p(int, int).\nq :- p(1).", [("dataset-arity-mismatch", 1, 16)]),
        ("%@dataset a: p(int).\n%@dataset b: p(int).\nq :- p(1).", [("dataset-predicate-redeclared", 2, 14)]),
        ("%@input p(int).\n%@dataset b: p(int).\nq :- p(1).", [("dataset-predicate-redeclared", 2, 14)]),
    ],
)
def test_diagnostics_carry_line_and_column(source: str, expected: list[tuple[str, int, int]]) -> None:
    assert errors(source) == expected


def test_declaration_errors_come_with_the_programs_own_errors() -> None:
    found = errors("%@dataset Org: p(int).\nq(X) :- r(Y).\n")
    assert ("dataset-name", 1, 11) in found
    assert any(code == "unsafe-variable" for code, _, _ in found)


def test_the_message_names_the_earlier_declaration() -> None:
    with pytest.raises(reasoning.ProgramError) as caught:
        reasoning.compile("%@dataset a: p(int).\n%@dataset b: p(int).\nq :- p(1).")
    assert "by %@dataset a on line 1" in caught.value.diagnostics[0].message


def test_declared_predicates_are_not_reported_undefined() -> None:
    """A predicate a %@dataset or %@input declares comes from the data or the case, as
    the declaration says: no 'declare it with #defined' warning; others still get one."""
    from entail import reasoning

    source = (
        "%@dataset orgchart: manages(const, const).\n"
        "%@input expense(string, const).\n"
        "ok(I) :- expense(I, E), manages(_, E), other(E).\n"
    )
    warned = [(d.code, d.line, d.column) for d in reasoning.check(source)]
    assert warned == [("undefined-predicate", 3, 40)]
