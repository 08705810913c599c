#!/usr/bin/env bash
# Tiny hostPath provisioner for the local cluster's default StorageClass `standard`
# (provisioner stow.dev/local-hostpath). Started and stopped by hack/local-cluster.sh.
#   - a Pending PVC that the PV controller handed to us gets a PV pvc-<uid> pre-bound to it, backed by
#     the directory $STOW_CLUSTER_DIR/pv/pvc-<uid>, mode 0777 (fsGroup does not apply to hostPath, so
#     non-root pods can write);
#   - the PV lives on one node, as local volumes do (node affinity on kubernetes.io/hostname): the
#     node the scheduler picked (annotation volume.kubernetes.io/selected-node, set for StorageClass
#     `local-wffc`, volumeBindingMode WaitForFirstConsumer), else the first node ($NODE_NAME). Pods
#     that use the volume are scheduled there only;
#   - a Released PV that we provisioned (reclaimPolicy Delete) is deleted, and its directory removed.
set -uo pipefail
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=hack/lib/cluster/common.sh
. "$HACK_DIR/lib/cluster/common.sh"
PROV=stow.dev/local-hostpath

# pv_doc NS NAME UID SIZE MODES [NODE] prints the PV of one claim (one YAML document).
pv_doc() {
  local ns=$1 name=$2 uid=$3 size=$4 modes=$5 node=${6:-$NODE_NAME} pv=pvc-$3
  cat <<EOT
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $pv
  annotations: {pv.kubernetes.io/provisioned-by: $PROV}
  labels: {stow.dev/local-hostpath: "true"}
spec:
  capacity: {storage: "$size"}
  accessModes: $modes
  persistentVolumeReclaimPolicy: Delete
  storageClassName: standard
  volumeMode: Filesystem
  claimRef: {namespace: "$ns", name: "$name", uid: "$uid"}
  hostPath: {path: "$PVDIR/$pv", type: Directory}
  nodeAffinity:
    required:
      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: ["$node"]}]}]
EOT
}

# One pass handles every waiting claim and released volume with one kubectl
# call each (list, create, delete): with many tests creating claims at once, a
# call per claim queued them for tens of seconds on a loaded 2-core machine.
# A PV that already exists (an earlier pass's) fails its create alone.
log "hostPath provisioner for $PROV started (dirs under $PVDIR)"
while true; do
  docs="" made=()
  while IFS='|' read -r ns name uid prov size modes vol node; do
    if [ "$prov" != "$PROV" ] || [ -n "$vol" ] || [ -z "$size" ]; then continue; fi
    mkdir -p "$PVDIR/pvc-$uid" && chmod 0777 "$PVDIR/pvc-$uid" || continue
    docs+=$(pv_doc "$ns" "$name" "$uid" "$size" "${modes:-[ReadWriteOnce]}" "$node")$'\n'
    made+=("pvc-$uid for $ns/$name ($size, ${modes:-[ReadWriteOnce]}) on node ${node:-$NODE_NAME}")
  done < <(kc get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace}{"|"}{.metadata.name}{"|"}{.metadata.uid}{"|"}{.metadata.annotations.volume\.kubernetes\.io/storage-provisioner}{"|"}{.spec.resources.requests.storage}{"|"}{.spec.accessModes}{"|"}{.spec.volumeName}{"|"}{.metadata.annotations.volume\.kubernetes\.io/selected-node}{"\n"}{end}' 2>/dev/null)
  if [ -n "$docs" ]; then
    out=$(printf '%s' "$docs" | kc create -f - 2>&1)
    for m in "${made[@]}"; do
      case $out in *"persistentvolume/${m%% *} created"*) log "provisioned $m at $PVDIR/${m%% *}" ;; esac
    done
  fi
  released=()
  while IFS=$'\t' read -r pv policy; do
    case $pv in pvc-*) [ "$policy" = Delete ] && released+=("$pv") ;; esac
  done < <(kc get pv -l stow.dev/local-hostpath=true -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\t"}{.spec.persistentVolumeReclaimPolicy}{"\n"}{end}' 2>/dev/null)
  if [ "${#released[@]}" -gt 0 ]; then
    for pv in "${released[@]}"; do rm -rf --one-file-system "${PVDIR:?}/$pv"; done
    kc delete pv "${released[@]}" --wait=false >/dev/null 2>&1 && log "deleted released ${released[*]} and their directories"
  fi
  sleep 1
done
