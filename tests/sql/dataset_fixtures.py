"""Dataset versions for the SQL path's tests, written as the stores lay them out.

Locally a version is a directory with a Parquet file per predicate; in BigQuery a
predicate is one table (``entail.reasoning.sql.dataset_tables``) with a ``version``
column (docs/datasets.md, "Storage"). Both in the stores' column layout: per
argument ``k`` an integer column ``i{k}`` and a text column ``s{k}``, exactly one
of them set; a 0-ary predicate has one column ``u``; rows distinct, in canonical
order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import clingo
import duckdb

Rows = Sequence[Sequence[Any]]


def column_types(rows: Rows, arity: int) -> list[str]:
    """The declared type a column's values call for: ``int``, ``string`` or ``any``."""
    out = []
    for i in range(arity):
        kinds = {type(r[i]) for r in rows}
        out.append("int" if kinds == {int} else "string" if kinds == {str} else "any")
    return out


def canonical(rows: Rows) -> list[tuple[Any, ...]]:
    # clingo's term order: integers before strings, then by value
    return sorted({tuple(r) for r in rows}, key=lambda r: [(type(v) is str, v) for v in r])


def layout_rows(rows: Rows, arity: int) -> list[tuple[Any, ...]]:
    """Rows in the column layout: (i0, s0, i1, s1, ...), or (0,) for a 0-ary fact."""
    if arity == 0:
        return [(0,)] if rows else []
    return [
        tuple(c for v in r for c in ((v, None) if type(v) is int else (None, v))) for r in canonical(rows)
    ]


def layout_columns(arity: int) -> list[tuple[str, str]]:
    if arity == 0:
        return [("u", "int")]
    return [c for k in range(arity) for c in ((f"i{k}", "int"), (f"s{k}", "string"))]


def content_hash(facts: Mapping[str, Rows], arities: Mapping[str, int]) -> str:
    """``entail.dataset.v1`` (docs/datasets.md)."""
    lines = ["entail.dataset.v1"]
    for pred in sorted(facts, key=lambda p: (p, arities[p])):
        lines.append(f"#predicate {pred}/{arities[pred]}")
        lines.extend(
            json.dumps(list(r), separators=(",", ":"), ensure_ascii=False) for r in canonical(facts[pred])
        )
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


def write_parquet_version(directory: Path, facts: Mapping[str, Rows], arities: Mapping[str, int]) -> None:
    """One version directory: ``<predicate>.parquet`` per predicate."""
    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        for pred, rows in facts.items():
            columns = layout_columns(arities[pred])
            cols = ", ".join(f"{n} {'BIGINT' if t == 'int' else 'VARCHAR'}" for n, t in columns)
            con.execute(f"CREATE OR REPLACE TABLE t ({cols})")
            values = layout_rows(rows, arities[pred])
            if values:
                con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})", values)
            path = str(directory / f"{pred}.parquet").replace("'", "''")
            con.execute(f"COPY (SELECT * FROM t) TO '{path}' (FORMAT parquet)")
    finally:
        con.close()


def write_bigquery_version(
    client: Any,
    dataset: str,
    tenant: str,
    name: str,
    version: int,
    facts: Mapping[str, Rows],
    arities: Mapping[str, int],
) -> None:
    """Append a version's rows to the per-predicate tables (created when missing)."""
    from google.cloud import bigquery

    from entail.reasoning.sql.dataset_tables import bigquery_table_name

    for pred, rows in facts.items():
        columns = layout_columns(arities[pred])
        table_id = f"{client.project}.{dataset}.{bigquery_table_name(tenant, name, pred, arities[pred])}"
        fields = [bigquery.SchemaField("version", "INT64")]
        fields += [bigquery.SchemaField(n, "INT64" if t == "int" else "STRING") for n, t in columns]
        client.create_table(bigquery.Table(table_id, schema=fields), exists_ok=True, retry=None)
        payload = [
            {"version": version, **{n: v for (n, _), v in zip(columns, r, strict=True) if v is not None}}
            for r in layout_rows(rows, arities[pred])
        ]
        if payload:
            errors = client.insert_rows_json(table_id, payload, retry=None)
            assert not errors, errors


def facts_text(facts: Mapping[str, Rows], types: Mapping[str, Sequence[str]]) -> str:
    """The dataset's facts as clingo facts (``const`` columns as constants): what the
    online engine is given to compare with the SQL path."""
    out = []
    for pred, rows in facts.items():
        for row in rows:
            args = []
            for value, t in zip(row, types[pred], strict=True):
                if t == "const" or type(value) is int:
                    args.append(str(value))
                else:
                    args.append(str(clingo.String(value)))
            out.append(f"{pred}({', '.join(args)})." if args else f"{pred}.")
    return "\n".join(out) + "\n"
