"""``entail audit export``: a tenant's trail for a window, with its roots.

An export directory holds

- ``decisions.parquet`` — the rows, every column (for analysis tools);
- ``rows.jsonl`` — the same rows, one ``entail.row.v1`` encoding per line
  (without its ``entail.row.v1`` prefix line): exactly the bytes the Merkle
  leaves hash, readable by anything that reads JSON;
- ``roots.jsonl`` / ``roots.parquet`` — every signed root of the tenant whose
  day lies in the window;
- ``keys/<key_id>.pem`` — the public keys those roots name (an auditor should
  still compare them with the keys published out of band);
- ``manifest.json`` — tenant, window, counts and the SHA-256 of each file.

``tools/audit_verifier/verify.py export DIR --keys KEYS`` checks it without Entail.
The window is whole UTC days, so every root in it is complete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .duckdb_store import DuckDBAuditStore
from .roots import ROOT_COLUMNS, parse_day, root_dicts, row_encodings
from .schema import DECISIONS_TABLE
from .signing import Keyring

_COLS = ", ".join(f'"{c}"' for c in DECISIONS_TABLE.column_names)


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    rows: int
    roots: int


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def export(
    store: DuckDBAuditStore, keyring: Keyring, tenant: str, first: str | date, last: str | date, out: Path
) -> ExportResult:
    """Export the days ``first`` … ``last`` (inclusive, UTC) of ``tenant`` to ``out``."""
    lo, hi = parse_day(first), parse_day(last)
    if lo > hi:
        raise ValueError(f"empty window: {lo} is after {hi}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "keys").mkdir(exist_ok=True)
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
    roots = root_dicts(store, root_where, root_params)
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
