# shellcheck shell=bash
# Start the control plane, containerd, kubelet, kube-proxy and the two host helpers (DNS, PV
# provisioner) as background processes with pid files under $PIDS.

start_proc() { # NAME CMD...
  local n=$1; shift
  mkdir -p "$LOGS" "$PIDS"
  # setsid: own session, so the caller's process group (a CI step, a terminal) can end without killing it.
  # Inherited descriptors above 2 are closed: `flock /tmp/stow-cluster.lock hack/e2e.sh` holds the lock on
  # fd 3, and a daemon that inherited it would hold the lock for as long as the cluster runs.
  setsid "$@" >"$LOGS/$n.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  echo $! >"$PIDS/$n.pid"
  log "started $n (pid $!, log $LOGS/$n.log)"
}

start_failed() { # NAME: a wait timed out: show the component's log tail and fail
  tail -20 "$LOGS/$1.log" >&2
  if pid_alive "$1"; then die "$1 did not become ready (log: $LOGS/$1.log)"; fi
  die "$1 exited (log: $LOGS/$1.log)"
}

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

kube_proxy_synced() {
  iptables -w -t nat -S KUBE-SERVICES 2>/dev/null | grep "$KUBERNETES_SVC_IP/32" >/dev/null
}

kubernetes_endpoint_ok() {
  kc get endpointslice -n default -l kubernetes.io/service-name=kubernetes \
    -o jsonpath='{.items[*].endpoints[*].addresses[*]}' 2>/dev/null | grep -x "$GATEWAY_IP" >/dev/null
}

start_cluster() {
  mkdir -p "$R/etcd" "$R/pod-logs" "$R/kubelet" "$PVDIR" "$LOGS" "$PIDS"

  # ---- etcd (loopback only) ----
  start_proc etcd "$BIN/etcd" --name stow --data-dir "$R/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster stow=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 2147483648 --snapshot-count 10000 --unsafe-no-fsync --log-level warn
  waitfor etcd 120 curl -sf http://127.0.0.1:2381/health || start_failed etcd

  # ---- kube-apiserver: serves and advertises on the bridge gateway, reachable from the host and pods.
  # The default lease endpoint reconciler publishes $GATEWAY_IP:6443 as the `kubernetes` Service endpoint.
  start_proc kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address="$GATEWAY_IP" --advertise-address="$GATEWAY_IP" --secure-port="$APISERVER_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --profiling=false
  waitfor "apiserver /readyz" 480 kc get --raw /readyz || start_failed kube-apiserver

  # ---- controller-manager (all default controllers: cronjob, job, PV binder, ...) + scheduler ----
  start_proc kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$PKI/controller-manager.kubeconfig" --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" --root-ca-file="$PKI/ca.crt" \
    --service-account-private-key-file="$PKI/sa.key" --use-service-account-credentials=true \
    --service-cluster-ip-range="$SERVICE_CIDR" --controllers='*' --pvclaimbinder-sync-period=2s
  start_proc kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$PKI/scheduler.kubeconfig" --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig="$PKI/scheduler.kubeconfig" --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false

  # ---- containerd + local images ----
  start_proc containerd "$BIN/containerd" --config "$ETC/containerd.toml"
  waitfor containerd 120 ctr_k8s version || start_failed containerd
  local t
  for t in "$IMG/pause.tar" "$IMG/probe.tar"; do
    ctr_k8s images import --no-unpack=false "$t" >>"$LOGS/image-import.log" 2>&1 || die "import of $t failed"
  done
  log "imported $PAUSE_IMAGE and $PROBE_IMAGE"

  # ---- kubelet (node IP = bridge gateway) ----
  start_proc kubelet "$BIN/kubelet" --config="$ETC/kubelet.yaml" --kubeconfig="$PKI/kubelet-client.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$GATEWAY_IP" --root-dir="$R/kubelet" --v="${KUBELET_V:-1}"

  # ---- kube-proxy (iptables mode). Leaves conntrack sysctls and route_localnet alone; NodePorts only
  # on the bridge address. ----
  start_proc kube-proxy "$BIN/kube-proxy" --kubeconfig="$PKI/kube-proxy.kubeconfig" \
    --hostname-override="$NODE_NAME" --proxy-mode=iptables --cluster-cidr="$POD_CIDR" \
    --nodeport-addresses="$GATEWAY_IP/32" --iptables-localhost-nodeports=false \
    --conntrack-max-per-core=0 --conntrack-min=0 --conntrack-tcp-timeout-established=0 \
    --conntrack-udp-timeout=0 --conntrack-udp-timeout-stream=0 --oom-score-adj=0 \
    --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249 --v=1

  # ---- host helpers ----
  if [ "${STOW_CLUSTER_DNS:-1}" = 1 ]; then
    start_proc dns "$IMG/dns" -listen "$GATEWAY_IP:53" -apiserver "https://$GATEWAY_IP:$APISERVER_PORT" \
      -ca "$PKI/ca.crt" -cert "$PKI/dns.crt" -key "$PKI/dns.key" -domain cluster.local
  fi
  start_proc provisioner bash "$HACK_DIR/lib/cluster/provisioner.sh"

  waitfor "kubelet healthz" 240 curl -sf http://127.0.0.1:10248/healthz || start_failed kubelet
  waitfor "node $NODE_NAME Ready" 480 node_ready || start_failed kubelet
  waitfor "kube-proxy programmed Service VIPs" 240 kube_proxy_synced || start_failed kube-proxy
  host_guard_first   # kube-proxy inserted its FORWARD jumps above ours
  waitfor "kubernetes Service endpoint = $GATEWAY_IP" 120 kubernetes_endpoint_ok || start_failed kube-apiserver
  waitfor "default ServiceAccount" 240 kc -n default get serviceaccount default || start_failed kube-controller-manager
  apply_base_manifests
}

apply_base_manifests() {
  kc apply -f - >/dev/null <<EOT
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: stow.dev/local-hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-wffc}
provisioner: stow.dev/local-hostpath
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: manual}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: stow-local-dns}
rules:
- {apiGroups: [""], resources: [services], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: stow-local-dns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: stow-local-dns}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: stow-local-dns}]
EOT
  log "StorageClasses: standard (default, hostPath dirs under $PVDIR provisioned on demand, on the first node), local-wffc (the same on the node of the first pod), manual (static, see 'pv')"
}
