#!/usr/bin/env bash
# Builds the pinned external tools the tests and the Job image need, from the
# Go module proxy, into $STOW_TOOLS_BIN (default $HOME/.cache/stow/bin):
#   restic  v0.19.1 plus Stow's `stow-locks` command (hack/restic/README.md)
#   minio   pinned pseudo-ver. (S3 server for the integration tests)
#   helm    v3.22.0 (lints and renders the Helm chart in its test; not in
#           "all", which hack/e2e.sh runs: `hack/tools.sh helm`, make tools)
# A tool is rebuilt only when the binary there is missing or was built from a
# different module version (read back with `go version -m`; for restic, a stamp
# of the version and the added files), so a warm cache costs nothing. MinIO
# takes ~2.5 minutes cold on 2 cores, restic ~1 minute.
set -euo pipefail

RESTIC_MODULE=github.com/restic/restic
RESTIC_VERSION=v0.19.1
MINIO_MODULE=github.com/minio/minio
MINIO_PKG=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# helm: lints and renders the chart deploy/helm/stow in its test (hack/gen-helm).
HELM_MODULE=helm.sh/helm/v3
HELM_PKG=helm.sh/helm/v3/cmd/helm
HELM_VERSION=v3.22.0

BIN_DIR=${STOW_TOOLS_BIN:-$HOME/.cache/stow/bin}
GO=${GO:-go}

log() { echo "tools.sh: $*" >&2; }

# built_version BINARY MODULE -> prints the module version the binary was built
# from, or nothing when the binary is missing or not a Go binary.
built_version() {
  local bin=$1 module=$2
  [[ -x $bin ]] || return 0
  "$GO" version -m "$bin" 2>/dev/null |
    awk -v m="$module" '($1 == "mod" || $1 == "path") && $2 == m && NF >= 3 { print $3; exit }'
}

# ensure NAME PKG MODULE VERSION
ensure() {
  local name=$1 pkg=$2 module=$3 version=$4
  local bin=$BIN_DIR/$name have
  have=$(built_version "$bin" "$module")
  if [[ $have == "$version" ]]; then
    log "$name $version already in $bin (skip)"
    return 0
  fi
  if [[ -n $have ]]; then
    log "$name in $bin is $have, want $version: rebuilding"
  fi
  log "building $name: GOBIN=$BIN_DIR go install $pkg@$version"
  local start=$SECONDS
  # CGO off: static binaries that also run in a distroless Job image.
  # -trimpath keeps the build reproducible; GOFLAGS from the caller would
  # apply to the foreign module, so clear them.
  GOFLAGS= CGO_ENABLED=0 GOBIN=$BIN_DIR "$GO" install -trimpath "$pkg@$version"
  have=$(built_version "$bin" "$module")
  if [[ $have != "$version" ]]; then
    log "built $bin but it reports version '${have:-none}', want $version"
    return 1
  fi
  log "$name $version built in $((SECONDS - start))s -> $bin"
}

# ensure_restic [OS/ARCH]: restic $RESTIC_VERSION with the files of
# hack/restic/_overlay added (the module source is copied, since the Go tool
# refuses overlays of files in the module cache). $BIN_DIR/restic.stamp
# records what was built. With OS/ARCH other than the host's (the
# multi-platform image of hack/build-image.sh), it cross-compiles into
# $BIN_DIR/OS-ARCH/restic.
RESTIC_OVERLAY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/restic/_overlay
ensure_restic() {
  local platform=${1:-} bin=$BIN_DIR/restic stamp goos goarch native=1
  goos=$("$GO" env GOOS) goarch=$("$GO" env GOARCH)
  if [[ -n $platform && $platform != "$goos/$goarch" ]]; then
    goos=${platform%/*} goarch=${platform#*/} native=0
    bin=$BIN_DIR/$goos-$goarch/restic
    mkdir -p "$(dirname "$bin")"
  fi
  stamp="$RESTIC_VERSION $(cat "$RESTIC_OVERLAY"/*.go | sha256sum | cut -c1-16)"
  if [[ $native == 0 ]]; then stamp="$stamp $goos/$goarch"; fi
  # The stamp alone is not trusted: a cached binary must also answer
  # `stow-locks --help`, or it is rebuilt (a cache restored from elsewhere
  # once held a plain restic under a matching stamp). A foreign binary
  # cannot run here; `go version -m` must then name its platform.
  if [[ -x $bin && -f $bin.stamp && $(cat "$bin.stamp") == "$stamp" ]]; then
    if [[ $native == 1 ]] && "$bin" stow-locks --help >/dev/null 2>&1 && "$bin" stow-wipe --help >/dev/null 2>&1; then
      log "restic $RESTIC_VERSION (+stow-locks) already in $bin (skip)"
      return 0
    fi
    if [[ $native == 0 ]] && "$GO" version -m "$bin" 2>/dev/null | grep "GOARCH=$goarch\b" >/dev/null; then
      log "restic $RESTIC_VERSION (+stow-locks) for $goos/$goarch already in $bin (skip)"
      return 0
    fi
  fi
  log "building restic $RESTIC_VERSION for $goos/$goarch with Stow's stow-locks command"
  local start=$SECONDS src work
  src=$(GOFLAGS= "$GO" mod download -json "$RESTIC_MODULE@$RESTIC_VERSION" | awk -F'"' '$2 == "Dir" { print $4 }')
  [[ -d $src ]] || { log "cannot download $RESTIC_MODULE@$RESTIC_VERSION"; return 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp -r "$src" "$work/restic"
  chmod -R u+w "$work/restic"
  cp "$RESTIC_OVERLAY/cmd_stow_locks.go" "$work/restic/cmd/restic/cmd_stow_locks.go"
  cp "$RESTIC_OVERLAY/repository_stow_locks.go" "$work/restic/internal/repository/stow_locks.go"
  cp "$RESTIC_OVERLAY/cmd_stow_wipe.go" "$work/restic/cmd/restic/cmd_stow_wipe.go"
  cp "$RESTIC_OVERLAY/repository_stow_wipe.go" "$work/restic/internal/repository/stow_wipe.go"
  local main=$work/restic/cmd/restic/main.go
  sed -i 's/^\t\tnewUnlockCommand(globalOptions),$/&\n\t\tnewStowLocksCommand(globalOptions),\n\t\tnewStowWipeCommand(globalOptions),/' "$main"
  if [[ $(grep -c 'newStowLocksCommand(globalOptions)' "$main") != 1 || $(grep -c 'newStowWipeCommand(globalOptions)' "$main") != 1 ]]; then
    log "cannot register stow-locks and stow-wipe in restic's cmd/restic/main.go (did its command list change?)"
    return 1
  fi
  # CGO off: a static binary that also runs in a distroless Job image.
  (cd "$work/restic" && GOFLAGS= CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch "$GO" build -trimpath -o "$bin.new" ./cmd/restic)
  if [[ $native == 1 ]]; then "$bin.new" stow-locks --help >/dev/null && "$bin.new" stow-wipe --help >/dev/null; fi
  mv "$bin.new" "$bin"
  echo "$stamp" > "$bin.stamp"
  log "restic built in $((SECONDS - start))s -> $bin"
}

mkdir -p "$BIN_DIR"
only=${1:-all}
case $only in
  all) ensure_restic
       ensure minio "$MINIO_PKG" "$MINIO_MODULE" "$MINIO_VERSION" ;;
  restic) ensure_restic ;;
  minio) ensure minio "$MINIO_PKG" "$MINIO_MODULE" "$MINIO_VERSION" ;;
  helm) ensure helm "$HELM_PKG" "$HELM_MODULE" "$HELM_VERSION" ;;
  --print)  # --print NAME [OS/ARCH]: ensure the tool, then print its path (for scripts)
       case ${2:-} in
         restic) ensure_restic "${3:-}"
                 if [[ -n ${3:-} && ${3:-} != "$("$GO" env GOOS)/$("$GO" env GOARCH)" ]]; then
                   echo "$BIN_DIR/${3%/*}-${3#*/}/restic"
                 else
                   echo "$BIN_DIR/restic"
                 fi ;;
         minio) ensure minio "$MINIO_PKG" "$MINIO_MODULE" "$MINIO_VERSION"
                echo "$BIN_DIR/minio" ;;
         helm) ensure helm "$HELM_PKG" "$HELM_MODULE" "$HELM_VERSION"
               echo "$BIN_DIR/helm" ;;
         *) log "usage: $0 --print restic [OS/ARCH] | --print minio|helm"; exit 2 ;;
       esac ;;
  *) log "usage: $0 [all|restic|minio|helm|--print restic [OS/ARCH]|--print minio|helm]"; exit 2 ;;
esac
