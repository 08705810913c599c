# shellcheck shell=bash
# Stop everything `up` started (by recorded pid, reverse order) and undo its host changes.

stop_proc() { # NAME...: SIGTERM all of them, wait up to 15s, then SIGKILL what is left
  local n f p i alive names=() plist=()
  for n in "$@"; do
    f=$PIDS/$n.pid
    [ -f "$f" ] || continue
    p=$(cat "$f")
    rm -f "$f"
    kill -0 "$p" 2>/dev/null || continue
    kill "$p" 2>/dev/null || true
    names+=("$n"); plist+=("$p")
  done
  [ ${#plist[@]} -gt 0 ] || return 0
  for ((i = 0; i < 150; i++)); do
    alive=0
    for p in "${plist[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for i in "${!plist[@]}"; do
    if kill -0 "${plist[$i]}" 2>/dev/null; then log "SIGKILL ${names[$i]} (${plist[$i]})"; kill -9 "${plist[$i]}" 2>/dev/null || true; fi
  done
  log "stopped ${names[*]}"
}

# containerd shims are reparented to init; ours are the ones whose -address is our socket.
our_shims() { pgrep -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" || true; }

stop_cluster() {
  local p
  if node2_started || node2_running; then node2_down; fi
  stop_proc provisioner dns kubelet
  # remove all pod containers and sandboxes so runc processes, shims, netns and veths go away
  if pid_alive containerd && [ -S "$CTRD_SOCK" ]; then
    local t c
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$t" >/dev/null 2>&1 || true; done
    for c in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop_proc kube-proxy containerd kube-scheduler kube-controller-manager
  stop_proc kube-apiserver
  stop_proc etcd
  for p in $(our_shims); do log "stopping shim $p"; kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in $(our_shims); do kill -9 "$p" 2>/dev/null || true; done
  # anything still running from our binaries (e.g. a container process whose shim died)
  for p in $(pgrep -f "^$BIN/" || true); do log "killing leftover $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | cut -c1-80) ($p)"; kill -9 "$p" 2>/dev/null || true; done

  # mounts: kubelet volumes, containerd snapshots and sandbox shm under $R, CNI network namespaces
  local m
  awk -v r="$R" '$2 ~ "^"r"/" || $2 ~ "^/run/netns/cni-" {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
  done
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done

  # cgroups created by the kubelet (cgroupfs driver) and the pods
  local cg
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  true
}

# Empty directories and sockets that kubelet / containerd / libcni create at fixed host paths.
clean_host_leftovers() {
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/DEPRECATION
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet/plugins_registry /var/lib/kubelet/plugins \
    /var/lib/kubelet/pod-resources /var/lib/kubelet 2>/dev/null || true
  rm -rf /var/lib/cni/results /var/lib/cni/networks/stow 2>/dev/null || true
  rmdir /var/lib/cni/networks /var/lib/cni 2>/dev/null || true
  if [ -d /run/netns ]; then rmdir /run/netns 2>/dev/null || true; fi
  if [ -d /run/containerd ]; then find /run/containerd -depth -type d -empty -delete 2>/dev/null || true; fi
}

# Wipe runtime data (etcd, containerd images, kubelet dir, PVs) so the next `up` starts fresh.
# Refuses while anything is still mounted below $R (never delete through a bind mount).
wipe_runtime_data() {
  if awk -v r="$R" '$2 ~ "^"r"/" {found=1} END {exit !found}' /proc/mounts; then
    log "WARNING: mounts remain under $R, not wiping data"; return 0
  fi
  rm -rf --one-file-system "${R:?}/etcd" "$R/containerd" "$R/kubelet" "$R/runc" "$R/cni-ipam" "$R/pod-logs" "$PVDIR"
  log "wiped cluster data under $R (kept pki, logs, kubeconfig)"
}

down_all() {
  stop_cluster
  clean_host_leftovers
  host_net_down
  host_restore_state
  [ "${KEEP_DATA:-0}" = 1 ] || wipe_runtime_data
  local left
  left=$(ps -eo pid,stat,args | awk -v b="$BIN/" -v s="$CTRD_SOCK" 'index($0, b) || index($0, s)' | grep -v awk || true)
  if [ -n "$left" ]; then log "WARNING: processes remain:"; echo "$left" >&2; return 1; fi
  log "down: no cluster processes remain"
}
