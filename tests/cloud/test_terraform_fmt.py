"""``terraform fmt -check`` over terraform/ where a terraform binary exists.

Only fmt: providers cannot be downloaded here, so there is no init, validate
or plan (test_terraform_invariants.py checks the module calls instead).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from . import iac_tools as iac

TERRAFORM = shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH")
def test_terraform_files_are_formatted() -> None:
    assert TERRAFORM is not None
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    out = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(iac.TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, f"terraform fmt would change:\n{out.stdout}{out.stderr}"
