"""Print every Terraform file under a folder as JSON, parsed by python-hcl2.

Run by the interpreter of .tools/hcl2-venv (scripts/setup_iac_tools.sh), not
.venv: python-hcl2 and checkov both ship a module named ``hcl2``.

    .tools/hcl2-venv/bin/python scripts/hcl_to_json.py terraform > parsed.json

Output: ``{"<path relative to the folder>": <hcl2.load of that file>}``, made
plain: python-hcl2 8 keeps the quotes of string literals and block labels and
adds ``__is_block__``/``__comments__`` markers; here labels and literals lose
their quotes and the markers are dropped, so ``"role": "roles/run.invoker"``
and ``"project": "${var.project_id}"`` read as in the source.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hcl2

_MARKERS = {"__is_block__", "__comments__", "__inline_comments__"}


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): plain(v) for k, v in value.items() if k not in _MARKERS}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def main() -> int:
    root = Path(sys.argv[1])
    parsed = {}
    for path in sorted(root.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open(encoding="utf-8") as f:
            parsed[path.relative_to(root).as_posix()] = plain(hcl2.load(f))
    json.dump(parsed, sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
