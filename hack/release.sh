#!/usr/bin/env bash
# Cuts a release (make release VERSION=v0.3.0 REGISTRY=ghcr.io/me):
#   1. pushes the image index stow:$VERSION (linux/amd64, linux/arm64) to
#      $REGISTRY with hack/build-image.sh (credentials: ~/.docker/config.json;
#      INSECURE=1 for a plain-HTTP registry);
#   2. points the deploy bundle at it: deploy/kustomization.yaml's images:
#      and version label, the one place the image is set (the Helm chart is
#      regenerated from it by `make generate`);
#   3. builds the kubectl plugin for each platform into _output/release
#      (kubectl-stow_<os>_<arch>.tar.gz with sha256 sums, krew's layout).
# Then review `git diff`, commit, tag $VERSION and push the tag.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
: "${VERSION:?set VERSION, e.g. make release VERSION=v0.3.0 REGISTRY=ghcr.io/me}"
: "${REGISTRY:?set REGISTRY, the repository prefix to push to, e.g. ghcr.io/me}"
export VERSION
bash hack/version.sh >/dev/null # validates VERSION
if [ "$VERSION" = dev ]; then
  echo "release: VERSION=dev is the development build; give a release version" >&2
  exit 2
fi
IMAGE_NAME=${REGISTRY%/}/stow
insecure=()
[ "${INSECURE:-0}" = 1 ] && insecure=(--insecure)

bash hack/build-image.sh --push "$IMAGE_NAME:$VERSION" "${insecure[@]}"

echo ">> deploy/kustomization.yaml -> $IMAGE_NAME:$VERSION"
bash hack/set-image.sh "$IMAGE_NAME" "$VERSION"
bash hack/update-codegen.sh >/dev/null

echo ">> kubectl-stow for ${PLATFORMS:-linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64}"
out=_output/release
rm -rf "$out" && mkdir -p "$out"
IFS=, read -ra plats <<< "${PLATFORMS:-linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64}"
for p in "${plats[@]}"; do
  os=${p%/*} arch=${p#*/} ext=""
  [ "$os" = windows ] && ext=.exe
  d=$out/kubectl-stow_${os}_${arch}
  mkdir -p "$d"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w $(bash hack/version.sh --ldflags)" -o "$d/kubectl-stow$ext" ./cmd/kubectl-stow
  cp LICENSE "$d/" 2>/dev/null || true
  tar -C "$d" -czf "$d.tar.gz" .
  rm -rf "$d"
done
(cd "$out" && sha256sum ./*.tar.gz > SHA256SUMS)
echo ">> done: image $IMAGE_NAME:$VERSION, plugin archives in $out; now: git diff, commit, git tag $VERSION"
