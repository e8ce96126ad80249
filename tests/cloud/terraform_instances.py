"""The instances of a ``for_each`` resource of terraform/, read statically.

Terraform's ``for_each`` over a map in ``locals`` (``for_each = local.services``)
or over a literal ``toset([...])`` is expanded here the way Terraform would:
one body per key, with ``each.key`` and ``each.value.<attribute>`` replaced by
that key's data. Expressions that stay (``var.x``, ``local.y``) are kept as
python-hcl2 writes them, so the invariant tests can read
``google_cloud_run_v2_service.service["backend"]`` as if it were written out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import iac_tools as iac

LOCAL_REF = re.compile(r"^\$\{local\.([a-z0-9_]+)\}$")
TOSET = re.compile(r"^\$\{toset\(\[(.*)\]\)\}$", re.S)
EACH_VALUE = re.compile(r"each\.value\.([a-z0-9_]+)")
EXACT_EACH_VALUE = re.compile(r"^\$\{each\.value\.([a-z0-9_]+)\}$")


def for_each_items(expression: str, folder: str) -> dict[str, Any]:
    """key -> each.value of a ``for_each`` expression (a local map or a literal set)."""
    if m := LOCAL_REF.match(expression):
        value = iac.locals_of(folder)[m.group(1)]
        if isinstance(value, dict):
            return dict(value)
        expression = value  # a local that is itself a toset([...])
    if m := TOSET.match(expression):
        keys = json.loads(f"[{m.group(1)}]")
        return {key: key for key in keys}
    raise AssertionError(f"cannot expand for_each = {expression!r}")


def _as_expression(value: Any) -> str:
    """The text of ``value`` inside another expression (``${var.x}`` -> ``var.x``)."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return json.dumps(value)
    return json.dumps(value)


def _substitute(node: Any, key: str, value: Any) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, key, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, key, value) for v in node]
    if not isinstance(node, str) or "each." not in node:
        return node
    if m := EXACT_EACH_VALUE.match(node):
        return value[m.group(1)]
    if node == "${each.key}":
        return key
    text = EACH_VALUE.sub(lambda m: _as_expression(value[m.group(1)]), node)
    return text.replace("each.key", json.dumps(key))


def instances(folder: str, rtype: str, name: str) -> dict[str, dict[str, Any]]:
    """key -> body of each instance of resource ``rtype.name`` in ``folder``."""
    body = iac.resources(folder)[(rtype, name)]
    assert "for_each" in body, f"{rtype}.{name} has no for_each"
    items = for_each_items(body["for_each"], folder)
    out = {}
    for key, value in items.items():
        expanded = _substitute({k: v for k, v in body.items() if k != "for_each"}, key, value)
        out[key] = expanded
    return out


def instance(folder: str, rtype: str, name: str, key: str) -> dict[str, Any]:
    found = instances(folder, rtype, name)
    assert key in found, f'{rtype}.{name}["{key}"] is not declared (keys: {sorted(found)})'
    return found[key]
