#!/usr/bin/env bash
# Builds the one Stow image (stow-operator, stow, restic) without Docker:
# static binaries layered on an empty base by hack/mkimage (go-containerregistry).
#   hack/build-image.sh [--import]     IMAGE=docker.io/stowhq/stow:dev OUT=_output/stow-image.tar
# --import loads it into the local cluster's containerd (ctr -n k8s.io images import),
# so Pods with imagePullPolicy: IfNotPresent use it without a registry.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGE=${IMAGE:-docker.io/stowhq/stow:dev}
OUT=${OUT:-$ROOT/_output/stow-image.tar}
mkdir -p "$(dirname "$OUT")" _output/image-bin

echo ">> building static binaries"
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o _output/image-bin/ ./cmd/stow-operator ./cmd/stow
RESTIC=$(bash hack/tools.sh --print restic)
cp "$RESTIC" _output/image-bin/restic

echo ">> assembling $IMAGE"
go run ./hack/mkimage -ref "$IMAGE" -out "$OUT" _output/image-bin/stow-operator _output/image-bin/stow _output/image-bin/restic

if [ "${1:-}" = "--import" ]; then
  bash hack/local-cluster.sh import-image "$OUT"
fi
