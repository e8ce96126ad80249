"""Datasets on the SQL path: a dataset predicate is a table the compiled SQL reads in place.

A ruleset's ``%@dataset`` declarations (docs/datasets.md) name predicates whose
facts come from a dataset version. On the SQL path each such predicate is a
relation the warehouse already holds — never copied into the run:

- locally (DuckDB) the version's Parquet file, ``read_parquet('<dir>/<pred>.parquet')``;
- in BigQuery the predicate's table (named by :mod:`.dataset_tables`, which the
  cloud dataset store loads) filtered on ``version = N``.

Both hold the stores' column layout: per argument ``k`` an integer column
``i{k}`` and a text column ``s{k}``, exactly one of them set (so one argument can
mix integers and strings). The run (:mod:`.run`) encodes the values in a view
through the same symbol dictionary as every other input (:mod:`.encoding`), by
the declared column types: ``int`` the integer, ``string`` the string, ``const``
the text as a constant, ``any`` whichever is set (text as a string). A value
that does not fit its declared type fails the run with ``dataset-type-mismatch``
(checked once, by one scan of the relation). The manifest records every dataset version the run read
(binding, name, version, hash) with each predicate's relation and row count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bindings import Signature
from .dataset_tables import bigquery_table_name
from .errors import BatchInputError

COLUMN_TYPES = ("int", "string", "const", "any")
_NAME = re.compile(r"_*[a-z][A-Za-z0-9_']*\Z")
_SQL_NAME = re.compile(r"[A-Za-z0-9_]+\Z")
#: the declared types of one binding: each predicate's signature and column types
Declared = Sequence[tuple[Signature, Sequence[str]]]


class DatasetTypeMismatch(BatchInputError):
    """A dataset value that does not fit its declared column type (names the dataset,
    predicate, column, a bad value and how many there are)."""

    code = "dataset-type-mismatch"


#: the row position column of a numbered relation (DuckDB's ``read_parquet(..., file_row_number=true)``)
ROW_COLUMN = "file_row_number"


@dataclass(frozen=True)
class DatasetTable:
    """One dataset predicate as the warehouse holds it.

    ``relation`` is a SQL ``FROM`` item (a table name or ``read_parquet(...)``) in
    the stores' column layout (docs/datasets.md, "Storage"): per argument ``k`` an
    integer column ``i{k}`` and a text column ``s{k}``, exactly one of them set; a
    0-ary predicate has one column ``u``. ``where`` is an optional filter
    (``version = 3``). ``numbered``, where the warehouse can tell, is the same
    relation with a ``file_row_number`` column (the row's 0-based position in
    canonical order), to name the first bad row of a type mismatch.
    """

    predicate: str
    types: tuple[str, ...]
    relation: str
    where: str | None = None
    numbered: str | None = None
    # a BigQuery table the cloud store creates on the first version with rows: missing, it is empty
    may_be_missing: bool = False

    @property
    def arity(self) -> int:
        return len(self.types)

    @property
    def signature(self) -> Signature:
        return (self.predicate, len(self.types))

    def select(self) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        return f"SELECT * FROM {self.relation}{where}"

    def describe(self) -> str:
        return self.relation + (f" WHERE {self.where}" if self.where else "")


@dataclass(frozen=True)
class DatasetSource:
    """One bound dataset version: what the manifest records, and where its predicates are."""

    binding: str
    name: str
    version: int
    hash: str | None  # None where the caller named the version without its hash (batch_reason)
    tables: tuple[DatasetTable, ...]

    def ref(self) -> dict[str, Any]:
        """The ``DatasetRef`` shape (docs/datasets.md)."""
        return {"binding": self.binding, "name": self.name, "version": self.version, "hash": self.hash}


def _checked_types(binding: str, sig: Signature, types: Sequence[str]) -> tuple[str, ...]:
    if len(types) != sig[1] or any(t not in COLUMN_TYPES for t in types):
        raise BatchInputError(
            f"dataset {binding!r}: predicate {sig[0]}/{sig[1]} needs {sig[1]} column type(s) "
            f"out of {', '.join(COLUMN_TYPES)}, got {list(types)}"
        )
    return tuple(types)


def parquet_dataset(
    binding: str,
    directory: Path,
    declared: Declared,
    *,
    name: str,
    version: int,
    hash: str | None,
) -> DatasetSource:
    """A local version directory (a Parquet file per predicate, docs/datasets.md) for DuckDB.

    Each declared predicate reads ``<directory>/<predicate>.parquet`` in place; a
    predicate the version does not hold has no facts, as in a decision over the
    same version (``Ruleset.materialise``).
    """
    if not directory.is_dir():
        raise BatchInputError(f"dataset {binding!r}: no version directory {str(directory)!r}")
    tables = []
    for sig, types in declared:
        path = parquet_path(directory, sig)
        if path is None:
            tables.append(DatasetTable(sig[0], _checked_types(binding, sig, types), _empty_relation(sig[1])))
            continue
        literal = "'" + str(path).replace("'", "''") + "'"
        tables.append(
            DatasetTable(
                sig[0],
                _checked_types(binding, sig, types),
                f"read_parquet({literal})",
                numbered=f"read_parquet({literal}, file_row_number = true)",
            )
        )
    return DatasetSource(binding, name, version, hash, tuple(tables))


def _empty_relation(arity: int) -> str:
    """No rows, in the column layout (DuckDB): a predicate a version does not hold."""
    columns = ["CAST(0 AS BIGINT) AS u"] if arity == 0 else []
    for k in range(arity):
        columns += [f"CAST(NULL AS BIGINT) AS i{k}", f"CAST(NULL AS VARCHAR) AS s{k}"]
    return f"(SELECT {', '.join(columns)} LIMIT 0)"


def parquet_path(directory: Path, sig: Signature) -> Path | None:
    """The Parquet file of a predicate in a version directory (``<name>.parquet``: a
    dataset holds one arity per predicate name)."""
    path = directory / f"{sig[0]}.parquet"
    return path if path.is_file() else None


def bigquery_dataset(
    binding: str,
    declared: Declared,
    *,
    project: str,
    dataset: str,
    tenant: str,
    name: str,
    version: int,
    hash: str | None,
) -> DatasetSource:
    """A dataset version in BigQuery: each declared predicate is its table
    ``<project>.<dataset>.<bigquery_table_name(...)>`` filtered on ``version``."""
    if not _SQL_NAME.match(dataset):
        raise BatchInputError(f"dataset {binding!r}: dataset {dataset!r} cannot name a BigQuery dataset")
    tables = []
    for sig, types in declared:
        try:
            name_in_bq = bigquery_table_name(tenant, name, sig[0], sig[1])
        except ValueError as e:
            raise BatchInputError(f"dataset {binding!r}: {e}") from e
        table = f"`{project}.{dataset}.{name_in_bq}`"
        tables.append(
            DatasetTable(
                sig[0],
                _checked_types(binding, sig, types),
                table,
                where=f"version = {int(version)}",
                may_be_missing=True,
            )
        )
    return DatasetSource(binding, name, version, hash, tuple(tables))


def parse_dataset_option(text: str) -> tuple[str, str]:
    """``BINDING=SELECTOR`` (``orgchart=orgchart@3``) or a bare selector (its name binds)."""
    binding, sep, selector = text.partition("=")
    if not sep:
        selector = text
        binding = text.split("@", 1)[0]
    binding, selector = binding.strip(), selector.strip()
    if not _NAME.match(binding) or not selector:
        raise BatchInputError(f"--dataset {text!r}: expected BINDING=SELECTOR, e.g. orgchart=orgchart@3")
    return binding, selector
