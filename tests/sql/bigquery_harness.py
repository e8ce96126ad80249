"""Run a program with JSON case facts through the SQL path on the BigQuery emulator.

Case facts are streamed into typed tables of a fresh input dataset (a column
holding only integers is ``INT64``, only strings ``STRING``; a mixed column makes
the table clingo text, ``"encoding": "clingo"``), the batch runs with
:class:`BigQueryBackend`, and the outputs are read back and decoded exactly as
the DuckDB harness does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from entail import reasoning
from entail.reasoning.sql import BatchLimits, Manifest, run_batch
from entail.reasoning.sql.bigquery_backend import BigQueryBackend

from .harness import Model, read_outputs


def load_facts_bigquery(
    client: Any, dataset: str, facts: Mapping[str, list[list[Any]]], arities: Mapping[str, int]
) -> dict[str, Any]:
    """Write case facts into ``<dataset>.in_<pred>``; return the input mapping."""
    from google.cloud import bigquery

    project = client.project
    mapping: dict[str, Any] = {}
    for pred, rows in facts.items():
        arity = arities[pred]
        name = f"in_{pred.replace(chr(39), '_q')}"
        table_id = f"{project}.{dataset}.{name}"
        if arity == 0:
            schema = [bigquery.SchemaField("x", "INT64")]
            values: list[dict[str, Any]] = [{"x": 1}] if rows else []
            client.create_table(bigquery.Table(table_id, schema=schema), retry=None)
            if values:
                _insert(client, table_id, values)
            mapping[f"{pred}/0"] = {"query": f"SELECT x FROM `{table_id}`"}
            continue
        kinds = [{type(r[i]) for r in rows} for i in range(arity)]
        mixed = any(len(k) > 1 for k in kinds)
        if mixed:
            types = ["STRING"] * arity
            cells = [[reasoning.terms.format_term(v) for v in r] for r in rows]
        else:
            types = ["STRING" if k == {str} else "INT64" for k in kinds]
            cells = rows
        schema = [bigquery.SchemaField(f"a{i}", t) for i, t in enumerate(types)]
        client.create_table(bigquery.Table(table_id, schema=schema), retry=None)
        if cells:
            _insert(client, table_id, [{f"a{i}": v for i, v in enumerate(r)} for r in cells])
        mapping[f"{pred}/{arity}"] = {
            "table": f"{dataset}.{name}",
            "encoding": "clingo" if mixed else "typed",
        }
    return mapping


def _insert(client: Any, table_id: str, rows: list[dict[str, Any]]) -> None:
    errors = client.insert_rows_json(table_id, rows, retry=None)
    assert not errors, errors


def bigquery_model(
    client: Any,
    source: str,
    facts: Mapping[str, list[list[Any]]],
    *,
    all_predicates: bool = False,
    limits: BatchLimits | None = None,
) -> tuple[Model, Manifest]:
    """The model through the SQL path on BigQuery; the run's datasets are removed afterwards."""
    rs = reasoning.compile(source)
    tag = uuid.uuid4().hex[:10]
    inputs, work, dest = f"in_{tag}", f"work_{tag}", f"out_{tag}"
    client.create_dataset(inputs, retry=None)
    try:
        program_names = {name for name, _ in rs.analysis.signatures}
        used = {p: rows for p, rows in facts.items() if p in program_names}
        mapping = load_facts_bigquery(client, inputs, used, dict(rs.analysis.signatures))
        backend = BigQueryBackend(client, work_dataset=work, dest_dataset=dest, retry=None)
        outputs = list(rs.analysis.signatures) if all_predicates else None
        manifest = run_batch(rs, backend, mapping, outputs=outputs, limits=limits)
        return read_outputs(backend, manifest), manifest
    finally:
        for ds in (inputs, work, dest):
            client.delete_dataset(ds, delete_contents=True, not_found_ok=True, retry=None)
