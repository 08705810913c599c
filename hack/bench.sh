#!/usr/bin/env bash
# hack/bench.sh: Stow's benchmarks (`make bench`; not part of `make test`).
#
# Usage: hack/bench.sh [datapath|controlplane|all]      (default: all)
#   datapath      stow (a session Job's data steps, and the CLI) vs bare restic 0.19.1 on generated
#                 fixed-seed sets, restic tuning variants, cat as the read limit (bench/datapath)
#   controlplane  session overhead (also against bare restic on the same data), repository growth
#                 and scale against a cluster with Stow deployed ($KUBECONFIG); runs only with
#                 BENCH_CLUSTER=1 (it creates and deletes many objects)
#   all           datapath, then controlplane when BENCH_CLUSTER=1
# Results: bench/results.json (raw) and bench/results.md; each part replaces only its own section.
#
# Environment:
#   BENCH_SCALE=full|small   full (default) = the issue's sets (50k files / 2 GiB, one 2 GiB file,
#                            500k tiny files; ~10 GiB free disk; 53 min measured on 2 cores)
#                            small = a few MB, under a minute: checks the harness, labelled a smoke run
#   BENCH_RUNS=3             runs per measurement (medians and min-max are over these)
#   BENCH_DROP_CACHES=1      cold reads drop the page cache of the WHOLE machine (root only; skipped
#                            with a note otherwise): set 0 while others run timing-sensitive work
#   BENCH_SETS, BENCH_TUNE, BENCH_TUNE_SETS, BENCH_LABEL: see bench/datapath/main.go
#   BENCH_DIR=_output/bench  work directory (data sets are cached there between runs)
#   BENCH_NICE=1             run at nice 19 / idle IO class (for a shared machine; numbers get noisier)
#   BENCH_CLUSTER=1          allow the control-plane part against $KUBECONFIG's cluster (Stow deployed);
#                            see bench/controlplane/main.go for its knobs
#   BENCH_CLUSTER=local      the same on the local cluster: brought up (hack/local-cluster.sh; first
#                            run builds it, ~11 min), Stow built and deployed from deploy/; left running
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
PART=${1:-all}
export BENCH_DIR=${BENCH_DIR:-$ROOT/_output/bench}
export BENCH_SCALE=${BENCH_SCALE:-full}
export BENCH_OUT=${BENCH_OUT:-$ROOT/bench/results.json}
export BENCH_STOW_VERSION=${BENCH_STOW_VERSION:-$(git describe --always --dirty --tags 2>/dev/null || echo unknown)}

log() { echo "bench.sh: $*" >&2; }

case $PART in
  datapath|controlplane|all) ;;
  *) echo "usage: hack/bench.sh [datapath|controlplane|all]" >&2; exit 2 ;;
esac

mkdir -p "$BENCH_DIR/bin"
PREFIX=()
if [[ ${BENCH_NICE:-0} == 1 ]]; then
  PREFIX=(nice -n 19 ionice -c 3)
fi

if [[ $PART == datapath || $PART == all ]]; then
  if [[ $BENCH_SCALE == full ]]; then
    free_kib=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
    if (( free_kib < 10 * 1024 * 1024 )); then
      log "need ~10 GiB free under $BENCH_DIR for the full sets, have $((free_kib / 1024)) MiB"
      exit 1
    fi
  fi
  bash hack/tools.sh >&2   # restic v0.19.1 (a no-op when already built)
  export STOW_RESTIC=${STOW_RESTIC:-${STOW_TOOLS_BIN:-$HOME/.cache/stow/bin}/restic}
  log "building stow and the harness"
  CGO_ENABLED=0 "$GO" build -trimpath -o "$BENCH_DIR/bin/stow" ./cmd/stow
  # The Job steps run the restic next to stow (as in the image), never $STOW_RESTIC.
  ln -sf "$STOW_RESTIC" "$BENCH_DIR/bin/restic"
  "$GO" build -o "$BENCH_DIR/bin/datapath" ./bench/datapath
  export STOW_BIN=$BENCH_DIR/bin/stow
  log "data path at scale $BENCH_SCALE, ${BENCH_RUNS:-3} run(s)"
  "${PREFIX[@]}" "$BENCH_DIR/bin/datapath"
fi

if [[ $PART == controlplane || $PART == all ]]; then
  case ${BENCH_CLUSTER:-0} in
    1|local)
      if [[ $BENCH_CLUSTER == local ]]; then
        # shellcheck source=hack/lib/deploy.sh
        . "$ROOT/hack/lib/deploy.sh"
        cluster_up
        build_images
        import_images
        deploy_stow "$ROOT/deploy"
      fi
      bash hack/tools.sh restic >&2   # bare restic for the overhead and growth parts
      export STOW_RESTIC=${STOW_RESTIC:-${STOW_TOOLS_BIN:-$HOME/.cache/stow/bin}/restic}
      "$GO" build -o "$BENCH_DIR/bin/controlplane" ./bench/controlplane
      BENCH_CLUSTER=1 "$BENCH_DIR/bin/controlplane"
      ;;
    *)
      log "control plane skipped: set BENCH_CLUSTER=local (local cluster) or 1 (KUBECONFIG's cluster, Stow deployed) to run it"
      [[ $PART == all ]] || exit 1
      ;;
  esac
fi
log "report: ${BENCH_OUT%.json}.md"
