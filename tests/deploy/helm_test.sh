#!/usr/bin/env bash
# The chart: helm lint and helm template with default and non-default values, every
# rendered object checked (chart_test.py, with a WeftNode the controller would write),
# and deploy/manifests/weft.yaml identical to the default rendering.
# usage: helm_test.sh WEFTNODE_SAMPLE_BINARY
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install-helm.sh
HELM=.tools/helm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1" > "$tmp/weftnode.json"
chart=deploy/helm/weft
for values in "" tests/deploy/values-custom.yaml tests/deploy/values-norelay.yaml; do
  args=(--namespace kube-system --kube-version 1.29.0)
  [ -n "$values" ] && args+=(--values "$values")
  "$HELM" lint --strict "$chart" ${values:+--values "$values"}
  "$HELM" template weft "$chart" "${args[@]}" > "$tmp/rendered.yaml"
  python3 tests/deploy/chart_test.py "$tmp/rendered.yaml" "$tmp/weftnode.json"
done
# Drift: the committed manifests are the default rendering.
"$HELM" template weft "$chart" --namespace kube-system --kube-version 1.29.0 > "$tmp/default.yaml"
if ! diff -u <(grep -v '^# ' deploy/manifests/weft.yaml) <(grep -v '^# ' "$tmp/default.yaml") > "$tmp/drift.diff"; then
  head -40 "$tmp/drift.diff"
  echo "deploy/manifests/weft.yaml differs from the chart: run scripts/render-manifests.sh"
  exit 1
fi
echo "chart: lint, template (default and custom values), manifests in sync"
