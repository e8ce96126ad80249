"""The Python SDK's types (clients/python/entail_client/types.py) are generated
from the backend's OpenAPI: the committed file matches what
scripts/gen_client_types.py makes of the app now, and the translation of JSON
Schema to Python types is right for the constructs pydantic emits."""

from __future__ import annotations

import importlib.util
import typing
from pathlib import Path
from types import ModuleType

import pytest
from entail_client import types

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_client_types.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_client_types", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(gen: ModuleType) -> str:
    text: str = gen.build()
    return text


def test_committed_types_are_current(gen: ModuleType, built: str) -> None:
    committed = gen.TYPES_PATH.read_text()
    assert committed == built, "entail_client/types.py is stale: run scripts/gen_client_types.py"


def test_check_mode_fails_on_a_stale_file(
    gen: ModuleType, built: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "types.py"
    stale.write_text(built.replace("decision_id: str", "decision_id: int", 1))
    monkeypatch.setattr(gen, "TYPES_PATH", stale)
    assert gen.main(["--check"]) == 1
    stale.write_text(built)
    assert gen.main(["--check"]) == 0


def test_the_decision_is_fully_typed() -> None:
    hints = typing.get_type_hints(types.DecisionOut)
    assert hints["status"] == typing.Literal["pending", "running", "succeeded", "failed"]
    assert hints["ruleset"] is types.RulesetRefOut
    assert types.DecisionOut.__required_keys__ >= {"decision_id", "status", "ruleset", "submitted_at"}
    assert "result_hash" in types.DecisionOut.__optional_keys__
    assert hints["error"] == types.DecisionErrorOut | None


def test_translation_of_the_constructs_pydantic_emits(gen: ModuleType) -> None:
    emitter = gen.Emitter()
    assert emitter.py_type({"anyOf": [{"type": "string"}, {"type": "null"}]}, "X") == "str | None"
    assert emitter.py_type({"enum": ["a", "b"]}, "X") == 'Literal["a", "b"]'
    assert emitter.py_type({"anyOf": [{"const": "a"}, {"const": "b"}]}, "X") == 'Literal["a", "b"]'
    assert emitter.py_type({"type": "array", "items": {"$ref": "#/components/schemas/Y"}}, "X") == "list[Y]"
    assert emitter.py_type({"type": "object", "additionalProperties": {"type": "integer"}}, "X") == (
        "dict[str, int]"
    )
    assert emitter.py_type({"not": {}}, "X") == "Any"
    # a nested object with properties is hoisted under a name made of its owner's
    nested = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert emitter.py_type(nested, "OuterInner") == "OuterInner"
    assert "class OuterInner(TypedDict):\n    n: int" in emitter.blocks[0]


def test_committed_typescript_operations_are_current(gen: ModuleType) -> None:
    texts = gen.build_all()
    committed = gen.OPERATIONS_PATH.read_text()
    assert committed == texts[gen.OPERATIONS_PATH], "static/src/api/operations.ts is stale"


def test_one_typescript_function_per_operation(gen: ModuleType) -> None:
    text = gen.OPERATIONS_PATH.read_text()
    # named after the route, typed from the document, the answer type a parameter
    assert (
        "export function decide<R = DecisionOut>(t: Transport, body: DecisionRequest, signal?: AbortSignal)"
        in text
    )
    assert 'return t.json("POST", "/v1/decisions", { body, signal });' in text
    assert 'return t.json("GET", `/v1/decisions/${seg(decision_id)}`, { signal });' in text
    # an event stream is handed back raw; a required query parameter makes the query required
    assert "export function decisionEvents(t: Transport, decision_id: string | number" in text
    assert "query: { start: string; end: string; ruleset?: string | null;" in text
    assert "/healthz" not in text  # only the /v1 API


def test_check_mode_fails_when_the_operations_are_stale(
    gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "operations.ts"
    stale.write_text(gen.OPERATIONS_PATH.read_text().replace("/v1/decisions/batch", "/v1/batch"))
    monkeypatch.setattr(gen, "OPERATIONS_PATH", stale)
    assert gen.main(["--check"]) == 1
