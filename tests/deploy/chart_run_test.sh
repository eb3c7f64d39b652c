#!/usr/bin/env bash
# The chart's exact command lines, run: render the chart with the default and the custom
# value sets and start every container's binary as its pod would (chart_run_test.py).
# usage: chart_run_test.sh WEFT_AGENT WEFT_CONTROLLER WEFT_RELAY WEFT_CNI WEFTCTL   (root: namespaces)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then echo "chart_run_test needs root"; exit 77; fi
bash scripts/install-helm.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
cp "$@" "$tmp/bin/"
for values in "" tests/deploy/values-custom.yaml tests/deploy/values-norelay.yaml; do
  args=(--namespace kube-system --kube-version 1.29.0)
  [ -n "$values" ] && args+=(--values "$values")
  echo "== values: ${values:-defaults}"
  .tools/helm template weft deploy/helm/weft "${args[@]}" > "$tmp/rendered.yaml"
  python3 tests/deploy/chart_run_test.py "$tmp/rendered.yaml" "$tmp/bin"
done
