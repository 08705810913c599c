#!/usr/bin/env bash
# make demo: a real local cluster, Stow deployed from deploy/, a shared PVC
# backed up by its schedule, its files broken, restored, and compared.
# The cluster is left running; `make cluster-down` stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=hack/lib/deploy.sh
. "$ROOT/hack/lib/deploy.sh"
NS=stow-demo
START=$SECONDS

bash hack/tools.sh restic
cluster_up
build_images
import_images
deploy_stow "$ROOT/deploy"

# fixture NAME ARGS...: run the data tool in a pod on the shared PVC, print its result.
fixture() {
  local name=$1; shift
  local args
  args=$(printf '"%s",' "$@"); args=${args%,}
  kubectl -n $NS delete pod "$name" --ignore-not-found >/dev/null
  kubectl -n $NS apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: $NS}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsUser: 0}   # writes files owned by the app user 65534
  containers:
  - name: fixture
    image: $FIXTURE_IMAGE
    imagePullPolicy: IfNotPresent
    command: ["/usr/local/bin/fixture", $args]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: shared-data}
YAML
  local phase=""
  for _ in $(seq 1 180); do
    phase=$(kubectl -n $NS get pod "$name" -o jsonpath='{.status.phase}')
    case $phase in Succeeded|Failed) break ;; esac
    sleep 1
  done
  if [ "$phase" != Succeeded ]; then
    echo "data pod $name ended '$phase':" >&2; kubectl -n $NS logs "$name" >&2 || true; return 1
  fi
  kubectl -n $NS get pod "$name" -o jsonpath='{.status.containerStatuses[0].state.terminated.message}'
}

step "demo data: 40 files in the ReadWriteMany PVC stow-demo/shared-data"
kubectl delete namespace $NS --ignore-not-found --wait=true >/dev/null
kubectl apply -f examples/demo/storage.yaml
fixture writer write /data 42 40 >/dev/null
BEFORE=$(fixture manifest-before manifest /data)
echo "$(echo "$BEFORE" | grep -c .) entries, fingerprinted"

step "BackupConfiguration: back up every minute; waiting for the first scheduled backup"
kubectl apply -f examples/demo/backup.yaml
kubectl -n $NS wait --for=jsonpath='{.status.phase}'=Ready bc/shared-data-backup --timeout=120s >/dev/null
for _ in $(seq 1 240); do
  phase=$(kubectl -n $NS get bs -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  case $phase in Succeeded|Failed|Skipped) break ;; esac
  sleep 1
done
kubectl -n $NS get bc,bs,repo
[ "$phase" = Succeeded ] || { echo "backup ended '$phase'"; kubectl -n $NS describe bs; exit 1; }
kubectl -n $NS patch bc shared-data-backup --type=merge -p '{"spec":{"paused":true}}' >/dev/null
# A trigger already under way may still start one more backup: wait until the
# CronJob is idle and every session has ended, so "latest" is what we fingerprinted.
for _ in $(seq 1 180); do
  active=$(kubectl -n $NS get cronjob stow-trigger-shared-data-backup -o jsonpath='{.status.active}')
  running=$(kubectl -n $NS get bs -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -cvE '^(Succeeded|Failed|Skipped)$' || true)
  [ -z "$active" ] && [ "$running" = 0 ] && break
  sleep 1
done

step "breaking the data: one file changed, one deleted"
fixture mutate mutate /data >/dev/null
BROKEN=$(fixture manifest-broken manifest /data)
diff <(echo "$BEFORE") <(echo "$BROKEN") || true

step "restoring the latest snapshot (RestoreSession with no rules)"
kubectl apply -f examples/demo/restore.yaml
kubectl -n $NS wait --for=jsonpath='{.status.phase}'=Succeeded restore/shared-data-restore --timeout=300s >/dev/null || {
  kubectl -n $NS get restore -o wide; kubectl -n $NS describe restore; exit 1; }
kubectl -n $NS get restore
AFTER=$(fixture manifest-after manifest /data | grep -v added-after-backup.txt)

step "result"
if [ "$AFTER" = "$BEFORE" ]; then
  echo "OK: all $(echo "$BEFORE" | grep -c .) backed-up entries restored byte for byte (content, mode, owner)."
else
  echo "MISMATCH after restore:"; diff <(echo "$BEFORE") <(echo "$AFTER"); exit 1
fi
echo
echo "Demo took $((SECONDS - START))s. The cluster keeps running:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  kubectl -n $NS get bc,bs,restore,repo"
echo "Stop it and restore the host with: make cluster-down"
