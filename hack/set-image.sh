#!/usr/bin/env bash
# hack/set-image.sh NAME TAG: the image (and version label) deploy/ installs,
# written into deploy/kustomization.yaml's images: and labels: (the one
# place); `make generate` carries it into the Helm chart.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:?usage: $0 NAME TAG} tag=${2:?usage: $0 NAME TAG}
k=$ROOT/deploy/kustomization.yaml
# The image's name in the manifests stays docker.io/stowhq/stow; newName
# (added when missing) and newTag say what is installed instead.
awk -v name="$name" -v tag="$tag" '
  /^- name: docker.io\/stowhq\/stow$/ { print; inimg = 1; next }
  inimg && /^  newName:/ { next }
  inimg && /^  newTag:/ { if (name != "docker.io/stowhq/stow") print "  newName: " name; print "  newTag: " tag; inimg = 0; next }
  /^- pairs: \{app.kubernetes.io\/version: / { print "- pairs: {app.kubernetes.io/version: " tag "}"; next }
  { print }
' "$k" > "$k.new"
mv "$k.new" "$k"
