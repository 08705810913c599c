# shellcheck shell=bash disable=SC2034
# A second node on the same host: its own containerd (root, state, socket, runc root), kubelet (root
# dir, pod logs, cgroup root, healthz port, serving address and certificates, node name) and pod
# bridge $NODE2_BRIDGE with its own pod subnet. The control plane, kube-proxy (host-wide iptables),
# DNS and the provisioner are shared with the first node.
#
# Routing: both bridges are on this host, so the host routes between them directly. Pods of node 2
# get routes for the whole pod range ($POD_RANGE: the first node's gateway, apiserver, DNS and pods)
# and the Service range. Pods of the first node have routes for their own subnet only; kube-proxy
# masquerades Service traffic from node 2's subnet (outside its --cluster-cidr) to the first bridge's
# address, so replies find their way back, and replies of node-2 pods to first-node pods follow
# node 2's route. The FORWARD guard lets traffic pass between the two bridges and nowhere else.
#
# Lost-node experiments: `node2-stop` SIGKILLs node 2's kubelet, containerd and the pods' shims and
# processes (its Node object stays, and turns NotReady after the node monitor grace period);
# `node2-up` brings it back with the same name and state directories.

NODE2_NAME=${NODE2_NAME:-stow-node-b}
NODE2_BRIDGE=${NODE2_BRIDGE:-stow1}
NODE2_POD_CIDR=${NODE2_POD_CIDR:-10.244.1.0/24}
NODE2_GATEWAY_IP=${NODE2_GATEWAY_IP:-10.244.1.1}
NODE2_HEALTHZ_PORT=${NODE2_HEALTHZ_PORT:-10348}
POD_RANGE=${POD_RANGE:-10.244.0.0/16}
N2=$R/nodes/$NODE2_NAME
N2_ETC=$N2/etc
N2_SOCK=$N2/containerd/containerd.sock
N2_CGROUP=$NODE2_NAME                      # kubelet cgroupRoot, below every cgroup v1 hierarchy

ctr_node2() { "$BIN/ctr" --address "$N2_SOCK" -n k8s.io "$@"; }
node2_running() { pid_alive kubelet-2 || pid_alive containerd-2; }
node2_started() { [ -d "$N2" ] && ip link show "$NODE2_BRIDGE" >/dev/null 2>&1; }

node2_pki() {
  local stamp=.pki-$NODE2_NAME-$NODE2_GATEWAY_IP
  [ -f "$PKI/$stamp" ] && [ -f "$PKI/kubelet-client-2.crt" ] || (
    cd "$PKI" || exit 1
    pki_cert kubelet-client-2 "system:node:$NODE2_NAME" system:nodes "" clientAuth
    pki_cert kubelet-server-2 "$NODE2_NAME" "" "DNS:$NODE2_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE2_GATEWAY_IP" serverAuth
    chmod 600 ./*.key
    touch "$stamp"
  )
  write_kubeconfig "$PKI/kubelet-client-2.kubeconfig" kubelet-client-2
}

# node2_configs derives node 2's containerd and kubelet configuration from the first node's.
node2_configs() {
  [ -f "$ETC/containerd.toml" ] && [ -f "$ETC/kubelet.yaml" ] || die "no first-node configuration under $ETC (run 'up' first)"
  mkdir -p "$N2_ETC/cni/net.d" "$N2/containerd" "$N2/kubelet" "$N2/pod-logs"
  sed -e "s|'$R/containerd/|'$N2/containerd/|g" -e "s|'$R/runc'|'$N2/runc'|" \
    -e "s|'$ETC/cni/net.d'|'$N2_ETC/cni/net.d'|" "$ETC/containerd.toml" >"$N2_ETC/containerd.toml"
  grep -q "$N2_SOCK" "$N2_ETC/containerd.toml" || die "could not derive node 2's containerd config"
  cat >"$N2_ETC/cni/net.d/10-stow.conflist" <<EOT
{
  "cniVersion": "0.4.0",
  "name": "stow-2",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE2_BRIDGE", "isGateway": true, "isDefaultGateway": false,
      "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$N2/cni-ipam",
        "ranges": [[{"subnet": "$NODE2_POD_CIDR", "gateway": "$NODE2_GATEWAY_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}, {"dst": "$POD_RANGE"}]
      }
    },
    { "type": "loopback" }
  ]
}
EOT
  sed -e "s|^address: .*|address: $NODE2_GATEWAY_IP|" -e "s|^healthzPort: .*|healthzPort: $NODE2_HEALTHZ_PORT|" \
    -e "s|^tlsCertFile: .*|tlsCertFile: $PKI/kubelet-server-2.crt|" \
    -e "s|^tlsPrivateKeyFile: .*|tlsPrivateKeyFile: $PKI/kubelet-server-2.key|" \
    -e "s|^containerRuntimeEndpoint: .*|containerRuntimeEndpoint: unix://$N2_SOCK|" \
    -e "s|^podLogsDir: .*|podLogsDir: $N2/pod-logs|" "$ETC/kubelet.yaml" >"$N2_ETC/kubelet.yaml"
  printf 'cgroupRoot: /%s\n' "$N2_CGROUP" >>"$N2_ETC/kubelet.yaml"
}

# The kubelet requires its cgroup root to exist in every hierarchy; cpuset needs cpus and mems.
node2_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    case $h in */unified/) continue ;; esac
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$N2_CGROUP"
  done
  if [ -d /sys/fs/cgroup/cpuset/$N2_CGROUP ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >/sys/fs/cgroup/cpuset/$N2_CGROUP/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems >/sys/fs/cgroup/cpuset/$N2_CGROUP/cpuset.mems
  fi
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then # cgroup v2: one hierarchy
    mkdir -p "/sys/fs/cgroup/$N2_CGROUP"
    sed 's/\([^ ]*\)/+\1/g' /sys/fs/cgroup/cgroup.subtree_control >"/sys/fs/cgroup/$N2_CGROUP/cgroup.subtree_control" 2>/dev/null || true
  fi
}

node2_net_up() {
  if ! ip link show "$NODE2_BRIDGE" >/dev/null 2>&1; then ip link add "$NODE2_BRIDGE" type bridge; fi
  ip addr show dev "$NODE2_BRIDGE" | grep "inet $NODE2_GATEWAY_IP/" >/dev/null || ip addr add "$NODE2_GATEWAY_IP/${NODE2_POD_CIDR#*/}" dev "$NODE2_BRIDGE"
  ip link set "$NODE2_BRIDGE" up
  # FORWARD guard: between and within the two bridges RETURN (on to kube-proxy's rules, then
  # STOW-FORWARD-ACCEPT); anything else to or from node 2's bridge is dropped.
  local a b
  for a in "$BRIDGE" "$NODE2_BRIDGE"; do
    for b in "$BRIDGE" "$NODE2_BRIDGE"; do
      [ "$a" = "$BRIDGE" ] && [ "$b" = "$BRIDGE" ] && continue
      iptables -w -C STOW-FORWARD -i "$a" -o "$b" -j RETURN 2>/dev/null || iptables -w -I STOW-FORWARD 1 -i "$a" -o "$b" -j RETURN
      iptables -w -C STOW-FORWARD-ACCEPT -i "$a" -o "$b" -j ACCEPT 2>/dev/null || iptables -w -A STOW-FORWARD-ACCEPT -i "$a" -o "$b" -j ACCEPT
    done
  done
  for a in -i -o; do
    iptables -w -C STOW-FORWARD "$a" "$NODE2_BRIDGE" -j DROP 2>/dev/null || iptables -w -A STOW-FORWARD "$a" "$NODE2_BRIDGE" -j DROP
  done
}

node2_net_down() {
  local a b
  for a in "$BRIDGE" "$NODE2_BRIDGE"; do
    for b in "$BRIDGE" "$NODE2_BRIDGE"; do
      [ "$a" = "$BRIDGE" ] && [ "$b" = "$BRIDGE" ] && continue # the first node's own rules stay
      iptables -w -D STOW-FORWARD -i "$a" -o "$b" -j RETURN 2>/dev/null || true
      iptables -w -D STOW-FORWARD-ACCEPT -i "$a" -o "$b" -j ACCEPT 2>/dev/null || true
    done
  done
  for a in -i -o; do iptables -w -D STOW-FORWARD "$a" "$NODE2_BRIDGE" -j DROP 2>/dev/null || true; done
  if ip link show "$NODE2_BRIDGE" >/dev/null 2>&1; then ip link del "$NODE2_BRIDGE" && log "deleted bridge $NODE2_BRIDGE"; fi
}

node2_ready() {
  [ "$(kc get node "$NODE2_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# node2_up: start (or restart after node2-stop) the second node and wait until it is Ready.
node2_up() {
  kc get --raw /readyz >/dev/null 2>&1 || die "the cluster is not up (run 'up' first)"
  if pid_alive kubelet-2 && pid_alive containerd-2 && node2_ready; then
    kc uncordon "$NODE2_NAME" >/dev/null
    log "node $NODE2_NAME already up"; return 0
  fi
  log "node $NODE2_NAME: bridge $NODE2_BRIDGE ($NODE2_GATEWAY_IP, pods $NODE2_POD_CIDR), state under $N2"
  node2_pki
  node2_configs
  node2_cgroups
  node2_net_up
  pid_alive containerd-2 || start_proc containerd-2 "$BIN/containerd" --config "$N2_ETC/containerd.toml"
  waitfor "containerd of $NODE2_NAME" 120 ctr_node2 version || start_failed containerd-2
  local t
  for t in "$IMG/pause.tar" "$IMG/probe.tar"; do
    ctr_node2 images import --no-unpack=false "$t" >>"$LOGS/image-import.log" 2>&1 || die "import of $t on $NODE2_NAME failed"
  done
  pid_alive kubelet-2 || start_proc kubelet-2 "$BIN/kubelet" --config="$N2_ETC/kubelet.yaml" \
    --kubeconfig="$PKI/kubelet-client-2.kubeconfig" --hostname-override="$NODE2_NAME" --node-ip="$NODE2_GATEWAY_IP" \
    --root-dir="$N2/kubelet" --v="${KUBELET_V:-1}"
  waitfor "kubelet of $NODE2_NAME healthz" 240 curl -sf "http://127.0.0.1:$NODE2_HEALTHZ_PORT/healthz" || start_failed kubelet-2
  waitfor "node $NODE2_NAME Ready" 480 node2_ready || start_failed kubelet-2
  kc uncordon "$NODE2_NAME" >/dev/null
  restart_provisioner
}

# node2_kill: the node is lost: SIGKILL its kubelet, containerd, the pods' shims and everything in
# its pods (their processes are below its cgroup root). State directories and the Node object stay.
node2_kill() {
  local n p
  for n in kubelet-2 containerd-2; do
    if pid_alive "$n"; then kill -9 "$(cat "$PIDS/$n.pid")" 2>/dev/null || true; fi
    rm -f "$PIDS/$n.pid"
  done
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $N2_SOCK" || true); do kill -9 "$p" 2>/dev/null || true; done
  local h
  for h in "/sys/fs/cgroup/pids/$N2_CGROUP" "/sys/fs/cgroup/$N2_CGROUP"; do
    [ -d "$h" ] || continue
    find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null || true; done
  done
  log "node $NODE2_NAME: kubelet, containerd, shims and pod processes killed"
}

# node2_down: remove the second node: its pods and containers, processes, mounts, cgroups, bridge,
# forward rules, its Node object and its state directory.
node2_down() {
  if pid_alive containerd-2 && [ -S "$N2_SOCK" ]; then
    stop_proc kubelet-2
    local t c
    for t in $(ctr_node2 tasks ls -q 2>/dev/null); do ctr_node2 tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for t in $(ctr_node2 tasks ls -q 2>/dev/null); do ctr_node2 tasks delete -f "$t" >/dev/null 2>&1 || true; done
    for c in $(ctr_node2 containers ls -q 2>/dev/null); do ctr_node2 containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  node2_kill
  local m
  awk -v r="$N2" '$2 ~ "^"r"/" {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
  done
  local cg
  for cg in /sys/fs/cgroup/*/"$N2_CGROUP" "/sys/fs/cgroup/$N2_CGROUP"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  node2_net_down
  if bridge_up && kc get node "$NODE2_NAME" >/dev/null 2>&1; then
    kc delete node "$NODE2_NAME" --wait=false >/dev/null && log "deleted Node $NODE2_NAME (its pods are garbage-collected)"
  fi
  if awk -v r="$N2" '$2 ~ "^"r"/" {found=1} END {exit !found}' /proc/mounts; then
    log "WARNING: mounts remain under $N2, not wiping it"
  else
    rm -rf --one-file-system "${N2:?}"
  fi
  log "node $NODE2_NAME removed"
}

# restart_provisioner runs this checkout's provisioner (PVs with node affinity) and StorageClasses.
restart_provisioner() {
  apply_base_manifests
  stop_proc provisioner
  start_proc provisioner bash "$HACK_DIR/lib/cluster/provisioner.sh"
}
