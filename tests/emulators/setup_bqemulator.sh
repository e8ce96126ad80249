#!/usr/bin/env bash
# The BigQuery emulator (bqemulator 1.4.0) in a venv of its own: it would
# downgrade protobuf in ours, and its pytest plugin breaks pytest without
# testcontainers. Every package is pinned in bqemulator-requirements.txt.
# Offline it needs duckdb 1.5.5 with the spatial extension from the
# duckdb-extension-spatial wheel copied where DuckDB looks for installed
# extensions (so its `INSTALL spatial` finds it and downloads nothing).
# Idempotent and cheap when done; `make emulators` runs it, `make test` depends on that.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=.tools/bqemulator-venv
REQUIREMENTS=tests/emulators/bqemulator-requirements.txt
STAMP=$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)
pinned() { grep -v '^#' "$REQUIREMENTS" | sort -f; }
if [[ ! -f $STAMP ]]; then
    # a venv that already holds exactly the pins is kept: an emulator may be running from it
    if [[ ! -x $VENV/bin/pip ]] || ! diff -q <(pinned) <("$VENV/bin/pip" freeze --all | grep -vi "^pip==" | sort -f) >/dev/null; then
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --requirement "$REQUIREMENTS" \
            2> >(grep -v "is ignored: it is neither" >&2)
    fi
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
# where DuckDB 1.5.5 looks for the extensions of this platform (e.g. v1.5.5/linux_amd64)
read -r WHEEL_EXT EXT_DIR < <("$VENV/bin/python" - <<'PY'
import pathlib, duckdb, duckdb_extension_spatial
version = "v" + duckdb.__version__
platform = duckdb.sql("PRAGMA platform").fetchone()[0]
wheel = pathlib.Path(duckdb_extension_spatial.__file__).parent / "extensions" / version / "spatial.duckdb_extension"
print(wheel, pathlib.Path.home() / ".duckdb" / "extensions" / version / platform)
PY
)
if ! cmp -s "$WHEEL_EXT" "$EXT_DIR/spatial.duckdb_extension"; then
    mkdir -p "$EXT_DIR"
    cp "$WHEEL_EXT" "$EXT_DIR/spatial.duckdb_extension.tmp"
    mv "$EXT_DIR/spatial.duckdb_extension.tmp" "$EXT_DIR/spatial.duckdb_extension"
fi
