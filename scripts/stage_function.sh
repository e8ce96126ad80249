#!/usr/bin/env bash
# Stages one Cloud Function for deployment: its main.py and requirements.txt
# with the entail library copied beside them (gen2 functions are built from
# one folder; entail is not on PyPI). Refuses a requirements.txt with an
# unpinned line: the function must run what was tested.
#   scripts/stage_function.sh audit_sink build/functions/audit_sink [zip]
# With a third argument "zip", also writes <dest>.zip (the first upload that
# Terraform's google_cloudfunctions2_function takes, docs/deploy.md).
set -euo pipefail

name=${1:?usage: stage_function.sh <function> <dest> [zip]}
dest=$(realpath -m "${2:?usage: stage_function.sh <function> <dest> [zip]}")
root=$(cd "$(dirname "$0")/.." && pwd)
src="${FUNCTIONS_DIR:-$root/functions}/$name"

[[ -f "$src/main.py" ]] || { echo "stage_function: no $src/main.py" >&2; exit 1; }
[[ -f "$src/requirements.txt" ]] || { echo "stage_function: no $src/requirements.txt" >&2; exit 1; }
python3 - "$src/requirements.txt" <<'PY'
import re, sys
path = sys.argv[1]
pinned = re.compile(r"^[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,.\-]+\])?==[A-Za-z0-9_.+!\-]+$")
bad = []
for number, raw in enumerate(open(path, encoding="utf-8"), 1):
    line = raw.split("#", 1)[0].strip()
    if line and not pinned.match(line):
        bad.append(f"{path}:{number}: {raw.rstrip()}")
if bad:
    sys.exit("stage_function: unpinned requirements (pin each with ==):\n" + "\n".join(bad))
PY

rm -rf "$dest"
mkdir -p "$dest"
cp "$src/main.py" "$src/requirements.txt" "$dest/"
cp -R "$root/shared/entail" "$dest/entail"
find "$dest" -name __pycache__ -type d -prune -exec rm -rf {} +

if [[ "${3:-}" == "zip" ]]; then
    rm -f "$dest.zip"
    (cd "$dest" && python3 -m zipfile -c "$dest.zip" main.py requirements.txt entail)
fi
