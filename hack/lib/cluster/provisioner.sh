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

provision() { # NS NAME UID SIZE MODES [NODE]
  local ns=$1 name=$2 uid=$3 size=$4 modes=$5 node=${6:-$NODE_NAME} pv=pvc-$3
  kc get pv "$pv" >/dev/null 2>&1 && return 0
  mkdir -p "$PVDIR/$pv" && chmod 0777 "$PVDIR/$pv"
  kc create -f - <<EOT && log "provisioned $pv for $ns/$name ($size, $modes) at $PVDIR/$pv on node $node"
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

reclaim() { # PV
  local pv=$1
  case $pv in pvc-*) ;; *) return 0 ;; esac
  rm -rf --one-file-system "${PVDIR:?}/$pv"
  kc delete pv "$pv" --wait=false >/dev/null 2>&1 && log "deleted released $pv and its directory"
}

log "hostPath provisioner for $PROV started (dirs under $PVDIR)"
while true; do
  kc get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace}{"|"}{.metadata.name}{"|"}{.metadata.uid}{"|"}{.metadata.annotations.volume\.kubernetes\.io/storage-provisioner}{"|"}{.spec.resources.requests.storage}{"|"}{.spec.accessModes}{"|"}{.spec.volumeName}{"|"}{.metadata.annotations.volume\.kubernetes\.io/selected-node}{"\n"}{end}' 2>/dev/null |
    while IFS='|' read -r ns name uid prov size modes vol node; do
      if [ "$prov" != "$PROV" ] || [ -n "$vol" ] || [ -z "$size" ]; then continue; fi
      provision "$ns" "$name" "$uid" "$size" "${modes:-[ReadWriteOnce]}" "$node"
    done
  kc get pv -l stow.dev/local-hostpath=true -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\t"}{.spec.persistentVolumeReclaimPolicy}{"\n"}{end}' 2>/dev/null |
    while IFS=$'\t' read -r pv policy; do
      [ "$policy" = Delete ] && reclaim "$pv"
    done
  sleep 1
done
