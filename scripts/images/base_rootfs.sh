#!/usr/bin/env bash
# The stand-in for the Dockerfiles' python:<version>-slim-bookworm base: a
# Debian 12 (bookworm) minbase root filesystem with Debian's python3 (3.11)
# and the paths the official image has (/usr/local/bin/python{,3}), trimmed
# like a slim image. Cached as .tools/images/rootfs-<hash>.tar, the hash
# taken over this script and its settings, so a second run only prints the
# path. Prints the tarball's path on stdout.
set -euo pipefail
source "$(dirname "$0")/common.sh"

SUITE=${ENTAIL_IMAGES_SUITE:-bookworm}
MIRROR=${ENTAIL_IMAGES_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates

key=$( { cat "$0"; echo "$SUITE $MIRROR $PACKAGES"; } | sha256sum | cut -c1-16)
tarball="$IMAGES_DIR/rootfs-$key.tar"
if [[ -s "$tarball" ]]; then
    echo "$tarball"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "images: debootstrap needs root" >&2
    exit 1
fi

work="$IMAGES_DIR/rootfs-$key.tmp"
# A hundred downloads from the mirror: one dropped connection must not fail CI,
# so a failed run is tried again from scratch (twice at most).
for attempt in 1 2 3; do
    rm -rf "$work"
    if debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work" "$MIRROR" \
        >"$IMAGES_DIR/debootstrap.log" 2>&1; then
        break
    fi
    tail -20 "$IMAGES_DIR/debootstrap.log" >&2
    if [[ $attempt == 3 ]]; then
        exit 1
    fi
    echo "images: debootstrap failed (attempt $attempt), trying again" >&2
    sleep 5
done
# The official image's interpreter is /usr/local/bin/python{,3}; Debian's is
# /usr/bin/python3. The links make "python" and the image's HEALTHCHECK work.
ln -sf /usr/bin/python3 "$work/usr/local/bin/python3"
ln -sf /usr/bin/python3 "$work/usr/local/bin/python"
# slim: no package caches, lists, docs, man pages or translations
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* \
    "$work"/usr/share/doc/* "$work"/usr/share/man/* "$work"/usr/share/info/* \
    "$work"/usr/share/locale/* "$work"/var/log/*.log "$work"/tmp/*
tar -C "$work" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
rm -rf "$work"
# older roots of other inputs are no longer used
find "$IMAGES_DIR" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" -delete
echo "$tarball"
