#!/usr/bin/env bash
# Everything the image tests need before they build: buildah and debootstrap,
# the cached base root filesystem, the stand-in base images. Safe to run
# concurrently (one runs, the others wait) and quick when nothing changed.
set -euo pipefail
here=$(dirname "$0")
source "$here/common.sh"

exec 9>"$IMAGES_DIR/.lock"
flock 9
step "tools (buildah, debootstrap)" bash "$here/ensure_tools.sh"
step "base root filesystem" bash "$here/base_rootfs.sh" >/dev/null
step "stand-in base images" bash "$here/import_bases.sh"
echo "images: storage $STORAGE_ROOT (driver $ENTAIL_IMAGES_DRIVER)" >&2
