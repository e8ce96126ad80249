#!/usr/bin/env bash
# The BigQuery emulator (bqemulator 1.4.0) in a venv of its own: it would
# downgrade protobuf in ours, and its pytest plugin breaks pytest without
# testcontainers. Offline it needs duckdb 1.5.5 with the spatial extension from
# the duckdb-extension-spatial wheel copied where DuckDB looks for installed
# extensions (so its `INSTALL spatial` finds it and downloads nothing).
# Idempotent; `make emulators` runs it, and `make test` depends on that.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=.tools/bqemulator-venv
STAMP=$VENV/.installed-1.4.0
if [[ ! -f $STAMP ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        bqemulator==1.4.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5 numpy \
        2> >(grep -v "is ignored: it is neither" >&2)
    touch "$STAMP"
fi
EXT_DIR="$HOME/.duckdb/extensions/v1.5.5/linux_amd64"
if [[ ! -f $EXT_DIR/spatial.duckdb_extension ]]; then
    mkdir -p "$EXT_DIR"
    cp "$VENV"/lib/python3.11/site-packages/duckdb_extension_spatial/extensions/v1.5.5/spatial.duckdb_extension "$EXT_DIR/"
fi
