"""Write the API Gateway spec (OpenAPI 2.0) from the backend's own OpenAPI 3.1.

API Gateway accepts only Swagger 2.0 with Google's extensions, while FastAPI
serves OpenAPI 3.1 at /openapi.json. This script converts the one into the
other, so the gateway routes exactly the operations the backend has:

* every path and method of the app, same operationId, parameters and schemas
  (``components/schemas`` -> ``definitions``; 3.1-only constructs are lowered:
  ``anyOf [X, null]`` -> X with ``x-nullable``, ``const`` -> one-value ``enum``);
* ``x-google-backend`` sends every call to the backend's Cloud Run URL
  (``BACKEND_URL``, replaced by Terraform) with the path appended, and keeps the
  caller's ``Authorization`` header (``disable_auth``): the backend checks the
  Entail API key itself;
* CORS preflights pass through to the backend (``x-google-endpoints``
  ``allowCors``; ``GATEWAY_HOST`` is replaced by the API's managed service
  name), which answers them for ``ENTAIL_CORS_ORIGINS``;
* ``/metrics`` stays off the gateway (operators scrape the service directly).

With ``--require-api-key`` the gateway also demands a Google API key
(``x-api-key`` header) on every /v1 operation and counts decision requests
against a per-consumer quota. The committed spec does not: the web app calls
the same API from browsers with an Entail key only, so the gateway's keys are
for deployments whose every caller is a server (docs/deploy.md, "API keys and
quotas at the gateway").

``--check`` writes nothing and exits 1 when the committed file differs
(tests/cloud/test_gateway_spec.py runs it).

    .venv/bin/python scripts/gen_gateway_openapi.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from entail_backend.app import create_app

from entail.settings import Settings

SPEC_PATH = Path(__file__).resolve().parents[1] / "terraform/modules/entail/gateway/openapi.yaml"

#: replaced by terraform/modules/entail/gateway.tf: the backend's Cloud Run URL
#: and the gateway API's managed service name
BACKEND_URL = "BACKEND_URL"
GATEWAY_HOST = "GATEWAY_HOST"
#: operations that never go through the gateway
INTERNAL_PATHS = frozenset({"/metrics"})
#: seconds the gateway waits for the backend; the SSE stream may last the
#: Cloud Run request timeout (terraform variable request_timeout_seconds)
DEADLINE_SECONDS = 60.0
STREAM_DEADLINE_SECONDS = 300.0
#: operations that start evaluations: they count against the quota
QUOTA_METRIC = "decision-requests"
QUOTA_OPERATIONS = frozenset({("/v1/decisions", "post"), ("/v1/decisions/batch", "post")})
DEFAULT_QUOTA_PER_MINUTE = 6000

_SCHEMA_KEYS = frozenset(
    {
        "$ref",
        "format",
        "title",
        "description",
        "default",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "enum",
        "type",
        "items",
        "allOf",
        "properties",
        "additionalProperties",
        "readOnly",
        "example",
    }
)
_PARAMETER_TYPES = frozenset({"string", "number", "integer", "boolean", "array"})


def _ref(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}: only {prefix}* can be converted")
    return "#/definitions/" + ref[len(prefix) :]


def _non_null(alternatives: list[Any]) -> tuple[list[Any], bool]:
    rest = [a for a in alternatives if not (isinstance(a, dict) and a.get("type") == "null")]
    return rest, len(rest) != len(alternatives)


def convert_schema(schema: Any) -> Any:
    """One OpenAPI 3.1 (JSON Schema 2020-12) schema -> a Swagger 2.0 schema."""
    if not isinstance(schema, dict):
        return schema
    s = dict(schema)
    nullable = False
    for key in ("anyOf", "oneOf"):
        if key in s:
            rest, had_null = _non_null(s.pop(key))
            nullable = nullable or had_null
            if len(rest) == 1 and isinstance(rest[0], dict):
                # the alternative's own keys, the wrapper's annotations on top
                s = {**rest[0], **s}
            # several alternatives: Swagger 2.0 has no union; leave the value
            # unconstrained (the backend validates it and answers 422)
    if isinstance(s.get("type"), list):
        types = [t for t in s["type"] if t != "null"]
        nullable = nullable or len(types) != len(s["type"])
        if len(types) == 1:
            s["type"] = types[0]
        else:
            del s["type"]
    if "const" in s:
        s["enum"] = [s.pop("const")]
    if "examples" in s and "example" not in s:
        examples = s.pop("examples")
        if isinstance(examples, list) and examples:
            s["example"] = examples[0]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(s.get(bound), int | float) and not isinstance(s.get(bound), bool):
            s[flag] = s.pop(bound)
            s[bound] = True
    if s.get("default", 0) is None:
        del s["default"]
    out: dict[str, Any] = {}
    for key, value in s.items():
        if key == "$ref":
            out[key] = _ref(value)
        elif key == "properties":
            out[key] = {name: convert_schema(v) for name, v in value.items()}
        elif key == "items":
            out[key] = convert_schema(value) if isinstance(value, dict) else {}
        elif key == "additionalProperties":
            out[key] = convert_schema(value) if isinstance(value, dict) else value
        elif key == "allOf":
            out[key] = [convert_schema(v) for v in value]
        elif key in _SCHEMA_KEYS:
            out[key] = value
    if "$ref" in out and len(out) > 1:
        # Swagger 2.0 ignores siblings of $ref: keep the annotation in allOf form
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    if nullable:
        out["x-nullable"] = True
    return out


def convert_parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A path, query or header parameter: Swagger 2.0 puts the schema's keys inline."""
    schema = convert_schema(param.get("schema", {}))
    schema.pop("x-nullable", None)
    schema.pop("title", None)
    if schema.get("type") not in _PARAMETER_TYPES:
        # unions and free-form values travel as strings in a URL
        schema = {k: v for k, v in schema.items() if k in {"description", "format", "pattern"}}
        schema["type"] = "string"
    if schema["type"] == "array" and "items" not in schema:
        schema["items"] = {"type": "string"}
    out: dict[str, Any] = {"name": param["name"], "in": param["in"]}
    if "description" in param:
        out["description"] = param["description"]
    out["required"] = bool(param.get("required", param["in"] == "path"))
    for key in ("type", "format", "items", "enum", "default", "minimum", "maximum", "pattern"):
        if key in schema:
            out[key] = schema[key]
    for key in ("minLength", "maxLength"):
        if key in schema:
            out[key] = schema[key]
    if out["type"] == "array":
        out["collectionFormat"] = "multi"
        out["items"] = {k: v for k, v in out["items"].items() if k in {"type", "format", "enum"}}
        out["items"].setdefault("type", "string")
    return out


def _json_schema(content: dict[str, Any]) -> Any:
    media = content.get("application/json") or content.get("application/problem+json")
    if media and "schema" in media:
        return convert_schema(media["schema"])
    return None


def convert_operation(path: str, method: str, op: dict[str, Any], *, require_api_key: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("tags", "summary", "description", "operationId"):
        if key in op:
            out[key] = op[key]
    params = [convert_parameter(p) for p in op.get("parameters", [])]
    body = op.get("requestBody")
    if body is not None:
        schema = _json_schema(body.get("content", {}))
        params.append(
            {
                "name": "body",
                "in": "body",
                "required": bool(body.get("required", False)),
                "schema": schema if schema is not None else {"type": "object"},
            }
        )
    if params:
        out["parameters"] = params
    responses: dict[str, Any] = {}
    produces: set[str] = set()
    for code, response in op.get("responses", {}).items():
        converted: dict[str, Any] = {"description": response.get("description") or code}
        content = response.get("content", {})
        produces.update(content)
        schema = _json_schema(content)
        if schema:
            converted["schema"] = schema
        responses[code] = converted
    out["responses"] = responses or {"default": {"description": "response"}}
    if produces - {"application/json"}:
        out["produces"] = sorted(produces)
    if require_api_key and path.startswith("/v1/"):
        out["security"] = [{"api_key": []}]
        if (path, method) in QUOTA_OPERATIONS:
            out["x-google-quota"] = {"metricCosts": {QUOTA_METRIC: 1}}
    if path.endswith("/events"):
        out["x-google-backend"] = _backend(STREAM_DEADLINE_SECONDS)
    return out


def _backend(deadline_seconds: float) -> dict[str, Any]:
    return {
        "address": BACKEND_URL,
        "path_translation": "APPEND_PATH_TO_ADDRESS",
        "deadline": deadline_seconds,
        # keep the caller's Authorization header (the Entail API key)
        "disable_auth": True,
    }


def convert(
    openapi: dict[str, Any],
    *,
    require_api_key: bool = False,
    quota_per_minute: int = DEFAULT_QUOTA_PER_MINUTE,
) -> dict[str, Any]:
    """The whole document: OpenAPI 3.1 of the backend -> the gateway's Swagger 2.0."""
    if not str(openapi.get("openapi", "")).startswith("3."):
        raise ValueError(f"expected an OpenAPI 3 document, got openapi={openapi.get('openapi')!r}")
    info = openapi["info"]
    paths: dict[str, Any] = {}
    for path, item in openapi["paths"].items():
        if path in INTERNAL_PATHS:
            continue
        paths[path] = {
            method: convert_operation(path, method, op, require_api_key=require_api_key)
            for method, op in item.items()
            if method in {"get", "put", "post", "delete", "patch", "head", "options"}
        }
    schemas = openapi.get("components", {}).get("schemas", {})
    spec: dict[str, Any] = {
        "swagger": "2.0",
        "info": {
            "title": info["title"],
            "version": info["version"],
            "description": "Generated from the backend's OpenAPI by scripts/gen_gateway_openapi.py; "
            "do not edit.",
        },
        "host": GATEWAY_HOST,
        "x-google-endpoints": [{"name": GATEWAY_HOST, "allowCors": True}],
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "x-google-backend": _backend(DEADLINE_SECONDS),
    }
    if require_api_key:
        spec["x-google-management"] = {
            "metrics": [
                {
                    "name": QUOTA_METRIC,
                    "displayName": "Decision requests",
                    "valueType": "INT64",
                    "metricKind": "DELTA",
                }
            ],
            "quota": {
                "limits": [
                    {
                        "name": "decision-requests-per-minute",
                        "metric": QUOTA_METRIC,
                        "unit": "1/min/{project}",
                        "values": {"STANDARD": quota_per_minute},
                    }
                ]
            },
        }
        spec["securityDefinitions"] = {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}
    spec["paths"] = paths
    spec["definitions"] = {name: convert_schema(s) for name, s in schemas.items()}
    return spec


def render(*, require_api_key: bool = False, quota_per_minute: int = DEFAULT_QUOTA_PER_MINUTE) -> str:
    # the app is built, never started: no Redis, no bus, nothing connects
    openapi = create_app(Settings()).openapi()
    spec = convert(openapi, require_api_key=require_api_key, quota_per_minute=quota_per_minute)
    header = "# Generated by scripts/gen_gateway_openapi.py from the backend's OpenAPI; do not edit.\n"
    return header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the API Gateway spec from the backend's OpenAPI.")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=SPEC_PATH, help="output file")
    parser.add_argument(
        "--require-api-key",
        action="store_true",
        help="demand a Google API key on /v1 and a quota on decision requests",
    )
    parser.add_argument(
        "--quota-per-minute",
        type=int,
        default=DEFAULT_QUOTA_PER_MINUTE,
        help="decision requests per minute per consumer project",
    )
    args = parser.parse_args(argv)
    text = render(require_api_key=args.require_api_key, quota_per_minute=args.quota_per_minute)
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(f"{args.out}: out of date; run scripts/gen_gateway_openapi.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
