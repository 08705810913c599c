#!/usr/bin/env bash
# Regenerates deepcopy functions, the typed clientset, listers and informers
# (k8s.io/code-generator, version pinned in go.mod) and the CRD manifests
# (controller-gen, pinned as a go.mod tool). Never edit their output by hand.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODULE=github.com/stowhq/stow

CODEGEN_VERSION=$(go list -m -f '{{.Version}}' k8s.io/code-generator)
CODEGEN_PKG=$(go mod download -json "k8s.io/code-generator@${CODEGEN_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
# kube_codegen.sh installs its generators into GOBIN; keep them in our cache.
export GOBIN="${STOW_CACHE:-$HOME/.cache/stow}/bin/codegen-${CODEGEN_VERSION}"
mkdir -p "$GOBIN"

# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

kube::codegen::gen_helpers \
    --boilerplate "${ROOT}/hack/boilerplate.go.txt" \
    "${ROOT}/apis"

kube::codegen::gen_client \
    --with-watch \
    --output-dir "${ROOT}/client" \
    --output-pkg "${MODULE}/client" \
    --boilerplate "${ROOT}/hack/boilerplate.go.txt" \
    "${ROOT}/apis"

echo "Generating CRDs into deploy/crds"
rm -rf "${ROOT}/deploy/crds"
go tool controller-gen crd:crdVersions=v1,generateEmbeddedObjectMeta=true paths=./apis/... output:crd:artifacts:config=deploy/crds

echo "Generating built-in Functions and Tasks into deploy/builtin"
go run ./hack/gen-builtin deploy/builtin

echo "Generating the admission policy into deploy/admission-policy.yaml"
go run ./hack/gen-admission deploy/admission-policy.yaml

echo "Generating the Helm chart into deploy/helm/stow (from deploy/)"
go run ./hack/gen-helm deploy/helm/stow
