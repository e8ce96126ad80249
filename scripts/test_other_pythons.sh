#!/usr/bin/env bash
# Runs the unit and conformance tiers on each other supported Python (3.12,
# 3.13) that this machine has, each in a venv of its own (.venv-3.X) synced from
# the same uv.lock. A Python that is missing is said, not failed: the full suite
# runs on 3.11 either way. Found on PATH or under pyenv (whose shims answer for
# every version but run only the selected one, so each candidate is tried).
set -euo pipefail

UV=${UV:-.tools/bin/uv}
VENV=${VENV:-.venv}

find_python() {
    local version=$1 candidate
    for candidate in $(command -v "python$version" 2>/dev/null) \
        $(ls -d "$HOME"/.pyenv/versions/"$version".*/bin/"python$version" 2>/dev/null | sort -V -r); do
        if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.')))" \
            >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

for version in 3.12 3.13; do
    if ! python=$(find_python "$version"); then
        echo "python$version not found: the unit and conformance tiers were not run on it"
        continue
    fi
    echo "== unit + conformance tiers on $("$python" --version) ($python)"
    UV_PROJECT_ENVIRONMENT="$VENV-$version" "$UV" sync --frozen --quiet --python "$python"
    "$VENV-$version/bin/python" -m pytest -n 2 -q -p no:cacheprovider tests/unit tests/conformance
done
