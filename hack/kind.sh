#!/usr/bin/env bash
# Runs the same e2e suite against kind, for machines with Docker (CI here has
# none and uses hack/local-cluster.sh instead):
#   hack/kind.sh            create the kind cluster (if missing) and run the suite
#   hack/kind.sh delete     delete the kind cluster
#   KIND_NODES=2 hack/kind.sh   the same with two worker nodes (hack/kind/kind-config-2nodes.yaml),
#                           so the multi-node tests run (they skip on one node)
# MinIO runs on the host, listening on the Docker bridge gateway so that pods
# in the kind node reach it; the images are loaded with `kind load`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CLUSTER=${KIND_CLUSTER:-stow}

command -v kind >/dev/null || { echo "kind is not installed (https://kind.sigs.k8s.io)" >&2; exit 1; }
command -v docker >/dev/null || { echo "kind needs Docker" >&2; exit 1; }

if [ "${1:-}" = delete ]; then
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

if ! kind get clusters | grep -qx "$CLUSTER"; then
  CONFIG=hack/kind/kind-config.yaml
  [ "${KIND_NODES:-1}" -ge 2 ] && CONFIG=hack/kind/kind-config-2nodes.yaml
  kind create cluster --name "$CLUSTER" --config "$CONFIG" --wait 120s
fi
KUBECONFIG=$(mktemp)
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG"
export KUBECONFIG
# The host's address on kind's Docker network: reachable from the node's pods.
MINIO_HOST=$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' | tr ' ' '\n' | grep -m1 -E '^[0-9]+\.')
# kind's `standard` (local-path) binds a volume on its first pod's node: the multi-node tests use it.
export MINIO_HOST KIND_CLUSTER=$CLUSTER STOW_E2E_EXTERNAL=1 STOW_E2E_NODE_LOCAL_CLASS=${STOW_E2E_NODE_LOCAL_CLASS:-standard}
# kind's default StorageClass (local-path) provisions the PVCs.
exec bash hack/e2e.sh "$@"
