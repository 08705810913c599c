#!/usr/bin/env bash
# hack/local-cluster.sh: a real single-node Kubernetes on this host, no Docker, no registry.
#
# Usage: hack/local-cluster.sh COMMAND
#   up                  build (or reuse cached) binaries, start the cluster, wait until ready
#                       (already up: only reports status)
#   down                stop every process `up` started, undo host changes (bridge, iptables,
#                       sysctls, mounts), wipe cluster data (KEEP_DATA=1 keeps it)
#   status              components and node readiness; exit 1 if the cluster is not up
#   smoke               from a Job's pod: apiserver via in-cluster config, a ClusterIP Service,
#                       cluster DNS, a PVC on the default StorageClass written as non-root; the same
#                       from a CronJob's pod (SMOKE_CRONJOB=0 skips, saves up to a minute); from the
#                       host: both Service VIPs. Exit 1 on any failure
#   import-image FILE   import an image tarball (docker-archive or OCI) into containerd (k8s.io
#                       namespace): pods with imagePullPolicy IfNotPresent/Never then use it
#   pv NAME SIZE [CLASS] create a static hostPath PV (dir mode 0777) in StorageClass CLASS (default: manual)
#   kubeconfig          print the kubeconfig path     env   print `export KUBECONFIG=...`
#   gateway-ip          print the host's address on the pod bridge (pods reach host services there)
#   node-name           print the first node's name (the second is stow-node-b)
#   restart-provisioner run this checkout's volume provisioner (hack/lib/cluster/provisioner.sh)
#   build               only build / refresh the cached binaries and image tarballs
#   node2-up            add (or bring back) a second node on this host: own kubelet, containerd, pod
#                       bridge and subnet (hack/lib/cluster/node2.sh); `up` does it with STOW_CLUSTER_NODES=2
#   node2-stop          lose the second node: SIGKILL its kubelet, containerd and pod processes (the
#                       Node object stays and turns NotReady); node2-up brings it back
#   node2-down          remove the second node (pods, state, bridge, Node object); `down` does it too
#
# What runs: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
# (iptables mode) from k8s.io/kubernetes $K8S_VERSION (default v1.37.2), containerd v2 built from its Go
# module, runc + CNI plugins from Debian. Binaries are cached in ~/.cache/stow/cluster/<k8s version>/bin
# (cold build ~10-15 min on 2 cores, warm `up` ~1 min).
#
# Networking: bridge stow0 with the host at 10.244.0.1 (pod CIDR 10.244.0.0/24). The apiserver binds
# and advertises 10.244.0.1:6443, so the `kubernetes` Service (10.96.0.1:443) endpoint is reachable from
# pods and the host; kube-proxy programs Service VIPs (10.96.0.0/16). Pods have routes for the bridge
# and the Service range only; a FORWARD guard drops anything that would leave the bridge. A tiny DNS
# server on 10.244.0.1:53 answers <svc>.<ns>.svc.cluster.local (and nothing else; never forwards).
#
# Storage: StorageClass `standard` (default) is served by a tiny host-side provisioner: any PVC gets a
# hostPath PV under $STOW_CLUSTER_DIR/pv/pvc-<uid> (mode 0777, so non-root pods can write; fsGroup does
# not apply to hostPath), deleted again when the PVC is. `pv NAME SIZE` makes static PVs instead.
#
# Two nodes: STOW_CLUSTER_NODES=2 `up` starts a second node, stow-node-b (bridge stow1, pods
# 10.244.1.0/24), sharing the control plane, kube-proxy, DNS and the provisioner. PVs of `standard`
# live on the first node (node affinity); StorageClass `local-wffc` puts them on the node of their
# first pod. Cost: docs/testing.md, "Two nodes".
#
# Environment: STOW_CLUSTER_DIR (default ~/.cache/stow/cluster/run: pki, data, logs, admin.kubeconfig),
# STOW_CACHE (default ~/.cache/stow/cluster), K8S_VERSION, CTRD_VERSION, FORCE=1 (rebuild binaries),
# STOW_CLUSTER_DNS=0 (no DNS server), KEEP_DATA=1 (down keeps etcd/containerd/PV data).
# Requires root (network setup, containerd, kubelet).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export HACK_DIR
# shellcheck source=hack/lib/cluster/common.sh
. "$HACK_DIR/lib/cluster/common.sh"
# shellcheck source=hack/lib/cluster/build.sh
. "$HACK_DIR/lib/cluster/build.sh"
# shellcheck source=hack/lib/cluster/pki.sh
. "$HACK_DIR/lib/cluster/pki.sh"
# shellcheck source=hack/lib/cluster/configs.sh
. "$HACK_DIR/lib/cluster/configs.sh"
# shellcheck source=hack/lib/cluster/host.sh
. "$HACK_DIR/lib/cluster/host.sh"
# shellcheck source=hack/lib/cluster/start.sh
. "$HACK_DIR/lib/cluster/start.sh"
# shellcheck source=hack/lib/cluster/stop.sh
. "$HACK_DIR/lib/cluster/stop.sh"
# shellcheck source=hack/lib/cluster/node2.sh
. "$HACK_DIR/lib/cluster/node2.sh"

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy provisioner)
[ "${STOW_CLUSTER_DNS:-1}" = 1 ] && COMPONENTS+=(dns)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# one up/down at a time (fd 9; start_proc closes it for the cluster processes)
lock() {
  mkdir -p "$STOW_CACHE"
  exec 9>"$STOW_CACHE/.lock"
  flock -w 900 9 || die "another local-cluster.sh up/down holds $STOW_CACHE/.lock"
}

# status [quiet]: 0 if every component runs, the apiserver is ready and the node is Ready.
cmd_status() {
  local quiet=${1:-} ok=0 n ready
  for n in "${COMPONENTS[@]}"; do
    if pid_alive "$n"; then
      [ -n "$quiet" ] || printf '  %-24s running (pid %s)\n' "$n" "$(cat "$PIDS/$n.pid")"
    else
      [ -n "$quiet" ] || printf '  %-24s NOT running\n' "$n"
      ok=1
    fi
  done
  if [ -f "$KUBECONFIG_FILE" ] && kc get --raw /readyz >/dev/null 2>&1; then
    [ -n "$quiet" ] || printf '  %-24s ready (https://%s:%s)\n' apiserver "$GATEWAY_IP" "$APISERVER_PORT"
    ready=$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    [ -n "$quiet" ] || printf '  %-24s %s\n' "node $NODE_NAME" "Ready=${ready:-unknown}"
    [ "$ready" = True ] || ok=1
  else
    [ -n "$quiet" ] || printf '  %-24s not reachable\n' apiserver
    ok=1
  fi
  if node2_started && [ -z "$quiet" ]; then
    for n in containerd-2 kubelet-2; do
      if pid_alive "$n"; then printf '  %-24s running (pid %s)\n' "$n" "$(cat "$PIDS/$n.pid")"; else printf '  %-24s NOT running\n' "$n"; fi
    done
    printf '  %-24s %s\n' "node $NODE2_NAME" "Ready=$(kc get node "$NODE2_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || echo unknown)"
  fi
  if [ -z "$quiet" ]; then
    if [ $ok = 0 ]; then echo "cluster is UP; KUBECONFIG=$KUBECONFIG_FILE"; else echo "cluster is NOT up"; fi
  fi
  return $ok
}

cmd_up() {
  need_root
  lock
  if cmd_status quiet; then
    log "cluster already up"
    if [ "${STOW_CLUSTER_NODES:-1}" -ge 2 ]; then node2_up; fi
    cmd_status; return 0
  fi
  local any=0 n
  for n in "${COMPONENTS[@]}"; do pid_alive "$n" && any=1; done
  if [ $any = 1 ] || [ -f "$STATE/sysctl.orig" ]; then
    log "cluster partially up or not cleanly stopped: running 'down' first"
    down_all || true
  fi
  log "up: Kubernetes $K8S_VERSION, containerd $CTRD_VERSION, cluster dir $R"
  mkdir -p "$STOW_CACHE" "$R" "$STATE"
  build_all
  log "binaries ready in $BIN"
  gen_pki
  write_configs
  host_save_state
  host_net_up
  if ! start_cluster; then
    log "startup failed; logs in $LOGS. Run '$0 down' to clean up."
    return 1
  fi
  if [ "${STOW_CLUSTER_NODES:-1}" -ge 2 ]; then node2_up || { log "second node failed; logs in $LOGS"; return 1; }; fi
  log "cluster is up in $(( $(date +%s) - T0 ))s"
  cmd_status
  echo "kubeconfig: $KUBECONFIG_FILE"
  echo "  export KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_down() {
  need_root
  lock
  log "down: stopping cluster in $R"
  down_all
}

cmd_import_image() {
  [ $# -ge 1 ] || die "usage: $0 import-image FILE.tar [FILE.tar...]"
  pid_alive containerd || die "containerd is not running (run '$0 up')"
  local f
  for f in "$@"; do
    [ -f "$f" ] || die "no such file: $f"
    ctr_k8s images import --no-unpack=false "$f" || die "import of $f failed"
    if pid_alive containerd-2; then ctr_node2 images import --no-unpack=false "$f" || die "import of $f on $NODE2_NAME failed"; fi
  done
}

cmd_pv() { # NAME SIZE [CLASS]
  [ $# -ge 2 ] || die "usage: $0 pv NAME SIZE [STORAGECLASS]"
  local name=$1 size=$2 class=${3:-manual}
  mkdir -p "$PVDIR/$name" && chmod 0777 "$PVDIR/$name"
  kc apply -f - <<EOT
apiVersion: v1
kind: PersistentVolume
metadata: {name: $name}
spec:
  capacity: {storage: "$size"}
  accessModes: [ReadWriteOnce, ReadWriteMany, ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: $class
  volumeMode: Filesystem
  hostPath: {path: "$PVDIR/$name", type: Directory}
EOT
  echo "host path: $PVDIR/$name"
}

cmd_smoke() {
  cmd_status quiet || die "cluster is not up (run '$0 up')"
  local ns=stow-smoke rc=0 svcip
  log "smoke: namespace $ns"
  kc delete namespace "$ns" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  kc create namespace "$ns" >/dev/null
  waitfor "ServiceAccount $ns/default" 60 kc -n "$ns" get serviceaccount default
  kc -n "$ns" apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
  containers:
  - name: web
    image: $PROBE_IMAGE
    imagePullPolicy: IfNotPresent
    args: [serve, -addr, ":8080"]
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 56789, targetPort: 8080}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOT
  waitfor "PVC $ns/data Bound" 120 bash -c "[ \"\$(kubectl --kubeconfig=$KUBECONFIG_FILE -n $ns get pvc data -o jsonpath='{.status.phase}')\" = Bound ]" || rc=1
  waitfor "pod $ns/web Ready" 240 kc -n "$ns" wait --for=condition=Ready pod/web --timeout=1s || rc=1
  svcip=$(kc -n "$ns" get service web -o jsonpath='{.spec.clusterIP}')
  kc -n "$ns" apply -f - >/dev/null <<EOT
apiVersion: batch/v1
kind: Job
metadata: {name: check}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
      containers:
      - name: check
        image: $PROBE_IMAGE
        imagePullPolicy: IfNotPresent
        args: [check, -url, "http://$svcip:56789/", -timeout, 60s, -out, /data$( [ "${STOW_CLUSTER_DNS:-1}" = 1 ] && printf ', -dns, web.%s.svc.cluster.local' "$ns")]
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
EOT
  if [ "${SMOKE_CRONJOB:-1}" = 1 ]; then
    # the same check from a CronJob's pod, as Stow's scheduled backups run (fires at the next minute)
    kc -n "$ns" apply -f - >/dev/null <<EOT
apiVersion: batch/v1
kind: CronJob
metadata: {name: cron}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          securityContext: {runAsNonRoot: true, runAsUser: 65532}
          containers:
          - name: check
            image: $PROBE_IMAGE
            imagePullPolicy: IfNotPresent
            args: [check, -url, "http://$svcip:56789/", -timeout, 30s]
EOT
  fi
  local phase="" i
  for ((i = 0; i < 180; i++)); do
    phase=$(kc -n "$ns" get job check -o jsonpath='{.status.conditions[?(@.status=="True")].type}' 2>/dev/null || true)
    case $phase in *Complete* | *Failed*) break ;; esac
    sleep 1
  done
  echo "---- probe pod log ----"
  kc -n "$ns" logs job/check 2>&1 || true
  echo "-----------------------"
  case $phase in *Complete*) log "probe job: Complete" ;; *) log "probe job: ${phase:-timed out}"; rc=1 ;; esac
  if [ "${SMOKE_CRONJOB:-1}" = 1 ]; then
    local q='{range .items[?(@.metadata.ownerReferences[0].kind=="CronJob")]}' succ="" failed=""
    log "waiting for the CronJob to run a Job to completion (fires each minute)"
    for ((i = 0; i < 150; i++)); do
      succ=$(kc -n "$ns" get jobs -o jsonpath="$q{.status.succeeded}{end}" 2>/dev/null || true)
      failed=$(kc -n "$ns" get jobs -o jsonpath="$q{.status.failed}{end}" 2>/dev/null || true)
      if [ -n "$succ" ] || [ -n "$failed" ]; then break; fi
      sleep 1
    done
    if [ -n "$succ" ] && [ -z "$failed" ]; then
      log "CronJob -> Job $(kc -n "$ns" get jobs -o jsonpath="$q{.metadata.name}{end}"): succeeded"
    else
      log "CronJob: no successful Job (succeeded=${succ:-0} failed=${failed:-0})"; rc=1
      kc -n "$ns" logs -l batch.kubernetes.io/job-name --tail=20 2>&1 | tail -20 || true
    fi
  fi
  # host side: the kubernetes Service VIP and the web Service VIP work from the host as well
  if curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$KUBERNETES_SVC_IP:443/version" >/dev/null; then
    log "host -> https://$KUBERNETES_SVC_IP:443/version: ok"
  else log "host -> https://$KUBERNETES_SVC_IP:443/version: FAILED"; rc=1; fi
  if curl -sf --max-time 5 "http://$svcip:56789/" | grep stow-probe-ok >/dev/null; then
    log "host -> http://$svcip:56789/: ok"
  else log "host -> http://$svcip:56789/: FAILED"; rc=1; fi
  local vol
  vol=$(kc -n "$ns" get pvc data -o jsonpath='{.spec.volumeName}')
  if ls "$PVDIR/$vol"/probe-*.txt >/dev/null 2>&1; then
    log "file written by the non-root pod is on the host: $(ls "$PVDIR/$vol")"
  else log "no file from the pod in $PVDIR/$vol"; rc=1; fi
  if [ $rc = 0 ]; then
    kc delete namespace "$ns" --wait=false >/dev/null
    log "SMOKE PASSED"
  else
    kc -n "$ns" get all,pvc -o wide >&2 || true
    log "SMOKE FAILED (namespace $ns kept for inspection)"
  fi
  return $rc
}

main() {
  local cmd=${1:-help}
  [ $# -gt 0 ] && shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    smoke) cmd_smoke ;;
    import-image) cmd_import_image "$@" ;;
    pv) cmd_pv "$@" ;;
    kubeconfig) echo "$KUBECONFIG_FILE" ;;
    gateway-ip) echo "$GATEWAY_IP" ;;
    node-name) echo "$NODE_NAME" ;;
    restart-provisioner) need_root; lock; restart_provisioner ;;
    env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
    node2-up) need_root; lock; node2_up ;;
    node2-stop) need_root; lock; node2_kill ;;
    node2-down) need_root; lock; node2_down ;;
    build) need_root; mkdir -p "$STOW_CACHE"; build_all; log "binaries in $BIN, images in $IMG" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
