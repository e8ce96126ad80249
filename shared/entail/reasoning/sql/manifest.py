"""The manifest of a batch run: what went in, what came out, and under which ruleset.

Output columns are typed by what they hold: ``integer`` (64-bit column of
32-bit values), ``string``, ``constant`` (the constant's name), or ``term``
(text in clingo's syntax — ``42``, ``"text"``, ``abc``, ``#inf`` — for a
column that mixes kinds; readable back with ``"encoding": "clingo"``). A
0-ary predicate's table has one ``holds`` column and one row when it holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "entail.batch.manifest.v1"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # integer | string | constant | term | boolean


@dataclass(frozen=True)
class OutputInfo:
    predicate: str  # name/arity
    table: str
    columns: list[ColumnInfo]
    rows: int


@dataclass(frozen=True)
class StratumInfo:
    predicates: list[str]
    recursive: bool
    iterations: int
    elapsed_ms: float
    method: str = "semi-naive"  # or "recursive-cte" (DuckDB, linear recursion without new values)


@dataclass
class Manifest:
    schema: str
    ruleset_hash: str
    dialect: str
    started_at: str
    finished_at: str
    elapsed_ms: float
    inputs: dict[str, dict[str, Any]]
    outputs: list[OutputInfo]
    strata: list[StratumInfo]
    derived_rows: int
    bytes_scanned: int
    # the dataset versions read: binding, name, version, hash, and per predicate its relation and rows
    datasets: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out

    def output(self, predicate: str) -> OutputInfo:
        for o in self.outputs:
            if o.predicate == predicate:
                return o
        raise KeyError(predicate)
