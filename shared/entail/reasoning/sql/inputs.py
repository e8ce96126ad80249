"""The input mapping: which table or query supplies each input predicate.

A mapping is JSON-shaped, one entry per predicate (``name`` or ``name/arity``)::

    {"edge": "warehouse.edges",                                   # a table, all columns
     "person": {"table": "crm.people", "columns": ["id", "age"]}, # chosen columns, in order
     "flag": {"query": "SELECT id FROM crm.flags WHERE on_hold"}, # any query
     "raw": {"table": "staging.raw", "encoding": "clingo"}}       # text cells in clingo syntax

Columns are positional: the i-th column is the i-th argument. With the default
``"typed"`` encoding an integer column holds integers (32-bit, as in clingo)
and a text column holds strings, exactly as JSON case facts do. With
``"clingo"`` every column is text in clingo's term syntax (``42``, ``"text"``,
``abc``), which is how a batch's own ``term`` output columns are written, so one
batch's output can feed another; it is also the only way to supply constants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import BatchInputError

Encoding = Literal["typed", "clingo"]
_KEY = re.compile(r"(_*[a-z][A-Za-z0-9_']*)(?:/(\d+))?\Z")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class InputSpec:
    predicate: str
    arity: int | None  # when the key says it
    table: str | None = None
    query: str | None = None
    columns: tuple[str, ...] | None = None
    encoding: Encoding = "typed"

    def describe(self) -> str:
        return self.table if self.table is not None else f"query {self.query!r}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"encoding": self.encoding}
        if self.table is not None:
            out["table"] = self.table
        if self.query is not None:
            out["query"] = self.query
        if self.columns is not None:
            out["columns"] = list(self.columns)
        return out


def parse_inputs(mapping: Mapping[str, Any]) -> list[InputSpec]:
    """Validate an input mapping; raises :class:`BatchInputError` naming the bad entry."""
    if not isinstance(mapping, Mapping):
        raise BatchInputError("the input mapping must be an object: predicate -> table or {table|query, ...}")
    specs: list[InputSpec] = []
    seen: set[str] = set()
    for key, value in mapping.items():
        m = _KEY.match(key) if isinstance(key, str) else None
        if m is None:
            raise BatchInputError(f"input {key!r}: not a predicate name (name or name/arity)")
        name, arity = m.group(1), int(m.group(2)) if m.group(2) else None
        if name in seen:
            raise BatchInputError(f"input {key!r}: predicate '{name}' is mapped twice")
        seen.add(name)
        if isinstance(value, str):
            value = {"table": value}
        if not isinstance(value, Mapping):
            raise BatchInputError(f"input {key!r}: expected a table name or an object")
        unknown = set(value) - {"table", "query", "columns", "encoding"}
        if unknown:
            raise BatchInputError(f"input {key!r}: unknown field(s) {', '.join(sorted(unknown))}")
        table, query = value.get("table"), value.get("query")
        if (table is None) == (query is None):
            raise BatchInputError(f"input {key!r}: give exactly one of 'table' and 'query'")
        for field_name, field_value in (("table", table), ("query", query)):
            if field_value is not None and (not isinstance(field_value, str) or not field_value.strip()):
                raise BatchInputError(f"input {key!r}: '{field_name}' must be a non-empty string")
        if table is not None and not re.fullmatch(r"[A-Za-z0-9_.\-`\"]+", table):
            raise BatchInputError(f"input {key!r}: {table!r} is not a table name")
        cols = value.get("columns")
        if cols is not None:
            if not isinstance(cols, list) or not all(isinstance(c, str) and _COLUMN.match(c) for c in cols):
                raise BatchInputError(f"input {key!r}: 'columns' must be a list of column names")
            cols = tuple(cols)
        encoding = value.get("encoding", "typed")
        if encoding not in ("typed", "clingo"):
            raise BatchInputError(f"input {key!r}: 'encoding' must be 'typed' or 'clingo'")
        specs.append(InputSpec(name, arity, table, query, cols, encoding))
    return specs
