"""`entail run --why-not`: the text rendering, the JSON form, and a refused atom."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOAN = Path(__file__).resolve().parents[3] / "shared" / "entail" / "examples" / "loan" / "program.lp"
DECLINED = {
    "applicant": [["dee"]],
    "income": [["dee", 2000000, "salary"]],
    "credit_event": [["dee", "default", 2023]],
    "requested": [["dee", 9000000]],
    "employment": [["dee", 30]],
}


def entail(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entail.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_why_not_text_and_json(tmp_path: Path) -> None:
    (tmp_path / "dee.json").write_text(json.dumps(DECLINED))
    common = ("run", str(LOAN), "--facts", "dee.json", "--why-not", 'decision("dee",approved)')
    proc = entail(*common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'why not decision("dee",approved):' in proc.stdout
    assert 'not declined(A): declined("dee") holds' in proc.stdout
    proc = entail(*common, "--why-not", 'stable_job("zed")', "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first, second = json.loads(proc.stdout)["why_not"]
    assert first["schema"] == "entail.why_not.v1"
    assert first["rules"][0]["failures"][0]["kind"] == "negation_holds"
    assert second["rules"][0]["failures"][0]["atom"] == 'employment("zed",M)'


def test_why_not_of_an_atom_that_holds_fails_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "dee.json").write_text(json.dumps(DECLINED))
    proc = entail(
        "run", str(LOAN), "--facts", "dee.json", "--why-not", 'decision("dee",declined)', cwd=tmp_path
    )
    assert proc.returncode == 1
    assert "error[invalid-why-not]" in proc.stderr and "holds in the model" in proc.stderr
    assert "Traceback" not in proc.stderr
