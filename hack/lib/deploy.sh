# Shared by hack/e2e.sh and hack/demo.sh: bring up the local cluster, build
# and import the images, deploy Stow from a kustomization. Source it; it
# expects ROOT (the repository) to be set.

IMAGE=${IMAGE:-docker.io/stowhq/stow:dev}
FIXTURE_IMAGE=${FIXTURE_IMAGE:-docker.io/stowhq/stow-e2e-fixture:dev}

step() { printf '\n\033[1m>> %s\033[0m (%s)\n' "$*" "$(date +%T)"; }

# cluster_up starts (or reuses) the local cluster and exports KUBECONFIG.
cluster_up() {
  step "local cluster (first run builds Kubernetes from source: ~10-15 min on 2 cores)"
  bash "$ROOT/hack/local-cluster.sh" up
  KUBECONFIG=$(bash "$ROOT/hack/local-cluster.sh" kubeconfig)
  export KUBECONFIG
}

# build_images builds the Stow image and the fixture image (test data writer).
build_images() {
  step "images (no Docker: go-containerregistry)"
  IMAGE=$IMAGE bash "$ROOT/hack/build-image.sh"
  mkdir -p "$ROOT/_output/fixture-bin"
  CGO_ENABLED=0 go build -C "$ROOT" -trimpath -ldflags '-s -w' -o _output/fixture-bin/fixture ./e2e/fixture
  go run -C "$ROOT" ./hack/mkimage -ref "$FIXTURE_IMAGE" -out _output/fixture-image.tar -entrypoint fixture _output/fixture-bin/fixture
}

# import_images loads both images into the local cluster's containerd.
import_images() {
  bash "$ROOT/hack/local-cluster.sh" import-image "$ROOT/_output/stow-image.tar"
  bash "$ROOT/hack/local-cluster.sh" import-image "$ROOT/_output/fixture-image.tar"
}

# deploy_stow KUSTOMIZATION_DIR [NODE] applies Stow and waits for the operator
# (on node NODE when given).
deploy_stow() {
  step "deploying Stow (kubectl apply -k ${1#"$ROOT"/})"
  kubectl apply --server-side --force-conflicts -k "$1" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd --all >/dev/null
  if [ -n "${2:-}" ]; then
    kubectl -n stow-system patch deploy stow-operator --type merge \
      -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"$2\"}}}}}" >/dev/null
  fi
  restart_operator
}

# deploy_stow_helm VALUES_FILE [NODE] installs (or upgrades) Stow as the Helm release
# "stow" from deploy/helm/stow, the way README's Helm install does, and waits
# for the operator. The namespace comes from deploy/namespace.yaml (Helm's
# --create-namespace would drop its PodSecurity label) and the CRDs are
# applied first, since Helm installs crds/ only on a first install and never
# upgrades them. --take-ownership adopts objects an earlier kustomize deploy
# of the same cluster created. NODE, when given, is where the operator runs.
deploy_stow_helm() {
  step "deploying Stow (helm upgrade --install stow deploy/helm/stow -f ${1#"$ROOT"/})"
  local helm
  helm=$(bash "$ROOT/hack/tools.sh" --print helm)
  kubectl apply --server-side --force-conflicts -f "$ROOT/deploy/namespace.yaml" -f "$ROOT/deploy/helm/stow/crds" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd --all >/dev/null
  local node=()
  [ -n "${2:-}" ] && node=(--set-json "nodeSelector={\"kubernetes.io/hostname\":\"$2\"}")
  "$helm" upgrade --install stow "$ROOT/deploy/helm/stow" --namespace stow-system \
    --take-ownership --skip-crds -f "$1" "${node[@]}" >/dev/null
  restart_operator
}

# restart_operator restarts the operator and waits for it: the image tag is
# fixed, so a rebuilt image needs a restart to be used.
restart_operator() {
  kubectl -n stow-system rollout restart deploy/stow-operator >/dev/null
  kubectl -n stow-system rollout status deploy/stow-operator --timeout=180s
}
