"""``entail audit export``: a tenant's trail for a window, with its roots.

An export directory holds

- ``decisions.parquet`` — the rows, every column (for analysis tools);
- ``rows.jsonl`` — the same rows, one ``entail.row.v1`` encoding per line
  (without its ``entail.row.v1`` prefix line), in ``decision_id`` order:
  exactly the bytes the Merkle leaves hash, readable by anything that reads JSON;
- ``roots.jsonl`` / ``roots.parquet`` — every signed root of the tenant whose
  day lies in the window;
- ``keys/<key_id>.pem`` — the public keys those roots name (an auditor should
  still compare them with the keys published out of band);
- ``manifest.json`` — tenant, window, counts and the SHA-256 of each file.

Both audit stores export the same files: the local DuckDB store copies its rows
out with DuckDB; BigQuery rows are read day by day in pages of
:data:`PAGE_ROWS` (keyset on ``decision_id``, every query bounded by its day's
partition) and staged in a temporary DuckDB file, which orders them and writes
the Parquet files. :func:`upload` then puts an export in a bucket (the cloud).

``tools/audit_verifier/verify.py export DIR --keys KEYS`` checks it without Entail.
The window is whole UTC days, so every root in it is complete.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .duckdb_store import DuckDBAuditStore, _insert_many, create_table_sql
from .roots import ROOT_COLUMNS, parse_day, root_dicts, row_encodings
from .schema import AUDIT_ROOTS_TABLE, DECISIONS_TABLE
from .signing import Keyring

if TYPE_CHECKING:
    import duckdb

    from .bigquery_store import BigQueryAuditStore
    from .publish import RootPublisher

_COLS = ", ".join(f'"{c}"' for c in DECISIONS_TABLE.column_names)
#: BigQuery rows read per query (a page of a day's rows)
PAGE_ROWS = 2000
_JSON_COLUMNS = tuple(c.name for c in DECISIONS_TABLE.columns if c.type == "JSON")


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    rows: int
    roots: int


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def export(
    store: DuckDBAuditStore | BigQueryAuditStore,
    keyring: Keyring,
    tenant: str,
    first: str | date,
    last: str | date,
    out: Path,
    *,
    page_rows: int = PAGE_ROWS,
) -> ExportResult:
    """Export the days ``first`` … ``last`` (inclusive, UTC) of ``tenant`` to ``out``."""
    lo, hi = parse_day(first), parse_day(last)
    if lo > hi:
        raise ValueError(f"empty window: {lo} is after {hi}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "keys").mkdir(exist_ok=True)
    if isinstance(store, DuckDBAuditStore):
        n_rows, roots = _export_duckdb(store, tenant, lo, hi, out)
    else:
        n_rows, roots = _export_bigquery(store, tenant, lo, hi, out, page_rows)
    with (out / "roots.jsonl").open("w") as f:
        for root in roots:
            f.write(json.dumps(root, sort_keys=True, ensure_ascii=False) + "\n")
    for key_id in sorted({str(r["key_id"]) for r in roots}):
        pem = keyring.get(key_id)
        if pem is not None:
            (out / "keys" / f"{key_id}.pem").write_text(pem)
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = {
        "tenant": tenant,
        "first_day": lo.isoformat(),
        "last_day": hi.isoformat(),
        "rows": n_rows,
        "roots": len(roots),
        "files": {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return ExportResult(out, n_rows, len(roots))


def _export_duckdb(
    store: DuckDBAuditStore, tenant: str, lo: date, hi: date, out: Path
) -> tuple[int, list[dict[str, Any]]]:
    start, end = _start(lo), _start(hi) + timedelta(days=1)
    where = "tenant = ? AND completed_at >= ? AND completed_at < ?"
    params: list[Any] = [tenant, start, end]
    n_rows = store.copy_to_parquet(
        f"SELECT {_COLS} FROM decisions WHERE {where} ORDER BY decision_id", params, out / "decisions.parquet"
    )
    with (out / "rows.jsonl").open("wb") as f:
        for _, encoded in row_encodings(store, where, params):
            f.write(encoded.split(b"\n", 1)[1] + b"\n")
    root_where = "tenant = ? AND day >= ? AND day <= ?"
    root_params = [tenant, lo.isoformat(), hi.isoformat()]
    store.copy_to_parquet(
        f"SELECT {ROOT_COLUMNS} FROM audit_roots WHERE {root_where} ORDER BY day, seq",
        root_params,
        out / "roots.parquet",
    )
    return n_rows, root_dicts(store, root_where, root_params)


def _duckdb_row(row: dict[str, Any]) -> dict[str, Any]:
    """A BigQuery row (wire form) as DuckDB's JSON columns take it: JSON as text."""
    for name in _JSON_COLUMNS:
        value = row[name]
        if value is not None and not isinstance(value, str):
            row[name] = json.dumps(value, ensure_ascii=False)
    return row


def _export_bigquery(
    store: BigQueryAuditStore, tenant: str, lo: date, hi: date, out: Path, page_rows: int
) -> tuple[int, list[dict[str, Any]]]:
    import duckdb

    from .bigquery_store import _wire
    from .bigquery_trail import encode_bigquery_row, roots_of

    table = f"`{store.table_id('decisions')}`"
    with tempfile.TemporaryDirectory(prefix="entail-export-") as tmp:
        conn = duckdb.connect(str(Path(tmp) / "stage.duckdb"))
        try:
            conn.execute(create_table_sql(DECISIONS_TABLE))
            conn.execute(create_table_sql(AUDIT_ROOTS_TABLE))
            conn.execute("CREATE TABLE encodings (decision_id VARCHAR PRIMARY KEY, line VARCHAR NOT NULL)")
            day = lo
            while day <= hi:
                after = ""
                while True:
                    # one page: the day's partition, keyset on decision_id
                    found = store.query(
                        f"SELECT * FROM {table} WHERE tenant = @tenant AND completed_at >= @start"
                        " AND completed_at < @end AND decision_id > @after"
                        " ORDER BY decision_id LIMIT @limit",
                        {
                            "tenant": tenant,
                            "start": _start(day),
                            "end": _start(day) + timedelta(days=1),
                            "after": after,
                            "limit": page_rows,
                        },
                    )
                    if not found:
                        break
                    _stage(conn, [(r, _wire(DECISIONS_TABLE, r)) for r in found], encode_bigquery_row)
                    if len(found) < page_rows:
                        break
                    after = max(str(r["decision_id"]) for r in found)
                day += timedelta(days=1)
            roots = roots_of(
                store,
                "tenant = @tenant AND day >= @lo AND day <= @hi",
                {"tenant": tenant, "lo": lo.isoformat(), "hi": hi.isoformat()},
            )
            roots.sort(key=lambda r: (str(r["day"]), int(r["seq"])))
            if roots:
                _insert_many(conn, AUDIT_ROOTS_TABLE, roots, on_conflict_ignore=False)
            n_rows = _copy(
                conn, f"SELECT {_COLS} FROM decisions ORDER BY decision_id", out / "decisions.parquet"
            )
            _copy(conn, f"SELECT {ROOT_COLUMNS} FROM audit_roots ORDER BY day, seq", out / "roots.parquet")
            with (out / "rows.jsonl").open("wb") as f:
                cursor = conn.execute("SELECT line FROM encodings ORDER BY decision_id")
                while batch := cursor.fetchmany(page_rows):
                    f.writelines(line.encode("utf-8") + b"\n" for (line,) in batch)
        finally:
            conn.close()
    return n_rows, roots


def _stage(
    conn: duckdb.DuckDBPyConnection, rows: list[tuple[dict[str, Any], dict[str, Any]]], encode: Any
) -> None:
    """One page of BigQuery rows into the staging tables: the row (DuckDB form) and
    its ``entail.row.v1`` line. A row BigQuery returns twice (a streaming
    duplicate) is staged once."""
    fresh: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for raw, wire in rows:
        fresh.setdefault(str(wire["decision_id"]), (raw, wire))
    lines = [(d, encode(raw).split(b"\n", 1)[1].decode("utf-8")) for d, (raw, _) in fresh.items()]
    conn.executemany("INSERT OR IGNORE INTO encodings VALUES (?, ?)", lines)
    staged = {
        d
        for (d,) in conn.execute(
            "SELECT decision_id FROM decisions WHERE decision_id IN (SELECT unnest(?))", [list(fresh)]
        ).fetchall()
    }
    new = [_duckdb_row(wire) for d, (_, wire) in fresh.items() if d not in staged]
    if new:
        _insert_many(conn, DECISIONS_TABLE, new, on_conflict_ignore=False)


def _copy(conn: duckdb.DuckDBPyConnection, sql: str, path: Path) -> int:
    target = str(path).replace("'", "''")
    conn.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    found = conn.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
    return int(found[0]) if found else 0


def export_prefix(tenant: str, first: str | date, last: str | date, at: datetime) -> str:
    """``exports/<tenant>/<first>--<last>/<UTC time>``: each export its own prefix,
    so objects are only ever created, never replaced (the bucket's retention lock)."""
    from .publish import object_name

    object_name({"tenant": tenant, "day": parse_day(first).isoformat(), "seq": 0})  # tenant check
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"exports/{tenant}/{parse_day(first).isoformat()}--{parse_day(last).isoformat()}/{stamp}"


def upload(publisher: RootPublisher, directory: Path, prefix: str) -> list[str]:
    """Put every file of an export directory under ``prefix`` (manifest last: an
    export is complete when its manifest is there); the object names."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "manifest.json")
    names = []
    for path in [*files, directory / "manifest.json"]:
        name = f"{prefix}/{path.relative_to(directory).as_posix()}"
        publisher.put(name, path.read_bytes())
        names.append(name)
    return names
