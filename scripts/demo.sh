#!/usr/bin/env bash
# The demo, in two parts; everything is removed on exit, even on failure.
#  1. Pods: one simulated node (a network namespace) with three pods wired by weft-cni,
#     exactly as a container runtime would call it; they ping each other and the node.
#  2. The NAT lab: nodes behind no NAT, an easy NAT, a hard NAT (random,fully-random
#     masquerade, like EKS SNAT or a NAT gateway), a UDP-blocking firewall, and two
#     nodes behind one router; each runs wireguard-go and probes its WireGuard port's
#     mapping against three coturn STUN servers.
#  3. A Weft cluster in the NAT lab: weft-controller, a weft-agent on every node and a pod
#     per node; every pod pings every other, and each agent says which path it uses and why.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "the demo needs root (network namespaces): sudo $0" >&2; exit 1; }
bash scripts/install-deps.sh
echo "building weft-cni, weft-agent, weft-controller and weft-lab ..."
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target weft-cni weft-lab weft-controller weft-agent >/dev/null
CNI=$(readlink -f build/cni-plugin/weft-cni)

RUN=weftdemo-$$
NODE=$RUN-node
PODS=(web api db)
DATA=$(mktemp -d /tmp/weft-demo.XXXXXX)
CONF=$(cat <<JSON
{"cniVersion":"1.1.0","name":"weft-demo","type":"weft","podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"],"mtu":1420,"dataDir":"$DATA"}
JSON
)
cni() {  # cni COMMAND POD -> runs weft-cni in the node's namespace, as the runtime would
  ip netns exec "$NODE" env CNI_COMMAND="$1" CNI_CONTAINERID="$RUN-$2" CNI_NETNS="/var/run/netns/$RUN-$2" \
    CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$2" "$CNI" <<<"$CONF"
}
cleanup() {
  for p in "${PODS[@]}"; do cni DEL "$p" >/dev/null 2>&1 || true; ip netns del "$RUN-$p" 2>/dev/null || true; done
  ip netns del "$NODE" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

ip netns add "$NODE"
ip -n "$NODE" link set lo up
declare -A V4 V6 HOSTIF RESULT
for p in "${PODS[@]}"; do
  ip netns add "$RUN-$p"
  ip -n "$RUN-$p" link set lo up
  result=$(cni ADD "$p")
  RESULT[$p]=$result
  V4[$p]=$(python3 -c 'import json,sys; r=json.load(sys.stdin); print([i["address"] for i in r["ips"] if ":" not in i["address"]][0].split("/")[0])' <<<"$result")
  V6[$p]=$(python3 -c 'import json,sys; r=json.load(sys.stdin); print([i["address"] for i in r["ips"] if ":" in i["address"]][0].split("/")[0])' <<<"$result")
  HOSTIF[$p]=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["interfaces"][0]["name"])' <<<"$result")
  echo "ADD $p -> ${V4[$p]}, ${V6[$p]} (host side ${HOSTIF[$p]})"
done

echo
echo "== part 1: pods on one node, wired by weft-cni =="
echo "pings (1 each, 2 s timeout):"
ok=0; total=0
ping_from() {  # ping_from NETNS LABEL TARGET [-6]
  total=$((total + 1))
  if ip netns exec "$1" ping ${4:-} -c1 -W2 "$3" >/dev/null 2>&1; then ok=$((ok + 1)); r=ok; else r=FAIL; fi
  printf "  %-22s -> %-22s %s\n" "$2" "$3" "$r"
}
for a in "${PODS[@]}"; do
  ping_from "$RUN-$a" "$a" 169.254.1.1
  for b in "${PODS[@]}"; do
    [ "$a" = "$b" ] && continue
    ping_from "$RUN-$a" "$a" "${V4[$b]}"
    ping_from "$RUN-$a" "$a" "${V6[$b]}" -6
  done
  ping_from "$NODE" node "${V4[$a]}"
done

echo
echo "status (what an admin would read on this node):"
printf "  %-6s %-14s %-22s %-17s %s\n" POD IPV4 IPV6 HOST-IF CHECK
for p in "${PODS[@]}"; do
  prev=${RESULT[$p]}  # CHECK compares the node against the ADD's result
  if ip netns exec "$NODE" env CNI_COMMAND=CHECK CNI_CONTAINERID="$RUN-$p" CNI_NETNS="/var/run/netns/$RUN-$p" \
       CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$CNI" <<<"${CONF%\}},\"prevResult\":$prev}" >/dev/null; then c=ok; else c=FAIL; fi
  printf "  %-6s %-14s %-22s %-17s %s\n" "$p" "${V4[$p]}" "${V6[$p]}" "${HOSTIF[$p]}" "$c"
done
echo
echo "IPAM store ($DATA/networks/weft-demo/state):"
sed 's/^/  /' "$DATA/networks/weft-demo/state"
echo
echo "$ok/$total pings answered"
[ "$ok" -eq "$total" ] || exit 1

echo
echo "== part 2: the NAT lab =="
build/tests/lab/weft-lab netcheck tests/lab/topologies/demo.json

echo
echo "== part 3: a Weft cluster across the NATs =="
build/tests/lab/weft-lab cluster tests/lab/topologies/cluster.json
