#!/usr/bin/env bash
# buildah on the project's own image storage (.tools/images): what the tests
# and a person at the shell use, e.g. `bash scripts/images/buildah.sh images`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
bah "$@"
