#!/usr/bin/env bash
# Renders the chart with its defaults into deploy/manifests/weft.yaml (what
# `kubectl apply -f deploy/manifests/` installs). tests/deploy/helm_test.sh fails when
# the two drift apart: run this after changing the chart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-helm.sh
{
  echo "# Rendered from deploy/helm/weft with its default values by scripts/render-manifests.sh."
  echo "# Do not edit: change the chart and render again (a test fails on drift)."
  .tools/helm template weft deploy/helm/weft --namespace kube-system --kube-version 1.29.0
} > deploy/manifests/weft.yaml
echo "deploy/manifests/weft.yaml: $(grep -c '^kind:' deploy/manifests/weft.yaml) objects"
