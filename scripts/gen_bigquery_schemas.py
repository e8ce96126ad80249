"""Write the audit tables of ``entail.audit.schema`` into Terraform.

The one definition of the audit tables is ``entail.audit.schema``. This script
renders it for ``terraform/modules/entail/bigquery.tf``:

* ``schemas/<table>.json``: the column schema (``google_bigquery_table.schema``);
* ``schemas/tables.json``: each table's description, partitioning, partition
  expiration in days, ``require_partition_filter`` and clustering.

``--check`` writes nothing and exits 1 when a committed file differs
(tests/cloud/test_bigquery_schema_files.py runs it).

    .venv/bin/python scripts/gen_bigquery_schemas.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from entail.audit.schema import TABLES, bigquery_schema_json

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "terraform" / "modules" / "entail" / "schemas"
OPTIONS_FILE = "tables.json"


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def table_options() -> dict[str, dict[str, Any]]:
    return {
        t.name: {
            "description": t.description,
            "partition_field": t.partition_field,
            "partition_type": t.partition_type,
            "partition_expiration_days": t.partition_expiration_days,
            "require_partition_filter": t.require_partition_filter,
            "clustering": list(t.clustering),
        }
        for t in TABLES.values()
    }


def rendered() -> dict[str, str]:
    """File name -> the text it must hold."""
    files = {f"{name}.json": _dump(bigquery_schema_json(name)) for name in TABLES}
    files[OPTIONS_FILE] = _dump(table_options())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the audit tables into Terraform.")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR, help="output folder")
    args = parser.parse_args(argv)

    expected = rendered()
    if args.check:
        stale = [
            name
            for name, text in expected.items()
            if not (args.out / name).is_file() or (args.out / name).read_text() != text
        ]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in expected)
        for name in stale:
            print(f"{args.out / name}: out of date; run scripts/gen_bigquery_schemas.py", file=sys.stderr)
        for name in extra:
            print(f"{args.out / name}: no audit table of that name", file=sys.stderr)
        return 1 if stale or extra else 0

    args.out.mkdir(parents=True, exist_ok=True)
    for stale_file in args.out.glob("*.json"):
        if stale_file.name not in expected:
            stale_file.unlink()
    for name, text in expected.items():
        (args.out / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
