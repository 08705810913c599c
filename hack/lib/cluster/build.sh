# shellcheck shell=bash
# Build (or reuse from the cache) every binary and image tarball the local cluster needs.
# Sourced by hack/local-cluster.sh after common.sh.

HACK_DIR=${HACK_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# Debian packages: runc, CNI plugins, iptables (kube-proxy), conntrack, nftables, openssl, iproute2.
ensure_host_deps() {
  local need=()
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null && command -v iptables-restore >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v nft >/dev/null || need+=(nftables)   # `down` deletes the empty nft tables kube-proxy created
  command -v openssl >/dev/null || need+=(openssl)
  command -v ip >/dev/null || need+=(iproute2)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >"$STOW_CACHE/apt.log" 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update >>"$STOW_CACHE/apt.log" 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >>"$STOW_CACHE/apt.log" 2>&1 \
        || die "apt-get install failed, see $STOW_CACHE/apt.log"
    fi
  fi
  command -v go >/dev/null || die "go is not installed"
}

# go_build_progress LOGNAME DESC go build args...: runs go build -v in the module in $PWD, printing a
# progress line every 30s (number of packages compiled so far) so a cold ~10 min build is not silent.
go_build_progress() {
  local name=$1 desc=$2; shift 2
  local lf=$STOW_CACHE/logs/build-$name.log start rc=0 bp
  mkdir -p "$STOW_CACHE/logs"
  start=$(date +%s)
  log "building $desc (log: $lf)"
  CGO_ENABLED=0 go build -v "$@" >"$lf" 2>&1 &
  bp=$!
  while kill -0 "$bp" 2>/dev/null; do
    for _ in $(seq 1 30); do kill -0 "$bp" 2>/dev/null || break; sleep 1; done
    kill -0 "$bp" 2>/dev/null && log "  ... still building $desc: $(grep -c . "$lf" || true) packages compiled, $(( $(date +%s) - start ))s"
  done
  wait "$bp" || rc=$?
  if [ "$rc" != 0 ]; then tail -30 "$lf" >&2; die "build of $desc failed"; fi
  log "built $desc in $(( $(date +%s) - start ))s"
}

k8s_ldflags() {
  local v=$K8S_VERSION min ld="-s -w" p d
  min=$(echo "$v" | cut -d. -f2)
  d=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$min -X $p.gitTreeState=clean"
    ld="$ld -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=$d"
  done
  echo "$ld"
}

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# A throwaway module requiring k8s.io/kubernetes, with every staging repo k8s.io/<x> replaced by
# k8s.io/<x> v0.<minor>.<patch>. etcd is built from the same module (the server version kubernetes pins),
# so it shares the compiled gRPC/protobuf packages with the apiserver.
build_k8s() {
  local all=1 b
  for b in "${K8S_BINS[@]}" etcd; do [ -x "$BIN/$b" ] || all=0; done
  [ "$all" = 1 ] && [ "${FORCE:-0}" != 1 ] && return 0
  local d=$BUILD/k8s-$K8S_VERSION stg gomod gover staging
  mkdir -p "$d" "$BIN"
  stg=v0.${K8S_VERSION#v1.}
  if [ ! -f "$d/go.sum" ] || [ ! -f "$d/.tidy-ok" ]; then
    log "resolving k8s.io/kubernetes@$K8S_VERSION module graph"
    gomod=$(cd "$d" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
    gover=$(awk '/^go /{print $2; exit}' "$gomod")
    staging=$(grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk '{print $1}')
    {
      printf 'module stowclusterbuild\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$gover" "$K8S_VERSION"
      for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$stg"; done
      printf ')\n'
    } >"$d/go.mod"
    cat >"$d/tools.go" <<'EOT'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
EOT
    (cd "$d" && go mod tidy -e >"$STOW_CACHE/logs/tidy-k8s.log" 2>&1) || { tail -20 "$STOW_CACHE/logs/tidy-k8s.log" >&2; die "go mod tidy failed"; }
    touch "$d/.tidy-ok"
  fi
  log "etcd server version (pinned by kubernetes): $(cd "$d" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
  local pkgs=(go.etcd.io/etcd/server/v3)
  for b in "${K8S_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$d" && go_build_progress k8s "etcd + kubernetes $K8S_VERSION (${K8S_BINS[*]})" \
    -trimpath -ldflags "$(k8s_ldflags)" -o "$d/out/" "${pkgs[@]}")
  mv "$d/out/server" "$BIN/etcd"    # go names the binary after the path element before /v3
  for b in "${K8S_BINS[@]}"; do mv "$d/out/$b" "$BIN/$b"; done
}

# containerd v2 (+ shim, ctr), static, no cgo (btrfs/zfs/devmapper snapshotters drop out).
build_containerd() {
  [ -x "$BIN/containerd" ] && [ -x "$BIN/containerd-shim-runc-v2" ] && [ -x "$BIN/ctr" ] && [ "${FORCE:-0}" != 1 ] && return 0
  local d=$BUILD/containerd-$CTRD_VERSION p=github.com/containerd/containerd/v2
  mkdir -p "$d" "$BIN"
  if [ ! -f "$d/.tidy-ok" ]; then
    log "resolving containerd $CTRD_VERSION module graph"
    printf 'module stowctrdbuild\n\ngo 1.24\n' >"$d/go.mod"
    cat >"$d/tools.go" <<'EOT'
//go:build tools

package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
EOT
    (cd "$d" && go get "$p@$CTRD_VERSION" && go mod tidy) >"$STOW_CACHE/logs/tidy-containerd.log" 2>&1 \
      || { tail -20 "$STOW_CACHE/logs/tidy-containerd.log" >&2; die "containerd module resolution failed"; }
    touch "$d/.tidy-ok"
  fi
  (cd "$d" && go_build_progress containerd "containerd $CTRD_VERSION" -trimpath -tags 'no_btrfs no_zfs no_devmapper' \
    -ldflags "-s -w -X $p/version.Version=$CTRD_VERSION -X $p/version.Revision=gomod" \
    -o "$d/out/" "$p/cmd/containerd" "$p/cmd/containerd-shim-runc-v2" "$p/cmd/ctr")
  mv "$d/out/containerd" "$d/out/containerd-shim-runc-v2" "$d/out/ctr" "$BIN/"
}

# Image tarballs from hack/cluster-images (pause sandbox + probe used by `smoke`), packed by
# hack/mkimage, the tool that builds Stow's image. Rebuilt when the sources change (cheap: a few
# seconds with a warm Go cache).
build_images() {
  local src=$HACK_DIR/cluster-images sum
  sum=$(cat "$src"/go.mod "$src"/*/*.go "$HACK_DIR"/mkimage/main.go | sha256sum | cut -c1-16)
  [ -f "$IMG/.src-$sum" ] && [ -f "$IMG/pause.tar" ] && [ -f "$IMG/probe.tar" ] && [ "${FORCE:-0}" != 1 ] && return 0
  mkdir -p "$IMG"
  log "building image tarballs (pause, probe) from $src"
  (
    cd "$src"
    CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$IMG/" ./pause ./probe ./dns
    go build -C "$HACK_DIR/.." -o "$IMG/mkimage" ./hack/mkimage
  ) >"$STOW_CACHE/logs/build-images.log" 2>&1 || { tail -20 "$STOW_CACHE/logs/build-images.log" >&2; die "image build failed"; }
  local b
  for b in pause probe; do
    local ref=$PAUSE_IMAGE
    [ "$b" = probe ] && ref=$PROBE_IMAGE
    "$IMG/mkimage" -ref "$ref" -out "$IMG/$b.tar" -entrypoint "$b" -user "" -ca-bundle "" "$IMG/$b" \
      2>>"$STOW_CACHE/logs/build-images.log" || die "packing $b.tar failed (see $STOW_CACHE/logs/build-images.log)"
  done
  rm -f "$IMG"/.src-*; touch "$IMG/.src-$sum"
}

build_all() {
  mkdir -p "$STOW_CACHE/logs"
  ensure_host_deps
  build_images
  build_containerd
  build_k8s
}
