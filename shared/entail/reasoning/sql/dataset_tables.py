"""Where a dataset predicate lives in BigQuery: its table's name and columns.

The cloud dataset store (``entail.datasets.cloud_store``) loads every version of
a predicate into one table and the SQL batch path (:mod:`.datasets`) reads it
filtered on ``version``; both take the name and the columns from here, so they
cannot drift apart. Stdlib only: the engine's layer, which both may import.

Name: ``ds_<tenant>__<name>__<predicate>__<arity>``. BigQuery table names hold
only letters, digits and ``_``, while tenants and dataset names may also hold
``.`` and ``-``; each part is escaped (``_`` as ``_0``, ``-`` as ``_1``, ``.`` as
``_2``, ``'`` as ``_3``) so that ``__`` only ever separates parts. The map is
injective: tenant ``a_b``'s dataset ``c`` and tenant ``a``'s dataset ``b_c`` get
different tables (one tenant's rows never land in another's table). The arity is
part of the name, as a version may change a predicate's arity.

Columns: ``version`` (INT64), then the Parquet file's own layout
(``entail.datasets.ingest``): per argument ``k`` the pair ``i{k}`` (INT64, the value
when it is an integer) and ``s{k}`` (STRING, when it is a string), exactly one
set; a 0-ary predicate has the one column ``u`` (always 0).
"""

from __future__ import annotations

import re

_ESCAPES = {"_": "_0", "-": "_1", ".": "_2", "'": "_3"}
_PART = re.compile(r"[A-Za-z0-9_.'-]+\Z")
#: BigQuery's limit on a table name
MAX_TABLE_NAME = 1024


def _escaped(part: str) -> str:
    if not _PART.match(part):
        raise ValueError(f"{part!r} cannot be part of a BigQuery table name")
    return "".join(_ESCAPES.get(c, c) for c in part)


def bigquery_table_name(tenant: str, name: str, predicate: str, arity: int) -> str:
    """The table of ``predicate/arity`` of dataset ``name`` of ``tenant``."""
    if arity < 0:
        raise ValueError(f"arity {arity} is negative")
    table = f"ds_{_escaped(tenant)}__{_escaped(name)}__{_escaped(predicate)}__{int(arity)}"
    if len(table) > MAX_TABLE_NAME:
        raise ValueError(f"the table name of {tenant}/{name}/{predicate} is too long for BigQuery")
    return table


def bigquery_columns(arity: int) -> list[tuple[str, str]]:
    """(column, BigQuery type) of a predicate's table, ``version`` first."""
    if arity == 0:
        return [("version", "INT64"), ("u", "INT64")]
    columns = [("version", "INT64")]
    for k in range(arity):
        columns += [(f"i{k}", "INT64"), (f"s{k}", "STRING")]
    return columns
