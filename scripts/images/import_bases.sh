#!/usr/bin/env bash
# Puts into the local image storage, under exactly the names the
# Dockerfiles' FROM lines use, a stand-in for each base image, so the real
# Dockerfiles build unchanged with --pull=never:
#   python:<version>-slim-bookworm  the debootstrap root (base_rootfs.sh)
#   ghcr.io/astral-sh/uv:<version>  /uv from the project's own uv (.tools/bin/uv),
#                                   which must be that same version
# An image already there with the same input key (label entail.stand-in) is
# kept. Any other base is an error: it has no stand-in yet.
set -euo pipefail
source "$(dirname "$0")/common.sh"

rootfs=$(bash "$(dirname "$0")/base_rootfs.sh")
# The host's CA bundle replaces Debian's in the stand-in: where the machine
# reaches PyPI through a TLS-inspecting proxy, its CA is in there (on a plain
# machine it is the same public set).
CA_BUNDLE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
rootfs_key="$(basename "$rootfs" .tar)-ca-$(sha256sum "$CA_BUNDLE" | cut -c1-16)"
UV_BIN=${UV_BIN:-$TOOLS/bin/uv}

present_key() {
    bah inspect --type image --format '{{index .OCIv1.Config.Labels "entail.stand-in"}}' "$1" 2>/dev/null || true
}

import_python() {
    local name=$1 ctr
    [[ $(present_key "$name") == "$rootfs_key" ]] && return 0
    ctr=$(bah from --pull=never scratch)
    bah add "$ctr" "$rootfs" / >/dev/null
    bah copy --chmod 0644 "$ctr" "$CA_BUNDLE" /etc/ssl/certs/ca-certificates.crt >/dev/null
    # SSL_CERT_FILE: uv (UV_NATIVE_TLS unset) trusts only its built-in roots otherwise
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --cmd python3 --label "entail.stand-in=$rootfs_key" "$ctr"
    bah commit --quiet --rm "$ctr" "$name" >/dev/null
}

import_uv() {
    local name=$1 want=${1##*:} have key ctr
    have=$("$UV_BIN" --version | awk '{print $2}')
    if [[ "$have" != "$want" ]]; then
        echo "images: $name wanted, but $UV_BIN is uv $have (make the Dockerfiles and UV_VERSION agree)" >&2
        exit 1
    fi
    key="uv-$(sha256sum "$UV_BIN" | cut -c1-16)"
    [[ $(present_key "$name") == "$key" ]] && return 0
    ctr=$(bah from --pull=never scratch)
    bah copy --chmod 0755 "$ctr" "$UV_BIN" /uv >/dev/null
    bah config --entrypoint '["/uv"]' --label "entail.stand-in=$key" "$ctr"
    bah commit --quiet --rm "$ctr" "$name" >/dev/null
}

# Fully qualified, as a short name in FROM resolves: python:x -> docker.io/library/python:x
qualify() {
    case $1 in
        */*.*/* | *.*/*) echo "$1" ;;   # has a registry host
        */*) echo "docker.io/$1" ;;
        *) echo "docker.io/library/$1" ;;
    esac
}

mapfile -t bases < <(
    { cat "$ROOT"/run_services/*/Dockerfile; grep -h '^ARG BASE=' "$(dirname "$0")"/*.Containerfile | sed 's/^ARG BASE=/FROM /'; } |
        awk 'toupper($1) == "FROM" { print $2 }' | grep -v '^\$' | sort -u
)
stages=$(cat "$ROOT"/run_services/*/Dockerfile | awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4 }' | sort -u)
for base in "${bases[@]}"; do
    grep -qx "$base" <<<"$stages" && continue   # FROM <an earlier stage>
    name=$(qualify "$base")
    case $name in
        docker.io/library/python:*-slim-bookworm) import_python "$name" ;;
        ghcr.io/astral-sh/uv:*) import_uv "$name" ;;
        *)
            echo "images: no local stand-in for base image $base (scripts/images/import_bases.sh)" >&2
            exit 1
            ;;
    esac
done
