#!/usr/bin/env bash
# buildah (builds the Dockerfiles without a Docker engine) and debootstrap
# (makes the stand-in base root filesystem), from the distribution's
# packages. CI is a fresh Debian/Ubuntu machine where we are root.
set -euo pipefail

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[[ ${#missing[@]} == 0 ]] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "images: need ${missing[*]} and there is no apt-get here: install them by hand" >&2
    exit 1
fi
sudo=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "images: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
