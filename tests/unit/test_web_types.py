"""The web app's API types (static/src/api/openapi.ts) are generated from the
backend's OpenAPI: the committed file matches what scripts/gen_web_types.py
makes of the app now, and the translation of JSON Schema to TypeScript is right
for the constructs pydantic emits."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_web_types.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_web_types", SCRIPT)
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
    assert committed == built, "static/src/api/openapi.ts is stale: run scripts/gen_web_types.py"


def test_check_mode_fails_on_a_stale_file(
    gen: ModuleType, built: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "openapi.ts"
    stale.write_text(built.replace("decision_id: string;", "decision_id: number;", 1))
    monkeypatch.setattr(gen, "TYPES_PATH", stale)
    assert gen.main(["--check"]) == 1
    stale.write_text(built)
    assert gen.main(["--check"]) == 0


def test_the_main_response_is_fully_typed(gen: ModuleType) -> None:
    text = gen.TYPES_PATH.read_text()
    decision = text[text.index("export interface DecisionOut {") :]
    decision = decision[: decision.index("\n}\n")]
    for member in (
        'status: "pending" | "running" | "succeeded" | "failed";',
        "ruleset: RulesetRefOut;",
        "result_hash?: string | null;",
        "error?: DecisionErrorOut | null;",
        "submitted_at: string;",
    ):
        assert member in decision


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "string"),
        ({"type": "integer"}, "number"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "string | null"),
        ({"type": ["integer", "null"]}, "number | null"),
        ({"enum": ["a", "b"]}, '"a" | "b"'),
        ({"const": 3}, "3"),
        ({"$ref": "#/components/schemas/Thing"}, "Thing"),
        ({"type": "array", "items": {"type": "string"}}, "string[]"),
        (
            {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "(string | number)[]",
        ),
        ({"type": "object", "additionalProperties": True}, "Record<string, unknown>"),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, "Record<string, number>"),
        ({"anyOf": [{"type": "string"}, {}]}, "unknown"),
        ({}, "unknown"),
        ({"not": {"type": "string"}}, "unknown"),
    ],
)
def test_json_schema_to_typescript(gen: ModuleType, schema: dict[str, object], expected: str) -> None:
    assert gen.ts_type(schema) == expected


def test_an_object_becomes_an_interface_with_optional_members(gen: ModuleType) -> None:
    schema = {
        "type": "object",
        "description": "A thing.",
        "properties": {"a": {"type": "string", "description": "the a"}, "b-c": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": True,
    }
    assert gen.declaration("Thing", schema) == (
        '/** A thing. */\nexport interface Thing {\n  /** the a */\n  a: string;\n  "b-c"?: number;\n}'
    )


def test_an_unknown_ref_is_an_error(gen: ModuleType) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        gen.ts_type({"$ref": "https://example.com/x.json"})
