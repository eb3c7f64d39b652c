#!/usr/bin/env bash
# Runs kernel_vs_go.sh in the vm tier's kernel (tests/vm/vm-run.sh): Debian's cloud
# kernel, which has the WireGuard module, under QEMU (TCG).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash tests/vm/vm-run.sh --timeout 600 --mem 2048 --bin /usr/bin/wg --bin /usr/bin/iperf3 --bin /usr/bin/awk \
  --bin /usr/bin/seq --bin /usr/bin/bash --bin "$PWD/bench/wireguard/kernel_vs_go.sh" \
  -- "bash $PWD/bench/wireguard/kernel_vs_go.sh"
