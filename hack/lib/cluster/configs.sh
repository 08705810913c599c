# shellcheck shell=bash
# containerd, CNI and kubelet configuration under $ETC.

write_configs() {
  mkdir -p "$ETC/cni/net.d" "$R"
  # This VM may withhold CAP_SYS_RESOURCE from root: runc then cannot lower oom_score_adj and fails with
  # "can't get final child's PID from pipe: EOF". restrict_oom_score_adj clamps to containerd's own.
  local capeff restrict_oom=true
  capeff=$(awk '/^CapEff/{print $2}' /proc/self/status)
  if (( (0x$capeff >> 24) & 1 )); then restrict_oom=false; fi

  # ---- containerd v2: patched `containerd config default` (version 3 format) ----
  "$BIN/containerd" config default | sed \
    -e "s|^root = .*|root = '$R/containerd/root'|" \
    -e "s|^state = .*|state = '$R/containerd/state'|" \
    -e "s|^\(\s*\)sandbox = .*|\1sandbox = '$PAUSE_IMAGE'|" \
    -e "s|^\(\s*\)restrict_oom_score_adj = .*|\1restrict_oom_score_adj = $restrict_oom|" \
    -e "s|^\(\s*\)enable_cdi = .*|\1enable_cdi = false|" \
    -e "s|^\(\s*\)BinaryName = .*|\1BinaryName = '$(command -v runc)'|" \
    -e "s|^\(\s*\)Root = .*|\1Root = '$R/runc'|" \
    -e "s|^\(\s*\)bin_dirs = .*|\1bin_dirs = ['/usr/lib/cni']|" \
    -e "s|^\(\s*\)conf_dir = '/etc/cni/net.d'|\1conf_dir = '$ETC/cni/net.d'|" \
    -e "s|'/run/containerd/containerd.sock'|'$CTRD_SOCK'|" \
    -e "s|'/run/containerd/containerd.sock.ttrpc'|'$CTRD_SOCK.ttrpc'|" \
    -e "/^\s*\[plugins.'io.containerd.nri.v1.nri'\]/,/^\s*disable = /s|disable = false|disable = true|" \
    >"$ETC/containerd.toml"
  grep -q "disable = true" "$ETC/containerd.toml" || die "could not disable NRI in containerd config"

  # ---- CNI: a bridge whose gateway (the host side, $GATEWAY_IP) serves the apiserver and the Service
  # VIPs. Pods get routes for the bridge subnet and the Service range only: no default route, no
  # masquerade, no portmap: nothing leaves this machine. ----
  cat >"$ETC/cni/net.d/10-stow.conflist" <<EOT
{
  "cniVersion": "0.4.0",
  "name": "stow",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": false,
      "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$R/cni-ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    },
    { "type": "loopback" }
  ]
}
EOT

  # ---- kubelet ----
  local dns=""
  [ "${STOW_CLUSTER_DNS:-1}" = 1 ] && dns="clusterDNS: [$GATEWAY_IP]"
  cat >"$ETC/kubelet.yaml" <<EOT
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GATEWAY_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
containerRuntimeEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: $R/pod-logs
clusterDomain: cluster.local
$dns
resolvConf: $ETC/resolv.conf
staticPodPath: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 60
registerNode: true
nodeStatusReportFrequency: 10s
makeIPTablesUtilChains: false   # do not create KUBE-FIREWALL etc. in the host iptables
EOT
  # pods never see the host's resolvers (no route to them anyway)
  printf 'nameserver %s\n' "$GATEWAY_IP" >"$ETC/resolv.conf"
}
