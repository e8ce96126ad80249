#!/usr/bin/env bash
# The Cloud Storage emulator (gcp-storage-emulator) in a venv of its own, every
# package pinned in gcs-emulator-requirements.txt. Idempotent and cheap when done;
# `make emulators` runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=.tools/gcs-emulator-venv
REQUIREMENTS=tests/emulators/gcs-emulator-requirements.txt
STAMP=$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)
if [[ ! -f $STAMP ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --requirement "$REQUIREMENTS" \
        2> >(grep -v "is ignored: it is neither" >&2)
    touch "$STAMP"
fi
