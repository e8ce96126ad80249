# Shared settings of the image scripts (sourced, not run). Everything lives
# under .tools/images/ (removed by `make clean`): the base root filesystem
# cache, and buildah's own storage, so nothing touches the machine's
# /var/lib/containers and a second run reuses every cached layer.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${TOOLS:-$ROOT/.tools}
[[ "$TOOLS" == /* ]] || TOOLS="$ROOT/$TOOLS"
IMAGES_DIR="$TOOLS/images"
STORAGE_ROOT="$IMAGES_DIR/storage"
STORAGE_RUNROOT="$IMAGES_DIR/run"
mkdir -p "$IMAGES_DIR"

# overlay when the kernel lets us mount it here (fast: a layer is a diff),
# else vfs (each layer a full copy, works anywhere, also rootless).
if [[ -z "${ENTAIL_IMAGES_DRIVER:-}" ]]; then
    if [[ -f "$IMAGES_DIR/driver" ]]; then
        ENTAIL_IMAGES_DRIVER=$(cat "$IMAGES_DIR/driver")
    else
        probe=$(mktemp -d)
        mkdir -p "$probe"/{lower,upper,work,merged}
        if [[ $(id -u) == 0 ]] && mount -t overlay overlay \
            -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
            umount "$probe/merged"
            ENTAIL_IMAGES_DRIVER=overlay
        else
            ENTAIL_IMAGES_DRIVER=vfs
        fi
        rm -rf "$probe"
        # the storage is tied to its driver: keep using the one it was made with
        echo "$ENTAIL_IMAGES_DRIVER" > "$IMAGES_DIR/driver"
    fi
fi
export ENTAIL_IMAGES_DRIVER

bah() {
    buildah --root "$STORAGE_ROOT" --runroot "$STORAGE_RUNROOT" \
        --storage-driver "$ENTAIL_IMAGES_DRIVER" "$@"
}

# "step <name> <command...>": runs one step and prints how long it took
step() {
    local name=$1 start end
    shift
    start=$EPOCHREALTIME
    "$@"
    end=$EPOCHREALTIME
    awk -v n="$name" -v a="$start" -v b="$end" 'BEGIN { printf "images: %-30s %6.1f s\n", n, b - a }' >&2
}
