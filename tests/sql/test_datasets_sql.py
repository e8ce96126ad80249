"""Datasets on the SQL path (DuckDB): a dataset predicate is its version's Parquet file,
read in place by the compiled SQL, and the model is the online engine's (and clingo's)
with the dataset's facts given as facts.

Random programs of the differential generator are split: the facts of about half
their predicates become a dataset version, the rest stay case inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from differential.clingo_ref import clingo_all_atoms
from differential.programs import SETTINGS, Program, example_count, stratified_programs
from hypothesis import HealthCheck, Phase, given, settings

from entail import reasoning
from entail.reasoning.sql import BatchInputError, DuckDBBackend, run_batch
from entail.reasoning.sql.datasets import (
    DatasetSource,
    DatasetTypeMismatch,
    parquet_dataset,
    parse_dataset_option,
)
from entail.reasoning.terms import Const

from .dataset_fixtures import column_types, content_hash, facts_text, write_parquet_version
from .harness import Model, atoms, load_facts, read_outputs

EXPENSES = """\
above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""
ORGCHART: dict[str, list[list[Any]]] = {
    "manages": [["alice", "bob"], ["bob", "carol"], ["carol", "dave"]],
    "limit": [["alice", 10000], ["bob", 1000], ["carol", 50]],
}
ORG_TYPES = {"manages": ["const", "const"], "limit": ["const", "int"]}
ORG_ARITIES = {"manages": 2, "limit": 2}
# the case in clingo text: the employee is a constant, as %@input expense(string, const, int) makes it
EXPENSE_CASES = {"expense": [['"e1"', "dave", 40], ['"e2"', "dave", 5000], ['"e3"', "carol", 900]]}
EXPENSE_FACTS = 'expense("e1", dave, 40). expense("e2", dave, 5000). expense("e3", carol, 900).\n'


def _sql(
    source: str,
    case: dict[str, list[list[Any]]],
    datasets: list[DatasetSource],
    *,
    all_predicates: bool = True,
    clingo_text: bool = False,
) -> tuple[Model, Any, DuckDBBackend]:
    """The SQL model; ``clingo_text``: the case tables hold clingo terms (for constants)."""
    rs = reasoning.compile(source)
    backend = DuckDBBackend(duckdb.connect(), dest_schema="out")
    if clingo_text:
        mapping: dict[str, Any] = {}
        for pred, rows in case.items():
            backend.con.execute(f"CREATE TABLE in_{pred} AS SELECT * FROM (VALUES {_clingo_rows(rows)})")
            mapping[pred] = {"table": f"in_{pred}", "encoding": "clingo"}
    else:
        mapping = load_facts(backend.con, case, dict(rs.analysis.signatures))
    outputs = list(rs.analysis.signatures) if all_predicates else None
    manifest = run_batch(rs, backend, mapping, outputs=outputs, datasets=datasets)
    return read_outputs(backend, manifest), manifest, backend


def _clingo_rows(rows: list[list[Any]]) -> str:
    return ", ".join("(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in r) + ")" for r in rows)


def _orgchart(tmp_path: Path, version: int = 3) -> DatasetSource:
    directory = tmp_path / "datasets" / "acme" / "orgchart" / str(version)
    write_parquet_version(directory, ORGCHART, ORG_ARITIES)
    declared = [((p, ORG_ARITIES[p]), ORG_TYPES[p]) for p in ("manages", "limit")]
    digest = content_hash(ORGCHART, ORG_ARITIES)
    return parquet_dataset("orgchart", directory, declared, name="orgchart", version=version, hash=digest)


def test_org_chart_expenses_match_the_engine_and_record_the_version(tmp_path: Path) -> None:
    dataset = _orgchart(tmp_path)
    model, manifest, backend = _sql(EXPENSES, EXPENSE_CASES, [dataset], clingo_text=True)
    # the engine with the dataset's facts as facts (constants where declared const)
    rs = reasoning.compile(EXPENSES + facts_text(ORGCHART, ORG_TYPES) + EXPENSE_FACTS)
    names = {n for n, _ in reasoning.compile(EXPENSES).analysis.signatures}
    expected = sorted(a for a in rs.evaluate({}).model_atoms() if a.split("(")[0] in names)
    assert atoms(model) == expected
    assert 'may_approve("e1",carol)' in expected and 'may_approve("e2",alice)' in expected
    assert 'may_approve("e2",bob)' not in expected
    # the manifest names the exact version and what was read
    (used,) = manifest.to_json()["datasets"]
    assert used["binding"] == "orgchart" and used["version"] == 3
    assert used["hash"] == content_hash(ORGCHART, ORG_ARITIES)
    assert used["predicates"]["manages/2"]["rows"] == 3
    assert "read_parquet(" in used["predicates"]["manages/2"]["relation"]
    assert used["predicates"]["limit/2"]["types"] == ["const", "int"]
    # nothing of the run is left behind (the views over the Parquet files are dropped too)
    left = backend.con.execute(
        "SELECT COUNT(*) FROM duckdb_tables() WHERE database_name = 'entail_work'"
        " UNION ALL SELECT COUNT(*) FROM duckdb_views() WHERE database_name = 'entail_work'"
    ).fetchall()
    assert left == [(0,), (0,)]


def test_dataset_predicate_is_a_view_over_the_parquet_file(tmp_path: Path) -> None:
    """The compiled rules join the view; the view reads the Parquet file (no copy)."""
    dataset = _orgchart(tmp_path)
    rs = reasoning.compile(EXPENSES)
    backend = DuckDBBackend(duckdb.connect(), dest_schema="out")
    backend.con.execute(
        f"CREATE TABLE in_expense AS SELECT * FROM (VALUES {_clingo_rows(EXPENSE_CASES['expense'])})"
    )
    mapping = {"expense": {"table": "in_expense", "encoding": "clingo"}}
    run_batch(rs, backend, mapping, datasets=[dataset], keep_work=True)
    views = dict(
        backend.con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'entail_work'"
        ).fetchall()
    )
    assert len(views) == 2 and all("read_parquet" in sql for sql in views.values()), views
    tables = {
        r[0]
        for r in backend.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'entail_work'"
        ).fetchall()
    }
    assert not any("manages" in t or "limit" in t for t in tables)


def test_rules_may_derive_more_facts_of_a_dataset_predicate(tmp_path: Path) -> None:
    source = EXPENSES + "manages(dave, erin) :- expense(_, dave, _).\nlimit(dave, 10).\n"
    dataset = _orgchart(tmp_path)
    model, manifest, _ = _sql(source, EXPENSE_CASES, [dataset], clingo_text=True)
    rs = reasoning.compile(source + facts_text(ORGCHART, ORG_TYPES) + EXPENSE_FACTS)
    names = {n for n, _ in reasoning.compile(source).analysis.signatures}
    expected = sorted(a for a in rs.evaluate({}).model_atoms() if a.split("(")[0] in names)
    assert atoms(model) == expected
    assert "manages(dave,erin)" in expected and "above(alice,erin)" in expected
    assert manifest.to_json()["datasets"][0]["predicates"]["manages/2"]["rows"] == 3


def test_symbols_shared_with_the_program_and_the_inputs(tmp_path: Path) -> None:
    """A dataset string, the same string in a case input and in the program are one
    code; a const column's value equals the program's constant, not its string."""
    source = (
        'hit(X) :- tag(X), ref(X).\nnamed(X) :- ref(X), X = "shared".\n'
        'sym(X) :- kind(X), X = alpha.\nstr(X) :- kind2(X), X = "alpha".\n'
    )
    data = {
        "ref": [["shared"], ["only-in-dataset"], ['ünïcode\t"q"']],
        "kind": [["alpha"]],
        "kind2": [["alpha"]],
    }
    types = {"ref": ["string"], "kind": ["const"], "kind2": ["string"]}
    arities = {"ref": 1, "kind": 1, "kind2": 1}
    directory = tmp_path / "v1"
    write_parquet_version(directory, data, arities)
    declared = [((p, 1), types[p]) for p in data]
    dataset = parquet_dataset("d", directory, declared, name="d", version=1, hash="h")
    case = {"tag": [["shared"], ['ünïcode\t"q"'], ["case-only"]]}
    model, _, _ = _sql(source, case, [dataset])
    rs = reasoning.compile(source + facts_text(data, types))
    names = {n for n, _ in reasoning.compile(source).analysis.signatures}
    expected = sorted(a for a in rs.evaluate(case).model_atoms() if a.split("(")[0] in names)
    assert atoms(model) == expected
    assert "sym(alpha)" in expected and 'str("alpha")' in expected and 'named("shared")' in expected


def test_a_predicate_the_version_does_not_hold_has_no_facts(tmp_path: Path) -> None:
    """As in a decision over the same version: a declared predicate without a file is empty."""
    source = EXPENSES.replace("limit(M, L), A <= L.", "limit(M, L), A <= L, not frozen(M).")
    directory = tmp_path / "datasets" / "acme" / "orgchart" / "3"
    write_parquet_version(directory, ORGCHART, ORG_ARITIES)
    declared = [
        (("manages", 2), ("const", "const")),
        (("limit", 2), ("const", "int")),
        (("frozen", 1), ("const",)),
    ]
    dataset = parquet_dataset("orgchart", directory, declared, name="orgchart", version=3, hash="h")
    model, manifest, _ = _sql(source, EXPENSE_CASES, [dataset], clingo_text=True)
    assert manifest.to_json()["datasets"][0]["predicates"]["frozen/1"]["rows"] == 0
    assert ("e1", Const("carol")) in model[("may_approve", 2)]


def test_a_value_of_the_wrong_type_names_the_dataset_predicate_and_column(tmp_path: Path) -> None:
    directory = tmp_path / "v2"
    rows = [["alice", "bob"], ["alice", "Bob Smith"], ["bob", 7], ["carol", "Dan"]]
    write_parquet_version(directory, {"manages": rows}, {"manages": 2})
    dataset = parquet_dataset(
        "orgchart", directory, [(("manages", 2), ("const", "const"))], name="orgchart", version=2, hash="h"
    )
    with pytest.raises(DatasetTypeMismatch) as caught:
        _sql("above(M, E) :- manages(M, E).\n", {}, [dataset])
    message = str(caught.value)
    assert caught.value.code == "dataset-type-mismatch"
    assert "'orgchart' (orgchart@2)" in message and "'manages/2'" in message
    # the first bad row in canonical order (alice's rows first, "Bob" before "bob"), and how many
    assert "row 1, column 2 (declared const): 'Bob Smith' is not a constant's name" in message
    assert "3 value(s) of the column do not fit" in message
    # an integer in a column declared string
    write_parquet_version(tmp_path / "v3", {"limit": [["bob", 5]]}, {"limit": 2})
    dataset = parquet_dataset(
        "orgchart",
        tmp_path / "v3",
        [(("limit", 2), ("const", "string"))],
        name="orgchart",
        version=3,
        hash="h",
    )
    with pytest.raises(
        DatasetTypeMismatch, match=r"row 1, column 2 \(declared string\): '5' is not a string"
    ):
        _sql("ok(P) :- limit(P, _).\n", {}, [dataset])


def test_an_integer_outside_32_bits_is_refused(tmp_path: Path) -> None:
    write_parquet_version(tmp_path / "v", {"limit": [["bob", 2**31]]}, {"limit": 2})
    dataset = parquet_dataset(
        "o", tmp_path / "v", [(("limit", 2), ("const", "int"))], name="o", version=1, hash="h"
    )
    with pytest.raises(DatasetTypeMismatch, match=r"'2147483648' is not a 32-bit integer"):
        _sql("ok(P) :- limit(P, _).\n", {}, [dataset])


def test_bad_bindings_are_named_errors(tmp_path: Path) -> None:
    dataset = _orgchart(tmp_path)
    rs = reasoning.compile(EXPENSES)
    backend = DuckDBBackend(duckdb.connect())
    with pytest.raises(BatchInputError, match="comes from dataset 'orgchart'"):
        run_batch(rs, backend, {"manages": "some_table"}, datasets=[dataset])
    with pytest.raises(BatchInputError, match="no version directory"):
        parquet_dataset("orgchart", tmp_path / "nope", [], name="orgchart", version=9, hash="h")
    assert parse_dataset_option("org=orgchart@3") == ("org", "orgchart@3")
    assert parse_dataset_option("orgchart@prod") == ("orgchart", "orgchart@prod")
    with pytest.raises(BatchInputError):
        parse_dataset_option("Bad=x")


# -- random programs split into reference (dataset) and case facts -----------------------

EXAMPLES = example_count(16)
NO_SHRINK = settings(
    SETTINGS,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def split(program: Program) -> tuple[dict[str, list[list[Any]]], dict[str, list[list[Any]]], dict[str, int]]:
    """Reference and case facts: every other predicate (by name) goes to the dataset."""
    rs = reasoning.compile(program.source)
    arities = dict(rs.analysis.signatures)
    reference: dict[str, list[list[Any]]] = {}
    case: dict[str, list[list[Any]]] = {}
    for i, (pred, rows) in enumerate(sorted(program.facts.items())):
        if pred not in arities:
            continue
        (reference if i % 2 == 0 else case)[pred] = rows
    return reference, case, arities


@pytest.mark.slow
@settings(NO_SHRINK, max_examples=EXAMPLES)
@given(stratified_programs())
def test_random_programs_with_reference_facts_in_a_dataset(tmp_path_factory: Any, program: Program) -> None:
    reference, case, arities = split(program)
    directory = tmp_path_factory.mktemp("ds")
    types = {p: column_types(rows, arities[p]) for p, rows in reference.items()}
    write_parquet_version(directory, reference, arities)
    declared = [((p, arities[p]), types[p]) for p in reference]
    dataset = parquet_dataset("ref", directory, declared, name="ref", version=1, hash="h")
    names = set(arities)
    expected = [a for a in clingo_all_atoms(program.source, program.facts) if a.split("(")[0] in names]
    try:
        model, manifest, _ = _sql(program.source, case, [dataset])
    except Exception as error:
        pytest.fail(
            f"the SQL path raised {type(error).__name__}: {error}\n{program.describe()}"
            f"reference: {json.dumps(sorted(reference))}"
        )
    actual = atoms(model)
    assert actual == expected, (
        f"{program.describe()}reference: {sorted(reference)}\n"
        f"missing: {sorted(set(expected) - set(actual))}\nextra: {sorted(set(actual) - set(expected))}"
    )
    read = manifest.to_json()["datasets"][0]["predicates"]
    assert {p.split("/")[0] for p in read} == set(reference)


def test_input_declared_const_columns_match_the_datasets_constants(tmp_path: Path) -> None:
    """``%@input expense(string, const, int)``: a typed input's text in a const column is
    a constant, as in JSON case facts, so a plain table of expenses joins the org chart."""
    source = "%@input expense(id: string, employee: const, amount: int).\n" + EXPENSES
    dataset = _orgchart(tmp_path)
    case = {"expense": [["e1", "dave", 40], ["e2", "dave", 5000], ["e3", "carol", 900]]}
    model, _, _ = _sql(source, case, [dataset])
    rs = reasoning.compile(EXPENSES + facts_text(ORGCHART, ORG_TYPES) + EXPENSE_FACTS)
    names = {n for n, _ in reasoning.compile(EXPENSES).analysis.signatures}
    expected = sorted(a for a in rs.evaluate({}).model_atoms() if a.split("(")[0] in names)
    assert atoms(model) == expected and 'may_approve("e1",carol)' in expected
    # a text that is no constant's name in a declared const column is refused, named
    with pytest.raises(BatchInputError, match=r"1 value\(s\) of column 'a1' .* \(e\.g\. 'Dave Smith'\)"):
        _sql(source, {"expense": [["e4", "Dave Smith", 1]]}, [dataset])
