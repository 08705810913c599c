#!/usr/bin/env bash
# Fails when generated code (deepcopy, client/, deploy/crds, deploy/builtin,
# deploy/admission-policy.yaml, deploy/helm) is stale: it
# regenerates into the work tree and asks git whether anything changed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash hack/update-codegen.sh >/dev/null
if ! git diff --quiet --exit-code -- client apis deploy/crds deploy/builtin deploy/admission-policy.yaml deploy/helm || [ -n "$(git status --porcelain --untracked-files=all -- client apis deploy/crds deploy/builtin deploy/admission-policy.yaml deploy/helm)" ]; then
  echo "generated files are stale; run 'make generate' and commit the result:" >&2
  git status --porcelain -- client apis deploy/crds deploy/builtin deploy/admission-policy.yaml deploy/helm >&2
  exit 1
fi
echo "generated files are up to date"
