#!/usr/bin/env bash
# Builds the one Stow image (stow-operator, stow, restic) without Docker:
# static binaries layered on an empty base by hack/mkimage (go-containerregistry).
#
#   hack/build-image.sh [--import]
#       one image for this machine's platform, written to $OUT
#       (IMAGE=docker.io/stowhq/stow:dev OUT=_output/stow-image.tar);
#       --import loads it into the local cluster's containerd
#       (ctr -n k8s.io images import), so Pods with imagePullPolicy:
#       IfNotPresent use it without a registry.
#   hack/build-image.sh --push REGISTRY/REPO:TAG [--insecure]
#       an image index for $PLATFORMS (default linux/amd64,linux/arm64),
#       cross-compiled (CGO off), pushed to that reference with the
#       credentials of ~/.docker/config.json; --insecure for a plain-HTTP
#       registry. restic is cross-compiled once per platform (hack/tools.sh).
# The version stamped into the binaries is $VERSION (hack/version.sh, default dev).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGE=${IMAGE:-docker.io/stowhq/stow:dev}
OUT=${OUT:-$ROOT/_output/stow-image.tar}
PLATFORMS=${PLATFORMS:-linux/amd64,linux/arm64}
VERSION=$(bash hack/version.sh)
LDFLAGS="-s -w $(bash hack/version.sh --ldflags)"

mode=tarball push_ref="" insecure=()
while [ $# -gt 0 ]; do
  case $1 in
    --import) mode=import ;;
    --push) mode=push; push_ref=${2:?--push needs an image reference, e.g. ghcr.io/me/stow:v0.3.0}; shift ;;
    --insecure) insecure=(-insecure) ;;
    *) echo "usage: $0 [--import] | --push REF [--insecure]" >&2; exit 2 ;;
  esac
  shift
done

# binaries OS/ARCH DIR: the Stow binaries and restic of one platform in DIR.
binaries() {
  local platform=$1 dir=$2
  mkdir -p "$dir"
  echo ">> building static binaries for $platform (version $VERSION)"
  CGO_ENABLED=0 GOOS=${platform%/*} GOARCH=${platform#*/} \
    go build -trimpath -ldflags "$LDFLAGS" -o "$dir/" ./cmd/stow-operator ./cmd/stow
  cp "$(bash hack/tools.sh --print restic "$platform")" "$dir/restic"
}

if [ "$mode" = push ]; then
  args=()
  IFS=, read -ra plats <<< "$PLATFORMS"
  for p in "${plats[@]}"; do
    d=_output/image-bin/${p%/*}-${p#*/}
    binaries "$p" "$d"
    args+=(-platform "$p=$d")
  done
  echo ">> pushing $push_ref ($PLATFORMS)"
  go run ./hack/mkimage -ref "$push_ref" -push "${insecure[@]}" -version "$VERSION" "${args[@]}"
  exit 0
fi

mkdir -p "$(dirname "$OUT")"
native=$(go env GOOS)/$(go env GOARCH)
d=_output/image-bin/${native%/*}-${native#*/}
binaries "$native" "$d"
echo ">> assembling $IMAGE"
go run ./hack/mkimage -ref "$IMAGE" -out "$OUT" -version "$VERSION" -platform "$native=$d"

if [ "$mode" = import ]; then
  bash hack/local-cluster.sh import-image "$OUT"
fi
