#!/usr/bin/env bash
# Builds the statically linked release binary on the host and the FROM-scratch image
# `peerchain:local` from it (nothing is pulled: the image has no base layers).
#
#   deploy/build-image.sh            # image tag from $PEERCHAIN_IMAGE, default peerchain:local
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${PEERCHAIN_IMAGE:-peerchain:local}"
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v docker >/dev/null 2>&1 || { echo "FAILED: docker is not installed; the image cannot be built" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "FAILED: the docker daemon is not reachable (docker info failed)" >&2; exit 1; }

echo "== building the static release binary ($TARGET)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$TARGET" --bin peerchain
BIN="$TARGET_DIR/$TARGET/release/peerchain"
if ! ldd "$BIN" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
  echo "FAILED: $BIN is dynamically linked; a FROM-scratch image needs a static binary" >&2
  exit 1
fi
mkdir -p deploy/.build
cp "$BIN" deploy/.build/peerchain

echo "== building image $IMAGE"
# The legacy builder needs no buildx plugin and pulls nothing for FROM scratch.
DOCKER_BUILDKIT=0 docker build --quiet -f deploy/Dockerfile -t "$IMAGE" . >/dev/null
docker image ls "$IMAGE" --format '   {{.Repository}}:{{.Tag}}  {{.Size}}'
