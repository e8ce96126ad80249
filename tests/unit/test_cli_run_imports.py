"""``entail run`` starts light: no service stack (pydantic, Redis, DuckDB, HTTP clients) and no YAML.

Process start is part of every shell run (bench/cli_run.py); the composition
root alone pulled in pydantic and DuckDB, about half a second, through the
``entail batch`` parser that every command builds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pydantic", "redis", "duckdb", "httpx", "yaml", "fastapi", "entail.bootstrap", "entail.settings")


def test_entail_run_imports_nothing_of_the_service_stack(tmp_path: Path) -> None:
    program = tmp_path / "p.lp"
    program.write_text("q(X) :- p(X).\n#defined p/1.\n")
    facts = tmp_path / "f.lp"
    facts.write_text("p(1). p(2).\n")
    script = (
        "import json, sys, io\n"
        "from entail import cli\n"
        "out = io.StringIO()\n"
        f"code = cli.main(['run', {str(program)!r}, '--facts', {str(facts)!r}, '--format', 'atoms'], out)\n"
        f"print(json.dumps([code, out.getvalue(), [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    code, printed, loaded = json.loads(done.stdout.splitlines()[-1])
    assert (code, printed) == (0, "p(1)\np(2)\nq(1)\nq(2)\n")
    assert loaded == []
