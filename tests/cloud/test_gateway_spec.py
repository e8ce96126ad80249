"""The API Gateway spec (terraform/modules/entail/gateway/openapi.yaml) is the
backend's own OpenAPI converted to Swagger 2.0: the committed file matches
what scripts/gen_gateway_openapi.py makes of the app, it is valid Swagger 2.0,
and it routes every public operation to the backend."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from entail_backend.app import create_app

from entail.settings import Settings

from . import iac_tools as iac

SCRIPT = iac.ROOT / "scripts" / "gen_gateway_openapi.py"
SPEC = iac.TERRAFORM_DIR / "modules" / "entail" / "gateway" / "openapi.yaml"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_gateway_openapi", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return data


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    iac.ensure()
    return subprocess.run(
        [str(iac.OPENAPI_SPEC_VALIDATOR), str(path)], capture_output=True, text=True, timeout=120
    )


def test_committed_spec_matches_the_app() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr


def test_committed_spec_is_valid_swagger_2(committed: dict[str, Any]) -> None:
    assert committed["swagger"] == "2.0"
    out = validate(SPEC)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_public_operation_is_routed_to_the_backend(committed: dict[str, Any]) -> None:
    app_spec = create_app(Settings()).openapi()
    for path, item in app_spec["paths"].items():
        if path == "/metrics":
            assert path not in committed["paths"]
            continue
        for method, op in item.items():
            assert committed["paths"][path][method]["operationId"] == op["operationId"], (path, method)
    assert set(committed["paths"]) == set(app_spec["paths"]) - {"/metrics"}
    backend = committed["x-google-backend"]
    assert backend["address"] == "BACKEND_URL"
    assert backend["path_translation"] == "APPEND_PATH_TO_ADDRESS"
    # the caller's Authorization header (the Entail API key) must reach the backend
    assert backend["disable_auth"] is True
    assert committed["x-google-endpoints"] == [{"name": "GATEWAY_HOST", "allowCors": True}]
    events = committed["paths"]["/v1/decisions/{decision_id}/events"]["get"]["x-google-backend"]
    assert events["deadline"] > backend["deadline"]
    # every $ref resolves
    text = SPEC.read_text()
    for name in {
        line.split("#/definitions/")[1].strip("'\" ")
        for line in text.splitlines()
        if "#/definitions/" in line
    }:
        assert name in committed["definitions"], name


def test_terraform_fills_in_both_placeholders() -> None:
    gateway_tf = (iac.TERRAFORM_DIR / "modules" / "entail" / "gateway.tf").read_text()
    assert '"BACKEND_URL", google_cloud_run_v2_service.service["backend"].uri' in gateway_tf
    assert '"GATEWAY_HOST", google_api_gateway_api.entail.managed_service' in gateway_tf


def test_api_key_variant_requires_keys_on_v1_and_meters_decisions(gen: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "openapi.yaml"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--require-api-key", "--quota-per-minute", "120", "--out", str(out)],
        check=True,
        timeout=120,
    )
    spec = yaml.safe_load(out.read_text())
    assert spec["securityDefinitions"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    for path, item in spec["paths"].items():
        for op in item.values():
            assert ("security" in op) == path.startswith("/v1/"), path
    assert spec["paths"]["/v1/decisions"]["post"]["x-google-quota"] == {
        "metricCosts": {"decision-requests": 1}
    }
    assert spec["x-google-management"]["quota"]["limits"][0]["values"] == {"STANDARD": 120}
    assert "healthz" not in str(spec["paths"]["/healthz"]["get"].get("security"))
    assert validate(out).returncode == 0


def test_schema_conversion_lowers_openapi_31_constructs(gen: ModuleType) -> None:
    convert = gen.convert_schema
    assert convert({"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "title": "T"}) == {
        "type": "string",
        "maxLength": 3,
        "title": "T",
        "x-nullable": True,
    }
    assert convert({"const": "x"}) == {"enum": ["x"]}
    assert convert({"type": "integer", "exclusiveMinimum": 0}) == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    assert convert({"$ref": "#/components/schemas/A", "description": "d"}) == {
        "allOf": [{"$ref": "#/definitions/A"}],
        "description": "d",
    }
    assert convert({"type": ["integer", "null"], "examples": [1, 2]}) == {
        "type": "integer",
        "example": 1,
        "x-nullable": True,
    }
    # a real union has no Swagger 2.0 form: unconstrained, the backend validates
    assert convert({"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "u"}) == {
        "description": "u"
    }
    with pytest.raises(ValueError, match="unsupported"):
        convert({"$ref": "https://example.com/schema.json"})


def test_convert_refuses_a_swagger_document(gen: ModuleType) -> None:
    with pytest.raises(ValueError, match="OpenAPI 3"):
        gen.convert({"swagger": "2.0", "info": {}, "paths": {}})
