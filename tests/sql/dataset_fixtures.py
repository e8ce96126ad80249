"""Dataset versions for the SQL path's tests, written as the stores lay them out.

Locally a version is a directory with a Parquet file per predicate (columns
``c0 … cn-1``, integer columns ``BIGINT``, text ``VARCHAR``, rows in canonical
order); in BigQuery a predicate is one table ``ds_<tenant>_<name>_<predicate>``
with a ``version`` column (docs/datasets.md, "Storage").
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
    """``int`` for a column of integers, else ``string`` (the test data never mixes kinds)."""
    return ["int" if all(type(r[i]) is int for r in rows) else "string" for i in range(arity)]


def _canonical(rows: Rows) -> list[tuple[Any, ...]]:
    # clingo's term order: integers before strings, then by value
    return sorted({tuple(r) for r in rows}, key=lambda r: [(type(v) is str, v) for v in r])


def content_hash(facts: Mapping[str, Rows], arities: Mapping[str, int]) -> str:
    """``entail.dataset.v1`` (docs/datasets.md)."""
    lines = ["entail.dataset.v1"]
    for pred in sorted(facts, key=lambda p: (p, arities[p])):
        lines.append(f"#predicate {pred}/{arities[pred]}")
        lines.extend(
            json.dumps(list(r), separators=(",", ":"), ensure_ascii=False) for r in _canonical(facts[pred])
        )
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


def write_parquet_version(
    directory: Path,
    facts: Mapping[str, Rows],
    arities: Mapping[str, int],
    types: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """One version directory: ``<predicate>.parquet`` per predicate."""
    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        for pred, rows in facts.items():
            arity = arities[pred]
            kinds = list(types[pred]) if types else column_types(rows, arity)
            cols = ", ".join(f"c{i} {'BIGINT' if k == 'int' else 'VARCHAR'}" for i, k in enumerate(kinds))
            con.execute(f"CREATE OR REPLACE TABLE t ({cols or 'c0 BIGINT'})")
            canonical = _canonical(rows) if arity else ([(1,)] if rows else [])
            if canonical:
                con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * max(arity, 1))})", canonical)
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

    from entail.reasoning.sql.datasets import bigquery_table_name

    for pred, rows in facts.items():
        arity = arities[pred]
        kinds = column_types(rows, arity)
        table_id = f"{client.project}.{dataset}.{bigquery_table_name(tenant, name, pred)}"
        fields = [bigquery.SchemaField("version", "INT64")]
        fields += [
            bigquery.SchemaField(f"c{i}", "INT64" if k == "int" else "STRING") for i, k in enumerate(kinds)
        ]
        client.create_table(bigquery.Table(table_id, schema=fields), exists_ok=True, retry=None)
        payload = [{"version": version, **{f"c{i}": v for i, v in enumerate(r)}} for r in _canonical(rows)]
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
