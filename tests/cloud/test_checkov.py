"""checkov on terraform/ and the Dockerfiles: no failed check, and every
skip is an inline ``#checkov:skip=<id>:<reason>`` whose reason says why."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from . import iac_tools as iac

pytestmark = pytest.mark.slow


def checkov(folder: str, framework: str) -> dict[str, Any]:
    iac.ensure()
    out = subprocess.run(
        [str(iac.CHECKOV), "-d", folder, "--framework", framework, "--skip-download", "-o", "json"],
        cwd=iac.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.stdout, out.stderr[-2000:]
    report: dict[str, Any] = json.loads(out.stdout)
    assert report["check_type"] == framework
    return report


def failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


def test_terraform_passes_checkov_with_justified_skips() -> None:
    report = checkov("terraform", "terraform")
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 50
    assert not failures(report), "\n".join(failures(report))
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.split()) >= 5, f"{check['check_id']} on {check['resource']}: skip without a reason"


def test_dockerfiles_pass_checkov() -> None:
    report = checkov("run_services", "dockerfile")
    assert report["summary"]["passed"] > 0
    assert not report["results"].get("skipped_checks")
    assert not failures(report), "\n".join(failures(report))
