"""The web app's test fixtures hold what the API sends: every proof in them is
valid against the engine's proof schema (entail.proof.v1), so the web tests
exercise the shapes the engine really produces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from entail import reasoning

FIXTURES = Path(__file__).resolve().parents[2] / "static" / "tests" / "fixtures"


def _proofs(value: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every non-null ``proof`` member, with a JSON pointer to it."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, member in value.items():
            if key == "proof" and member is not None:
                found.append((f"{where}/{key}", member))
            else:
                found.extend(_proofs(member, f"{where}/{key}"))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found.extend(_proofs(member, f"{where}/{index}"))
    return found


FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def test_there_are_fixtures_with_proofs() -> None:
    assert any(_proofs(json.loads(path.read_text())) for path in FIXTURE_FILES)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_proofs_follow_the_proof_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(reasoning.proof_schema())
    for pointer, proof in _proofs(json.loads(path.read_text())):
        errors = [
            f"{pointer}{'/' if e.path else ''}{'/'.join(map(str, e.path))}: {e.message}"
            for e in validator.iter_errors(proof)
        ]
        assert not errors, errors


def test_an_invalid_proof_is_caught() -> None:
    validator = jsonschema.Draft202012Validator(reasoning.proof_schema())
    fixture = json.loads((FIXTURES / "loan-dee-answers.json").read_text())
    proof = fixture[0]["answers"][0]["proof"]
    proof["kind"] = "guess"
    assert list(validator.iter_errors(proof))
