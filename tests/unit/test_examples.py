"""The bundled examples in shared/entail/examples pass their own tests and the documented code runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from entail import reasoning
from entail.reasoning.testing import load_test_cases, run_test_case

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "shared" / "entail" / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_passes_its_tests(example: Path) -> None:
    rs = reasoning.compile((example / "program.lp").read_text(), str(example / "program.lp"))
    assert rs.warnings == []
    outcomes = [run_test_case(rs, case) for case in load_test_cases(example / "tests.yaml")]
    assert outcomes
    assert [o.problems for o in outcomes if not o.passed] == []


@pytest.mark.parametrize("doc", ["README.md", "docs/engine.md"])
def test_python_snippets_in_docs_run(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    text = (ROOT / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, doc, "exec"), {})
