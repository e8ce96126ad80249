"""``entail batch`` end to end on files, and the named errors of the batch path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pytest

from entail import reasoning
from entail.cli import main
from entail.reasoning.sql import (
    BatchInputError,
    BatchLimits,
    DuckDBBackend,
    IterationLimitExceeded,
    RowLimitExceeded,
    run_batch,
)

TC = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\nold(N) :- person(N, A), A >= 3.\n"


def _files(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT i AS a, i + 1 AS b FROM range(0, 30) t(i)) TO '{tmp_path / 'e.parquet'}'")
    con.execute(f"COPY (SELECT 'n' || i AS name, i AS age FROM range(0, 5) t(i)) TO '{tmp_path / 'p.csv'}'")
    (tmp_path / "tc.lp").write_text(TC)


def test_batch_over_parquet_and_csv_writes_tables_and_manifest(tmp_path: Path) -> None:
    _files(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    db = tmp_path / "out.duckdb"
    code = main(
        [
            "batch",
            str(tmp_path / "tc.lp"),
            "--input",
            f"edge={tmp_path / 'e.parquet'}",
            "--input",
            f"person={tmp_path / 'p.csv'}",
            "--db",
            str(db),
            "--export",
            str(tmp_path / "exp"),
        ],
        out,
        err,
    )
    assert code == 0, err.getvalue()
    manifest = json.loads(out.getvalue())
    assert manifest["ruleset_hash"] == reasoning.compile(TC).hash
    rows = {o["predicate"]: o["rows"] for o in manifest["outputs"]}
    assert rows == {"path/2": 30 * 31 // 2, "old/1": 2}
    assert manifest["inputs"]["edge"]["rows"] == 30
    assert [s["method"] for s in manifest["strata"] if s["recursive"]] == ["recursive-cte"]
    assert "stratum 2/4 path/2" in err.getvalue()
    con = duckdb.connect(str(db))
    assert con.execute("SELECT COUNT(*) FROM main.path").fetchone() == (465,)
    assert sorted(con.execute("SELECT c0 FROM main.old").fetchall()) == [("n3",), ("n4",)]
    assert (tmp_path / "exp" / "path.parquet").exists()


def test_batch_cli_reports_a_bad_input_column(tmp_path: Path) -> None:
    (tmp_path / "p.lp").write_text("big(X) :- amount(X), X > 3.\n")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 2.5::DOUBLE AS x) TO '{tmp_path / 'a.parquet'}'")
    err = io.StringIO()
    code = main(
        ["batch", str(tmp_path / "p.lp"), "--input", f"amount={tmp_path / 'a.parquet'}"], io.StringIO(), err
    )
    assert code == 1
    assert "invalid-batch-input" in err.getvalue() and "DOUBLE" in err.getvalue()


def _run(source: str, inputs: dict[str, object], con: duckdb.DuckDBPyConnection, **kw: object) -> None:
    run_batch(reasoning.compile(source), DuckDBBackend(con), inputs, **kw)  # type: ignore[arg-type]


def test_null_and_out_of_range_inputs_are_refused() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1), (NULL), (3000000000)) v(x)")
    with pytest.raises(BatchInputError, match="2 value\\(s\\) of column 'x'"):
        _run("q(X) :- p(X).", {"p": "t"}, con)


def test_arity_and_unknown_predicates_are_refused() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS a, 2 AS b")
    with pytest.raises(BatchInputError, match="has 2 column"):
        _run("q(X) :- p(X).", {"p": "t"}, con)
    with pytest.raises(BatchInputError, match="never uses"):
        _run("q(X) :- p(X).", {"r": "t"}, con)
    with pytest.raises(BatchInputError, match="no column 'c'"):
        _run("q(X) :- p(X).", {"p": {"table": "t", "columns": ["c"]}}, con)


def test_iteration_and_row_limits_are_named_errors() -> None:
    counter = "n(0). n(X + 1) :- n(X), X < 1000."
    with pytest.raises(IterationLimitExceeded) as it:
        _run(counter, {}, duckdb.connect(), limits=BatchLimits(max_iterations=20))
    assert (it.value.code, it.value.limit) == ("limit-iterations", 20)
    with pytest.raises(RowLimitExceeded) as rows:
        _run(counter, {}, duckdb.connect(), limits=BatchLimits(max_rows=50))
    assert rows.value.code == "limit-rows"


def test_clingo_encoded_inputs_carry_constants_and_escaped_strings() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [["abc"], ['"a\\"b\\\\c\\nd"'], ["-7"]])
    backend = DuckDBBackend(con)
    manifest = run_batch(
        reasoning.compile("q(X) :- p(X). s(X) :- p(X), X = abc."),
        backend,
        {"p": {"table": "t", "encoding": "clingo"}},
    )
    assert manifest.output("q/1").columns[0].type == "term"
    got = sorted(r[0] for r in con.execute(f"SELECT c0 FROM {manifest.output('q/1').table}").fetchall())
    assert got == ['"a\\"b\\\\c\\nd"', "-7", "abc"]
    assert con.execute(f"SELECT c0 FROM {manifest.output('s/1').table}").fetchall() == [("abc",)]


def test_semi_naive_rounds_and_recursive_cte_agree() -> None:
    source = TC + "far(X) :- path(1, X), not edge(1, X)."
    results = []
    for cte in (False, True):
        con = duckdb.connect()
        con.execute("CREATE TABLE e AS SELECT i AS a, i + 1 AS b FROM range(0, 40) t(i)")
        backend = DuckDBBackend(con, recursive_cte=cte)
        manifest = run_batch(
            reasoning.compile(source), backend, {"edge": "e", "person": {"query": "SELECT 'x', 1"}}
        )
        strata = [s for s in manifest.strata if s.recursive]
        assert [(s.method, s.iterations) for s in strata] == (
            [("recursive-cte", 1)] if cte else [("semi-naive", 41)]
        )
        results.append(sorted(con.execute(f"SELECT * FROM {manifest.output('path/2').table}").fetchall()))
        assert manifest.output("far/1").rows == 38
    assert results[0] == results[1] and len(results[0]) == 40 * 41 // 2


@pytest.mark.parametrize(
    ("flags", "detail"),
    [
        (["--memory-limit", "lots"], "memory"),
        (["--memory-limit", "1GB'; DROP TABLE x; --"], "memory"),  # a setting, never SQL
        (["--db", "{not_a_db}"], "--db"),
    ],
)
def test_a_database_that_cannot_be_opened_is_a_usage_error(
    tmp_path: Path, flags: list[str], detail: str
) -> None:
    # the database is opened by the composition root (entail.bootstrap.open_batch_database)
    (tmp_path / "tc.lp").write_text(TC)
    (tmp_path / "not.duckdb").write_text("this is not a DuckDB file")
    flags = [f.replace("{not_a_db}", str(tmp_path / "not.duckdb")) for f in flags]
    out, err = io.StringIO(), io.StringIO()
    code = main(["batch", str(tmp_path / "tc.lp"), "--quiet", *flags], out, err)
    assert code == 2, err.getvalue()
    assert "entail: cannot open --db" in err.getvalue() and detail in err.getvalue().lower()
    assert out.getvalue() == ""
