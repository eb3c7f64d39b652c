#!/usr/bin/env bash
# A real CNI runtime drives weft-cni: podman (CNI network backend) runs a container on a
# Weft network; the container must have its address and reach its gateway, and removing
# the container must release the address. Needs root. Everything lives in a temp dir.
set -euo pipefail
WEFT_CNI=${1:?usage: podman_cni_test.sh path/to/weft-cni}
command -v podman >/dev/null || { echo "SKIP: podman not installed"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }

T=$(mktemp -d /tmp/weft-podman.XXXXXX)
NAME=weft-podman-$$
pm() { podman --root "$T/storage" --runroot "$T/run" --storage-driver vfs "$@"; }
cleanup() {
  pm rm -af -t 0 >/dev/null 2>&1 || true
  pm rmi -af >/dev/null 2>&1 || true
  # vfs layers may be read-only copies; make them removable first
  chmod -R u+w "$T" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/cni-bin" "$T/net.d" "$T/rootfs/bin" "$T/data"
ln -s "$(readlink -f "$WEFT_CNI")" "$T/cni-bin/weft"
for p in /usr/lib/cni/*; do ln -sf "$p" "$T/cni-bin/"; done
cat > "$T/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["$T/cni-bin"]
network_config_dir = "$T/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
cat > "$T/net.d/$NAME.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "$NAME",
  "plugins": [
    {"type": "weft", "podCIDRs": ["10.88.7.0/24"], "mtu": 1400, "dataDir": "$T/data"},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
export CONTAINERS_CONF="$T/containers.conf"

# An image made here: nothing can be pulled.
cp /bin/busybox "$T/rootfs/bin/busybox"
for a in sh ip ping cat; do ln -s busybox "$T/rootfs/bin/$a"; done
tar -C "$T/rootfs" -c . | pm import - localhost/weft-busybox:test >/dev/null

out=$(pm run --rm --network "$NAME" localhost/weft-busybox:test \
      sh -c 'ip -4 -o addr show dev eth0; ip route; ping -c1 -W2 169.254.1.1 >/dev/null && echo GATEWAY-OK')
echo "$out"
grep -q "inet 10.88.7.2/32" <<<"$out" || { echo "FAIL: container has no Weft address"; exit 1; }
grep -q "default via 169.254.1.1" <<<"$out" || { echo "FAIL: no default route via the Weft gateway"; exit 1; }
grep -q GATEWAY-OK <<<"$out" || { echo "FAIL: container cannot reach its gateway"; exit 1; }
# --rm made podman call DEL: the address is released and no host veth is left.
if grep -q "^alloc" "$T/data/networks/$NAME/state"; then
  echo "FAIL: address still allocated after the container was removed"; cat "$T/data/networks/$NAME/state"; exit 1
fi
# The veth pair is unregistered in the background; wait for it, bounded (3 s).
for _ in $(seq 30); do ip -o link show | grep ": weft[0-9a-f]\{11\}" >/dev/null || break; sleep 0.1; done
if ip -o link show | grep ": weft[0-9a-f]\{11\}" >/dev/null; then echo "FAIL: host veth left behind"; exit 1; fi
echo "PASS: podman ran a container on a Weft network"
