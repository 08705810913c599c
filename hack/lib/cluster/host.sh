# shellcheck shell=bash
# Host-side network setup and its exact undo: the pod bridge with the gateway address, a route for the
# Service range onto the bridge (so no Service VIP traffic can follow the host's default route), a
# FORWARD guard (pods can talk to each other and to the host, never beyond), saved sysctls and an
# iptables snapshot that `down` compares against.

# sysctls that kubelet, kube-proxy or the CNI bridge plugin may change; restored by `down`.
HOST_SYSCTLS=(
  net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
  net.netfilter.nf_conntrack_udp_timeout
  net.netfilter.nf_conntrack_udp_timeout_stream
  vm.overcommit_memory
  vm.panic_on_oom
  kernel.panic
  kernel.panic_on_oops
  kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes
)
OUR_CHAINS='(KUBE|CNI|STOW)-'

# iptables-save without counters, comments about generation time, and empty tables: what "the same
# iptables" means when comparing before/after.
ipt_normalized() { # iptables|ip6tables
  "$1-save" 2>/dev/null | { grep -vE '^#' || true; } | sed -E 's/\[[0-9]+:[0-9]+\]//' | awk '
    /^\*/ {t=$0; n=0; split("", buf); next}
    /^COMMIT/ {if (n) {print t; for (i=1;i<=n;i++) print buf[i]; print "COMMIT"}; next}
    /^:/ {if ($2 != "ACCEPT") buf[++n]=$0; next}   # user chains and non-default policies
    {buf[++n]=$0}'
}

host_save_state() {
  mkdir -p "$STATE"
  [ -f "$STATE/sysctl.orig" ] && return 0      # keep the first snapshot until `down` restores it
  local k v
  for k in "${HOST_SYSCTLS[@]}"; do
    v=$(sysctl -n "$k" 2>/dev/null) || continue
    printf '%s\t%s\n' "$k" "$v"
  done >"$STATE/sysctl.orig.tmp"
  ipt_normalized iptables >"$STATE/iptables.orig"
  ipt_normalized ip6tables >"$STATE/ip6tables.orig"
  # tables that exist before we start (an nft table created by us is deleted again by `down`)
  { iptables-save 2>/dev/null | sed -n 's/^\*//p'; } >"$STATE/iptables-tables.orig"
  { ip6tables-save 2>/dev/null | sed -n 's/^\*//p'; } >"$STATE/ip6tables-tables.orig"
  mv "$STATE/sysctl.orig.tmp" "$STATE/sysctl.orig"
}

host_net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    touch "$STATE/bridge-created"
  fi
  ip addr show dev "$BRIDGE" | grep "inet $GATEWAY_IP/" >/dev/null || ip addr add "$GATEWAY_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # bridged pod-to-pod replies must pass iptables so conntrack can undo kube-proxy's DNAT
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
  sysctl -q -w net.bridge.bridge-nf-call-iptables=1 >/dev/null 2>&1 || log "warning: cannot enable bridge-nf-call-iptables"
  # Service VIPs are DNATed by kube-proxy; route the range onto the bridge so that, whatever the
  # state of kube-proxy, a packet to a VIP never follows the host's default route.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$GATEWAY_IP"
  # FORWARD guard, first in FORWARD: traffic to or from the bridge that does not stay on the bridge is
  # dropped; bridge-internal traffic goes on through kube-proxy's rules and is accepted at the end
  # (even if the host's FORWARD policy is DROP).
  iptables -w -N STOW-FORWARD 2>/dev/null || iptables -w -F STOW-FORWARD
  iptables -w -A STOW-FORWARD -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -w -A STOW-FORWARD -i "$BRIDGE" -j DROP
  iptables -w -A STOW-FORWARD -o "$BRIDGE" -j DROP
  iptables -w -N STOW-FORWARD-ACCEPT 2>/dev/null || iptables -w -F STOW-FORWARD-ACCEPT
  iptables -w -A STOW-FORWARD-ACCEPT -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -w -C FORWARD -j STOW-FORWARD-ACCEPT 2>/dev/null || iptables -w -A FORWARD -j STOW-FORWARD-ACCEPT
  host_guard_first
}

host_guard_first() {
  iptables -w -D FORWARD -j STOW-FORWARD 2>/dev/null || true
  iptables -w -I FORWARD 1 -j STOW-FORWARD
}

# Remove every rule and chain named KUBE-*, CNI-*, STOW-* (and jumps to them) from all tables, by
# rewriting each table without them in one iptables-restore (which also drops the empty user chains).
ipt_cleanup_family() { # iptables|ip6tables
  local ipt=$1 t
  command -v "$ipt-save" >/dev/null || return 0
  for t in $("$ipt-save" 2>/dev/null | sed -n 's/^\*//p'); do
    "$ipt-save" -t "$t" 2>/dev/null | grep -E "$OUR_CHAINS" >/dev/null || continue
    "$ipt-save" -t "$t" | grep -vE "^:$OUR_CHAINS|^-A $OUR_CHAINS| -j $OUR_CHAINS" | "$ipt-restore" -w 2>/dev/null \
      || log "warning: could not clean $ipt table $t"
  done
  # tables that did not exist before: delete them again (nft backend only; needs nft)
  if command -v nft >/dev/null && [ -f "$STATE/$ipt-tables.orig" ] && "$ipt" --version | grep -q nf_tables; then
    local fam=ip; [ "$ipt" = ip6tables ] && fam=ip6
    for t in $("$ipt-save" 2>/dev/null | sed -n 's/^\*//p'); do
      grep -qx "$t" "$STATE/$ipt-tables.orig" && continue
      if ! "$ipt-save" -t "$t" | grep -E '^-A' >/dev/null; then nft delete table "$fam" "$t" 2>/dev/null || true; fi
    done
  fi
}

host_net_down() {
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE" && log "deleted bridge $BRIDGE"; fi
  rm -f "$STATE/bridge-created"
  # veths of pods whose netns is gone are deleted with the netns; remove any stray one on our bridge
  ipt_cleanup_family iptables
  ipt_cleanup_family ip6tables
}

host_restore_state() {
  [ -f "$STATE/sysctl.orig" ] || return 0
  local k v cur changed=0
  while IFS=$'\t' read -r k v; do
    cur=$(sysctl -n "$k" 2>/dev/null) || continue
    if [ "$cur" != "$v" ]; then
      sysctl -q -w "$k=$v" >/dev/null 2>&1 && { log "restored sysctl $k=$v (was $cur)"; changed=1; }
    fi
  done <"$STATE/sysctl.orig"
  [ "$changed" = 0 ] && log "sysctls unchanged"
  local fam diff
  for fam in iptables ip6tables; do
    [ -f "$STATE/$fam.orig" ] || continue
    if diff=$(diff "$STATE/$fam.orig" <(ipt_normalized "$fam")); then
      log "$fam: same as before 'up'"
    else
      log "WARNING: $fam differs from before 'up':"; printf '%s\n' "$diff" >&2
    fi
  done
  rm -f "$STATE/sysctl.orig" "$STATE"/*.orig
}
