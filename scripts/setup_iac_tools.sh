#!/usr/bin/env bash
# Creates the two infrastructure-as-code tool environments the tests in
# tests/cloud/ call by path:
#   .tools/hcl2-venv     python-hcl2 (parses terraform/ for the invariant tests)
#   .tools/checkov-venv  checkov, check-jsonschema (Cloud Build schema) and
#                        openapi-spec-validator (the gateway's Swagger 2.0 spec)
# They are separate from .venv and from each other because python-hcl2 and
# checkov both install a top-level module named `hcl2` (checkov pins its own
# fork), so one environment cannot hold both. Idempotent: an environment whose
# stamp names the pinned versions is left alone.
set -euo pipefail

PYTHON=${PYTHON:-python3}
TOOLS=${TOOLS:-.tools}
HCL2_PINS="python-hcl2==8.1.4"
CHECKOV_PINS="checkov==3.3.30 check-jsonschema==0.39.0 openapi-spec-validator==0.9.0"

ensure_venv() {
    local dir=$1 pins=$2
    if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$pins" ]]; then
        return
    fi
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    # shellcheck disable=SC2086  # the pins are separate words on purpose
    "$dir/bin/pip" install --quiet --disable-pip-version-check $pins
    printf '%s' "$pins" >"$dir/.installed"
}

ensure_venv "$TOOLS/hcl2-venv" "$HCL2_PINS"
ensure_venv "$TOOLS/checkov-venv" "$CHECKOV_PINS"
