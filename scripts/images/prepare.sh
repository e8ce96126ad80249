#!/usr/bin/env bash
# Everything the image tests need before they build: buildah and debootstrap,
# the cached base root filesystem, the stand-in base images. Safe to run
# concurrently (one runs, the others wait) and quick when nothing changed.
set -euo pipefail
here=$(dirname "$0")
source "$here/common.sh"

exec 9>"$IMAGES_DIR/.lock"
flock 9

# Every build whose code changed leaves the previous image and its cached
# layers behind: past the bound, start the storage afresh (the stand-ins are
# imported again in seconds; the next builds are cold).
max_gb=${ENTAIL_IMAGES_MAX_GB:-10}
if [[ -d "$STORAGE_ROOT" ]] && (($(du -s --block-size=1G "$STORAGE_ROOT" | cut -f1) > max_gb)); then
    echo "images: storage over ${max_gb} GB, emptied" >&2
    bah rm --all >/dev/null 2>&1 || true
    bah rmi --all --force >/dev/null 2>&1 || true
fi
step "tools (buildah, debootstrap)" bash "$here/ensure_tools.sh"
step "base root filesystem" bash "$here/base_rootfs.sh" >/dev/null
step "stand-in base images" bash "$here/import_bases.sh"
echo "images: storage $STORAGE_ROOT (driver $ENTAIL_IMAGES_DRIVER)" >&2
