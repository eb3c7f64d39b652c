#!/usr/bin/env bash
# TCP throughput through the kernel's WireGuard and through wireguard-go, same kernel,
# same run: two namespaces joined by a veth, a WireGuard tunnel between them, iperf3 over
# the tunnel, once per backend (alternating, ROUNDS times). Prints each figure and the
# kernel/wireguard-go ratio.
#
# Needs a kernel with the WireGuard module; on this workplace that is the vm tier's:
#   bash bench/wireguard/run.sh          (boots the VM and runs this inside)
# Under QEMU's software emulation (TCG) absolute figures are far below real hardware's;
# the ratio is what the bench is for.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}

A=wgbench-a B=wgbench-b
cleanup() {
  pkill -f '[w]ireguard-go wggo' 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add $A
ip netns add $B
ip link add veth-a netns $A type veth peer name veth-b netns $B
ip -n $A addr add 10.0.0.1/24 dev veth-a && ip -n $A link set veth-a up && ip -n $A link set lo up
ip -n $B addr add 10.0.0.2/24 dev veth-b && ip -n $B link set veth-b up && ip -n $B link set lo up
ka=$(wg genkey) kb=$(wg genkey)
pa=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)

# A tunnel 10.9.<n>.1 <-> 10.9.<n>.2 between the namespaces: `kind` kernel (a
# "wireguard" link) or go (wireguard-go; its UAPI sockets share one directory, so each
# side's device has a name of its own).
make_pair() {
  local kind=$1 n=$2
  for side in a b; do
    local ns=$A key=$ka peer=$pb ip=10.9.$n.1 other=10.0.0.2 dev=wg$kind$side
    [ $side = b ] && ns=$B key=$kb peer=$pa ip=10.9.$n.2 other=10.0.0.1
    if [ "$kind" = kernel ]; then
      ip -n $ns link add $dev type wireguard
    else
      ip netns exec $ns env WG_PROCESS_FOREGROUND=1 wireguard-go $dev >/dev/null 2>&1 &
      for _ in $(seq 100); do [ -S /var/run/wireguard/$dev.sock ] && break; sleep 0.1; done
    fi
    printf '%s' "$key" > /tmp/wgbench.key
    ip netns exec $ns wg set $dev private-key /tmp/wgbench.key listen-port $((51900 + n)) \
      peer "$peer" endpoint $other:$((51900 + n)) allowed-ips 10.9.$n.0/24
    ip -n $ns addr add $ip/24 dev $dev
    ip -n $ns link set $dev up
  done
}
make_pair kernel 1
make_pair go 2
rm -f /tmp/wgbench.key

run() {  # Mbit/s over tunnel n
  local n=$1
  ip netns exec $B iperf3 -s -1 -D >/dev/null 2>&1
  sleep 0.3
  ip netns exec $A ping -c1 -W5 10.9.$n.2 >/dev/null
  ip netns exec $A iperf3 -c 10.9.$n.2 -t "$SECONDS_PER_RUN" -J 2>/dev/null |
    awk -F: '/"bits_per_second"/ {v=$2} END {gsub(/[ ,]/, "", v); printf "%.1f\n", v / 1e6}'
}
kernel_total=0 go_total=0
for r in $(seq "$ROUNDS"); do
  k=$(run 1); g=$(run 2)
  echo "round $r: kernel WireGuard $k Mbit/s, wireguard-go $g Mbit/s"
  kernel_total=$(awk "BEGIN{print $kernel_total + $k}")
  go_total=$(awk "BEGIN{print $go_total + $g}")
done
awk -v k="$kernel_total" -v g="$go_total" -v r="$ROUNDS" 'BEGIN {
  printf "mean over %d rounds: kernel %.1f Mbit/s, wireguard-go %.1f Mbit/s, ratio kernel/wireguard-go %.2f\n",
         r, k / r, g / r, (g > 0 ? k / g : 0) }'
