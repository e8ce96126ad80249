"""The infrastructure-as-code tools of tests/cloud, in their own venvs.

python-hcl2 (``.tools/hcl2-venv``) and checkov, check-jsonschema and
openapi-spec-validator (``.tools/checkov-venv``) cannot live in .venv: both
python-hcl2 and checkov install a module named ``hcl2``. ``make iac-tools``
creates them (scripts/setup_iac_tools.sh); :func:`ensure` does the same for a
test run started without make, under a lock so that xdist workers do not
build them twice at once.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
HCL2_PYTHON = TOOLS / "hcl2-venv" / "bin" / "python"
CHECKOV = TOOLS / "checkov-venv" / "bin" / "checkov"
CHECK_JSONSCHEMA = TOOLS / "checkov-venv" / "bin" / "check-jsonschema"
OPENAPI_SPEC_VALIDATOR = TOOLS / "checkov-venv" / "bin" / "openapi-spec-validator"
TERRAFORM_DIR = ROOT / "terraform"


def ensure() -> None:
    """Create the tool venvs if they are missing (idempotent, serialised)."""
    TOOLS.mkdir(exist_ok=True)
    with (TOOLS / ".iac-tools.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "setup_iac_tools.sh")],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=900,
        )


@cache
def terraform() -> dict[str, Any]:
    """Every .tf file under terraform/, parsed by python-hcl2: {relative path: body}."""
    ensure()
    out = subprocess.run(
        [str(HCL2_PYTHON), str(ROOT / "scripts" / "hcl_to_json.py"), str(TERRAFORM_DIR)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


def blocks(kind: str, folder: str) -> list[tuple[str, dict[str, Any]]]:
    """(file, block) of every top-level block of ``kind`` (variable, output,
    module, locals) in the .tf files of ``folder`` (relative to terraform/)."""
    found = []
    for path, body in terraform().items():
        if path.rsplit("/", 1)[0] == folder:
            for block in body.get(kind, []):
                found.append((path, block))
    return found


def resources(folder: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(type, name) -> body of every resource in ``folder``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for _, block in blocks("resource", folder):
        for rtype, named in block.items():
            for name, body in named.items():
                found[(rtype, name)] = body
    return found


def named(kind: str, folder: str) -> dict[str, dict[str, Any]]:
    """name -> body of every variable, output or module block in ``folder``."""
    return {name: body for _, block in blocks(kind, folder) for name, body in block.items()}


def locals_of(folder: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, block in blocks("locals", folder):
        merged.update(block)
    return merged
