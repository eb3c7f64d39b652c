#!/usr/bin/env bash
# The image, built here: a Debian 12 base made from Debian's own registry (mmdebstrap,
# minbase, with this machine's Debian apt sources), `podman import`ed, then `podman build`
# of the repository's Dockerfile on it (BASE/RUNTIME_BASE build args; nothing pulled).
# Smoke test: every binary answers --version and --help inside the image, the agent's
# runtime tools are there, the chart's install-cni command installs weft-cni on a scratch
# host directory, and the image size is reported. Needs root; podman storage and the
# base live in a temp dir. The base tarball is cached (WEFT_CACHE, keyed by date) since
# it only saves a minute.
# usage: image_test.sh   (from anywhere; builds the repository's working tree)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for t in podman mmdebstrap; do command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }; done

T=$(mktemp -d /tmp/weft-image.XXXXXX)
# overlay, not vfs: vfs copies the whole filesystem at every build step (minutes each).
pm() { podman --root "$T/storage" --runroot "$T/run" --storage-driver overlay "$@"; }
cleanup() {
  pm rm -af -t 0 >/dev/null 2>&1 || true
  pm rmi -af >/dev/null 2>&1 || true
  grep " $T/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  chmod -R u+w "$T" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
cat > "$T/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
export CONTAINERS_CONF="$T/containers.conf"

# The base: this machine's Debian sources for bookworm, as mmdebstrap's mirror argument.
cache=${WEFT_CACHE:-/var/cache/weft}
mkdir -p "$cache"
base="$cache/debian-bookworm-minbase-$(date +%Y%m%d).tar"
if [ ! -f "$base" ] || [ ! -s "$base" ]; then
  # Older days' bases, and anything a broken run left (a directory, a partial .tmp).
  rm -rf "$cache"/debian-bookworm-minbase-*
  sources=$(grep -l '^Suites:.*\bbookworm\b' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true)
  [ -n "$sources" ] || { echo "FAIL: no Debian bookworm entry in /etc/apt/sources.list.d"; exit 1; }
  t0=$(date +%s)
  # --format=tar: mmdebstrap guesses the format from the name, and "*.tmp" makes a directory.
  mmdebstrap --quiet --format=tar --variant=minbase bookworm "$base.tmp" "$sources"
  mv "$base.tmp" "$base"
  echo "base: mmdebstrap --variant=minbase bookworm in $(( $(date +%s) - t0 )) s"
fi
pm import "$base" localhost/weft-base:bookworm >/dev/null

t0=$(date +%s)
if ! pm build --pull=never --network host --build-arg BASE=localhost/weft-base:bookworm \
       --build-arg RUNTIME_BASE=localhost/weft-base:bookworm -t localhost/weft:test -f Dockerfile . \
       > "$T/build.log" 2>&1; then
  tail -40 "$T/build.log"
  echo "FAIL: podman build of the Dockerfile"
  exit 1
fi
echo "image: podman build in $(( $(date +%s) - t0 )) s"

run() { pm run --rm --network none "$@"; }
for b in weft-agent weft-controller weft-relay weftctl weft-cni; do
  v=$(run --entrypoint "/usr/local/bin/$b" localhost/weft:test --version) || { echo "FAIL: $b --version"; exit 1; }
  run --entrypoint "/usr/local/bin/$b" localhost/weft:test --help >/dev/null || { echo "FAIL: $b --help"; exit 1; }
  echo "  $v"
done
# What the agent runs besides itself (WireGuard in userspace, nftables, SNAT awareness).
for t in wireguard-go nft iptables-save iptables-legacy-save conntrack; do
  run --entrypoint /bin/sh localhost/weft:test -c "command -v $t" >/dev/null || { echo "FAIL: $t missing in the image"; exit 1; }
done
# The chart's install-cni init container, its exact command, on a scratch "host" dir.
install_cmd=$(.tools/helm template weft deploy/helm/weft --namespace kube-system --kube-version 1.29.0 2>/dev/null |
  python3 -c '
import sys, yaml, json
for d in yaml.safe_load_all(sys.stdin):
    if d and d.get("kind") == "DaemonSet":
        for c in d["spec"]["template"]["spec"].get("initContainers", []):
            if c["name"] == "install-cni":
                print(json.dumps(c["command"] + c.get("args", [])))
') || true
[ -n "$install_cmd" ] || { echo "FAIL: no install-cni init container in the chart (is helm installed? scripts/install-helm.sh)"; exit 1; }
mkdir "$T/host-cni-bin"
mapfile -t argv < <(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$install_cmd")
run --user 0 -v "$T/host-cni-bin:/host/cni-bin" --entrypoint "${argv[0]}" localhost/weft:test "${argv[@]:1}" ||
  { echo "FAIL: install-cni"; exit 1; }
[ -x "$T/host-cni-bin/weft" ] || { echo "FAIL: install-cni did not install weft-cni"; exit 1; }
CNI_COMMAND=VERSION "$T/host-cni-bin/weft" </dev/null | grep -q '"1.1.0"' || { echo "FAIL: installed weft-cni does not answer VERSION"; exit 1; }
size=$(pm image inspect --format '{{.Size}}' localhost/weft:test)
echo "image size: $(( size / 1024 / 1024 )) MiB (Debian minbase + runtime libraries + binaries)"
echo "PASS: the image builds, its binaries run, install-cni installs weft-cni"
