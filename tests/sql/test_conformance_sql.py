"""The whole conformance corpus through the SQL path on DuckDB: clingo's models, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entail import reasoning

from .harness import atoms, sql_model

CORPUS = Path(__file__).resolve().parent.parent / "conformance"
CASES = sorted(
    p for p in CORPUS.iterdir() if (p / "program.lp").exists() and not (p / "expected.err").exists()
)


def _facts(case: Path) -> dict[str, list[list[object]]]:
    path = case / "facts.json"
    data: dict[str, list[list[object]]] = json.loads(path.read_text()) if path.exists() else {}
    return data


def test_corpus_is_found() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize("recursive_cte", [True, False], ids=["cte", "rounds"])
@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_case(case: Path, recursive_cte: bool) -> None:
    source = (case / "program.lp").read_text()
    facts = _facts(case)
    rs = reasoning.compile(source)
    names = {name for name, _ in rs.analysis.signatures}
    # clingo's shown atoms, minus case facts of predicates the program never mentions
    # (a batch only maps inputs the program reads)
    expected = [
        a for a in json.loads((case / "expected.json").read_text())["atoms"] if a.split("(")[0] in names
    ]
    everything, _ = sql_model(source, facts, all_predicates=True, recursive_cte=recursive_cte)
    shown = rs._shown_signatures(list(rs.analysis.signatures))
    assert atoms({s: r for s, r in everything.items() if s in shown}) == expected
    assert atoms(everything) == sorted(
        a for a in rs.evaluate(facts).model_atoms() if a.split("(")[0] in names
    )
