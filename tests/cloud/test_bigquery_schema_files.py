"""The BigQuery schema files in terraform/ are exactly what the one schema
(entail.audit.schema) renders: scripts/gen_bigquery_schemas.py --check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from entail.audit.schema import TABLES, bigquery_schema_json

from . import iac_tools as iac

SCRIPT = iac.ROOT / "scripts" / "gen_bigquery_schemas.py"
SCHEMAS = iac.TERRAFORM_DIR / "modules" / "entail" / "schemas"


def check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_committed_schema_files_match_the_code() -> None:
    result = check(SCHEMAS)
    assert result.returncode == 0, result.stderr
    for name in TABLES:
        assert json.loads((SCHEMAS / f"{name}.json").read_text()) == bigquery_schema_json(name)
    options = json.loads((SCHEMAS / "tables.json").read_text())
    for name, table in TABLES.items():
        assert options[name]["partition_expiration_days"] == table.partition_expiration_days
        assert options[name]["require_partition_filter"] == table.require_partition_filter
        assert options[name]["clustering"] == list(table.clustering)
        assert options[name]["partition_field"] == table.partition_field


def test_check_reports_a_drifted_and_a_stray_file(tmp_path: Path) -> None:
    shutil.copytree(SCHEMAS, tmp_path, dirs_exist_ok=True)
    decisions = tmp_path / "decisions.json"
    columns = json.loads(decisions.read_text())
    decisions.write_text(json.dumps(columns[:-1], indent=2) + "\n")
    (tmp_path / "retired.json").write_text("[]\n")
    result = check(tmp_path)
    assert result.returncode == 1
    assert "decisions.json: out of date" in result.stderr
    assert "retired.json: no audit table" in result.stderr


def test_generation_writes_every_table_and_removes_strays(tmp_path: Path) -> None:
    (tmp_path / "retired.json").write_text("[]\n")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(f"{n}.json" for n in TABLES), "tables.json"]
    )
    assert check(tmp_path).returncode == 0
