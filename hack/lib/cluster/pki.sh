# shellcheck shell=bash
# CA, component certificates, service-account key pair and kubeconfigs (openssl). Idempotent: kept
# while the node name and addresses stay the same.

pki_cert() { # NAME CN O SAN EKU
  local n=$1 cn=$2 o=$3 san=$4 eku=$5 subj
  subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  openssl genrsa -out "$n.key" 2048 2>/dev/null
  openssl req -new -key "$n.key" -subj "$subj" -out "$n.csr"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$n.ext"
  openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "$n.ext" -out "$n.crt" 2>/dev/null
  rm -f "$n.csr" "$n.ext"
}

write_kubeconfig() { # FILE CERTNAME
  local f=$1 user=$2
  cat >"$f" <<EOT
apiVersion: v1
kind: Config
clusters:
- name: stow-local
  cluster:
    server: https://$GATEWAY_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$user.crt")
    client-key-data: $(base64 -w0 <"$PKI/$user.key")
contexts:
- name: stow-local
  context: {cluster: stow-local, user: $user}
current-context: stow-local
EOT
  chmod 600 "$f"
}

gen_pki() {
  local stamp=.pki-$NODE_NAME-$GATEWAY_IP-$KUBERNETES_SVC_IP
  mkdir -p "$PKI"
  if [ ! -f "$PKI/$stamp" ]; then
    log "generating PKI in $PKI"
    (
      cd "$PKI" || exit 1
      rm -f ./*.crt ./*.key ./*.srl ./*.pub .pki-*
      openssl genrsa -out ca.key 2048 2>/dev/null
      openssl req -x509 -new -nodes -key ca.key -sha256 -days 3650 -subj "/CN=stow-local-ca" -out ca.crt
      local d=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
      pki_cert apiserver kube-apiserver "" \
        "$d,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$GATEWAY_IP,IP:$KUBERNETES_SVC_IP" serverAuth
      pki_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" clientAuth
      pki_cert admin kubernetes-admin system:masters "" clientAuth
      pki_cert controller-manager system:kube-controller-manager "" "" clientAuth
      pki_cert scheduler system:kube-scheduler "" "" clientAuth
      pki_cert kube-proxy system:kube-proxy "" "" clientAuth
      pki_cert kubelet-client "system:node:$NODE_NAME" system:nodes "" clientAuth
      pki_cert kubelet-server "$NODE_NAME" "" "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$GATEWAY_IP" serverAuth
      pki_cert dns stow-local-dns "" "" clientAuth
      openssl genrsa -out sa.key 2048 2>/dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
      chmod 600 ./*.key
      touch "$stamp"
    )
  fi
  local n
  for n in controller-manager scheduler kube-proxy kubelet-client; do write_kubeconfig "$PKI/$n.kubeconfig" "$n"; done
  write_kubeconfig "$KUBECONFIG_FILE" admin
}
