#!/usr/bin/env bash
# The one place Stow's build version comes from: $VERSION, or "dev".
#   hack/version.sh            prints the version
#   hack/version.sh --ldflags  prints the -X flag that stamps it into a binary
# Every build of cmd/stow-operator, cmd/stow and cmd/kubectl-stow
# (Makefile, hack/build-image.sh) passes the --ldflags output, so
# `--version`, the start-up log line and the app.kubernetes.io/version label
# of Job pods agree. `make release VERSION=v0.3.0` sets it.
set -euo pipefail
VERSION=${VERSION:-dev}
# A version is also an image tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
if ! [[ $VERSION =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "hack/version.sh: VERSION '$VERSION' is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)" >&2
  exit 2
fi
case ${1:-} in
  "") echo "$VERSION" ;;
  --ldflags) echo "-X github.com/stowhq/stow/pkg/version.Version=$VERSION" ;;
  *) echo "usage: $0 [--ldflags]" >&2; exit 2 ;;
esac
