# shellcheck shell=bash disable=SC2034  # variables are used by the other sourced files
# Common settings and helpers for hack/local-cluster.sh (sourced, never run directly).
#
# Layout:
#   $STOW_CACHE/<K8S_VERSION>/bin     cached binaries (kube-*, etcd, containerd, ctr, shim)
#   $STOW_CACHE/<K8S_VERSION>/images  image tarballs (pause, probe) built with go-containerregistry
#   $STOW_CACHE/build                 throwaway Go modules used to build the binaries
#   $STOW_CLUSTER_DIR                 one cluster: pki, configs, data, logs, pids, PV dirs, kubeconfig

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-}            # empty: the etcd server version k8s.io/kubernetes itself pins
CTRD_VERSION=${CTRD_VERSION:-v2.3.7}
STOW_CACHE=${STOW_CACHE:-$HOME/.cache/stow/cluster}
STOW_CLUSTER_DIR=${STOW_CLUSTER_DIR:-$STOW_CACHE/run}
BIN=$STOW_CACHE/$K8S_VERSION/bin
IMG=$STOW_CACHE/$K8S_VERSION/images
BUILD=$STOW_CACHE/build

# Network layout. Private ranges that live only on the local bridge; pods get routes for the bridge
# subnet and the Service range only (no default route), and a FORWARD guard keeps them off eth0.
BRIDGE=${STOW_BRIDGE:-stow0}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}
GATEWAY_IP=${GATEWAY_IP:-10.244.0.1}       # host address on the bridge: apiserver, kubelet, node IP
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/16}
KUBERNETES_SVC_IP=${KUBERNETES_SVC_IP:-10.96.0.1}
APISERVER_PORT=6443
PAUSE_IMAGE=${PAUSE_IMAGE:-registry.k8s.io/pause:3.10}
PROBE_IMAGE=${PROBE_IMAGE:-localhost/stow-cluster-probe:dev}

R=$STOW_CLUSTER_DIR
PKI=$R/pki
ETC=$R/etc
LOGS=$R/logs
PIDS=$R/pids
STATE=$R/state                             # saved host settings (sysctls, iptables snapshot)
PVDIR=$R/pv
KUBECONFIG_FILE=$R/admin.kubeconfig
CTRD_SOCK=$R/containerd/containerd.sock

export GOFLAGS=${GOFLAGS:--buildvcs=false}
export PATH=$BIN:/usr/local/go/bin:/usr/sbin:/sbin:$PATH

# The node name must resolve to loopback (kubelet rejects loopback node IPs; we use the bridge IP).
if [ -z "${NODE_NAME:-}" ]; then
  NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')
fi

T0=${T0:-$(date +%s)}
log() { printf '[%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Pipelines into grep read all of their input (`grep PATTERN >/dev/null`, never `grep -q`): under
# pipefail, grep -q exits at the first match and a producer that writes line by line (ip flushes
# after each address) dies of SIGPIPE, so the test fails although the line is there (measured: 10 of
# 300 `ip addr show | grep -q` runs; node 2's restart then re-added its bridge address and failed).

# True when the bridge carries the gateway address. Every apiserver call checks it first: without the
# bridge, $GATEWAY_IP would be routed via the host's default route, off this machine.
bridge_up() { ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | grep "inet $GATEWAY_IP/" >/dev/null; }
kc() {
  bridge_up || { echo "bridge $BRIDGE with $GATEWAY_IP is not up: cluster not running" >&2; return 1; }
  kubectl --kubeconfig="$KUBECONFIG_FILE" "$@"
}
ctr_k8s() { "$BIN/ctr" --address "$CTRD_SOCK" -n k8s.io "$@"; }

pid_alive() { local f=$PIDS/$1.pid; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# waitfor DESC TRIES(0.5s each) CMD...
waitfor() {
  local what=$1 tries=$2 i; shift 2
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then log "$what: ok"; return 0; fi
    sleep 0.5
  done
  log "TIMEOUT waiting for $what"; return 1
}
