"""Run a program with JSON case facts through the SQL path and read the model back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb

from entail import reasoning
from entail.reasoning.sql import Backend, DuckDBBackend, Manifest, run_batch
from entail.reasoning.terms import Const, Term, format_atom

Signature = tuple[str, int]
Model = dict[Signature, set[tuple[Term, ...]]]
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\Z', re.S)


def parse_term_text(text: str) -> Term:
    """A ``term`` output cell (clingo syntax) back to a Python term."""
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    m = _STRING.match(text)
    if m:
        return re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(1), flags=re.S)
    return Const(text)


def load_facts(
    con: duckdb.DuckDBPyConnection,
    facts: Mapping[str, list[list[Any]]],
    arities: Mapping[str, int],
    schema: str = "main",
) -> dict[str, Any]:
    """Write case facts into DuckDB tables ``<schema>.in_<pred>``; return the input mapping.

    A column holding only integers or only strings is typed; a table with a
    mixed column is written as clingo text (``"encoding": "clingo"``).
    """
    mapping: dict[str, Any] = {}
    for pred, rows in facts.items():
        arity = arities[pred]
        table = f'{schema}."in_{pred.replace(chr(39), "_q")}"'
        kinds = [{type(r[i]) for r in rows} for i in range(arity)]
        mixed = any(len(k) > 1 for k in kinds)
        if arity == 0:
            con.execute(f"CREATE OR REPLACE TABLE {table} (x INTEGER)")
            if rows:
                con.execute(f"INSERT INTO {table} VALUES (1)")
            mapping[f"{pred}/0"] = {"query": f"SELECT x FROM {table}"}
            continue
        if mixed:
            types = ["VARCHAR"] * arity
            values = [[reasoning.terms.format_term(v) for v in r] for r in rows]
        else:
            types = ["VARCHAR" if k == {str} else "BIGINT" for k in kinds]
            values = rows
        cols = ", ".join(f"a{i} {t}" for i, t in enumerate(types))
        con.execute(f"CREATE OR REPLACE TABLE {table} ({cols})")
        if values:
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * arity)})", values)
        mapping[f"{pred}/{arity}"] = {"table": table, "encoding": "clingo" if mixed else "typed"}
    return mapping


def read_outputs(backend: Backend, manifest: Manifest) -> Model:
    model: Model = {}
    for out in manifest.outputs:
        name, arity = out.predicate.rsplit("/", 1)
        sig = (name, int(arity))
        rows = backend.rows(f"SELECT * FROM {out.table}")
        decoded: set[tuple[Term, ...]] = set()
        for row in rows:
            if sig[1] == 0:
                decoded.add(())
                continue
            vals: list[Term] = []
            for col, cell in zip(out.columns, row, strict=True):
                if col.type == "integer":
                    vals.append(int(cell))
                elif col.type == "string":
                    vals.append(str(cell))
                elif col.type == "constant":
                    vals.append(Const(str(cell)))
                else:
                    vals.append(parse_term_text(str(cell)))
            decoded.add(tuple(vals))
        model[sig] = decoded
    return model


def sql_model(
    source: str,
    facts: Mapping[str, list[list[Any]]],
    *,
    backend: Backend | None = None,
    all_predicates: bool = False,
    recursive_cte: bool = True,
) -> tuple[Model, Manifest]:
    """The model through the SQL path (shown predicates, or every predicate of the program)."""
    rs = reasoning.compile(source)
    if backend is None:
        backend = DuckDBBackend(duckdb.connect(), dest_schema="out", recursive_cte=recursive_cte)
    con = getattr(backend, "con", None)
    program_names = {name for name, _ in rs.analysis.signatures}
    used = {p: rows for p, rows in facts.items() if p in program_names}
    mapping = load_facts(con, used, dict(rs.analysis.signatures)) if con is not None else {}
    outputs = list(rs.analysis.signatures) if all_predicates else None
    manifest = run_batch(rs, backend, mapping, outputs=outputs)
    return read_outputs(backend, manifest), manifest


def atoms(model: Model) -> list[str]:
    return sorted(format_atom(name, args) for (name, _), rows in model.items() for args in rows)
