#!/usr/bin/env bash
# Runs the e2e suite on the local cluster with Stow deployed in-cluster: by
# default as a user installs it with Helm (deploy/helm/stow with
# e2e/deploy/values.yaml), with STOW_E2E_INSTALL=kustomize from deploy/
# (through e2e/deploy/kustomization.yaml). Both only shorten the Pending
# threshold and raise the log level.
#   hack/e2e.sh [go test args...]
# Env: STOW_E2E_DOWN=auto (default) stops the cluster afterwards only if this run started it;
#      1 always, 0 never;
#      STOW_E2E_INSTALL=helm (default) or kustomize: how Stow is installed;
#      KUBECONFIG set and STOW_E2E_EXTERNAL=1: use that cluster (e.g. kind) instead;
#      STOW_CLUSTER_NODES=2 (default here; 1 for one node): the local cluster gets a second
#      node (docs/multinode.md), as clusters Stow runs on have, and the TestMultiNode* tests
#      run instead of skipping.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/_output/e2e
mkdir -p "$OUT"
# shellcheck source=hack/lib/deploy.sh
. "$ROOT/hack/lib/deploy.sh"

step "tools (restic, minio, helm)"
bash hack/tools.sh
bash hack/tools.sh helm # installs Stow; TestHelmChartOnTheCluster checks the other install
export STOW_E2E_INSTALL=${STOW_E2E_INSTALL:-helm}

MINIO_PID=""
DOWN=${STOW_E2E_DOWN:-auto}
if [ "$DOWN" = auto ]; then
  if bash hack/local-cluster.sh status >/dev/null 2>&1; then DOWN=0; else DOWN=1; fi
fi
cleanup() {
  rc=$?
  if [ -n "${KUBECONFIG:-}" ]; then
    kubectl -n stow-system logs deploy/stow-operator --tail=-1 > "$OUT/operator.log" 2>&1 || true
  fi
  [ -n "$MINIO_PID" ] && kill "$MINIO_PID" 2>/dev/null && wait "$MINIO_PID" 2>/dev/null || true
  if [ "$DOWN" = 1 ] && [ "${STOW_E2E_EXTERNAL:-0}" != 1 ]; then
    step "stopping the local cluster"
    bash hack/local-cluster.sh down || true
  fi
  exit $rc
}
trap cleanup EXIT

if [ "${STOW_E2E_EXTERNAL:-0}" != 1 ]; then
  export STOW_CLUSTER_NODES=${STOW_CLUSTER_NODES:-2}
  cluster_up
  MINIO_HOST=${MINIO_HOST:-$(bash hack/local-cluster.sh gateway-ip)}
else
  : "${KUBECONFIG:?set KUBECONFIG to the cluster to test}"
  MINIO_HOST=${MINIO_HOST:?set MINIO_HOST to an address of this host that pods can reach}
fi

build_images
if [ "${STOW_E2E_EXTERNAL:-0}" != 1 ]; then
  import_images
elif [ -n "${KIND_CLUSTER:-}" ]; then
  kind load image-archive _output/stow-image.tar --name "$KIND_CLUSTER"
  kind load image-archive _output/fixture-image.tar --name "$KIND_CLUSTER"
fi

step "MinIO on $MINIO_HOST"
MINIO=$(bash hack/tools.sh --print minio)
MINIO_PORT=${MINIO_PORT:-19000}
MINIO_DIR=$(mktemp -d)
export MINIO_ROOT_USER=stow-e2e MINIO_ROOT_PASSWORD=stow-e2e-secret-key MINIO_BROWSER=off
"$MINIO" server "$MINIO_DIR" --address "$MINIO_HOST:$MINIO_PORT" --console-address "$MINIO_HOST:$((MINIO_PORT+1))" --quiet > "$OUT/minio.log" 2>&1 &
MINIO_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "http://$MINIO_HOST:$MINIO_PORT/minio/health/ready" >/dev/null 2>&1 && break
  kill -0 "$MINIO_PID" 2>/dev/null || { cat "$OUT/minio.log"; echo "MinIO exited" >&2; exit 1; }
  sleep 0.2
done
curl -fsS --aws-sigv4 aws:amz:us-east-1:s3 --user "$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD" -X PUT "http://$MINIO_HOST:$MINIO_PORT/stow-e2e" >/dev/null

# The operator stays on the first node: the lost-node test stops the second.
OPERATOR_NODE=""
[ "${STOW_E2E_EXTERNAL:-0}" != 1 ] && OPERATOR_NODE=$(bash hack/local-cluster.sh node-name)
case $STOW_E2E_INSTALL in
  helm) deploy_stow_helm "$ROOT/e2e/deploy/values.yaml" "$OPERATOR_NODE" ;;
  kustomize) deploy_stow "$ROOT/e2e/deploy" "$OPERATOR_NODE" ;;
  *) echo "STOW_E2E_INSTALL must be helm or kustomize, not $STOW_E2E_INSTALL" >&2; exit 2 ;;
esac

step "e2e suite"
export STOW_E2E_S3_ENDPOINT="http://$MINIO_HOST:$MINIO_PORT" STOW_E2E_S3_ACCESS_KEY=$MINIO_ROOT_USER STOW_E2E_S3_SECRET_KEY=$MINIO_ROOT_PASSWORD
export STOW_E2E_FIXTURE_IMAGE=$FIXTURE_IMAGE STOW_E2E_LOG_DIR=$OUT
# Tests mostly wait on the cluster: run more of them at once than GOMAXPROCS.
go test -tags e2e -count=1 -timeout 40m -parallel "${STOW_E2E_PARALLEL:-8}" "${@:--v}" ./e2e/
